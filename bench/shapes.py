"""Data shapes of the customer list (issue 18): the same bench customers, arrived in
another order, so that a page whose plan depends on which rows came last shows it.

    python -m bench.run --size full --shape all        # both shapes, one after the other
    python -m bench.run --size small --shape orgs_first

`orgs_first`: every organisation is older than every person, in updated_at, created_at,
last_contacted_at and id, as if the companies had been imported first and their people
after. Each group keeps its own spread of times: the organisations' times are squeezed
into the first half of the data's span, the persons' into the second.

`same_updated_at`: one customer in ten (100,000 at full size) shares one updated_at,
the newest of the data, as after a bulk reassignment, a pool return or an import: first
every customer of the `sales` login's team (its scope, all kinds), then the lowest ids
to make up the number.

A shape is a copy of the customer tables in a schema of its own, `bench_shape_<name>`,
filled from the generated rows by one INSERT ... SELECT, with the generated tables'
indexes under the same names (read from the catalog, so a new index of a migration is
in the copy too). A shape's run puts its schema first on every connection's search_path
(KEHU_BENCH_SHAPE, crm/settings/bench.py): the pages read the shape's customers and
everything else (users, sessions, tickets) as built. The generated data is never
changed, so the generator's signature, and with it the reuse of a full build, is
untouched. A copy is rebuilt when the data, the tables' columns or indexes, or this
module's SQL change (its fingerprint is kept in the schema), else reused.

Only the customer-list scenarios (SCENARIOS below) are meaningful on a shape: in
orgs_first the customers are renumbered, so other tables' customer ids (tickets,
contact logs, profiles) no longer point at the same customers. Its phones are copied
with the new ids, so phone search still finds the right customer.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Where migrate and seed_scale put the tables (the SQL below names it too).
SOURCE = "public"
VERSION = "1"
# Shapes are judged on the customer list: the first page, its filters and searches.
SCENARIOS = (
    "customers.list",
    "customers.list_filters",
    "customers.search_name",
    "customers.search_broad",
    "customers.search_pinyin",
    "customers.search_phone",
)
TIMES = ("created_at", "updated_at", "last_contacted_at")
# The share of customers in same_updated_at's block (100,000 of 1,000,000).
SAME_UPDATED_SHARE = 10


def schema(name: str) -> str:
    return f"bench_shape_{name}"


@dataclass(frozen=True)
class Table:
    name: str
    # SELECT list expressions by column (others are copied as they are), over the
    # source table aliased `c` and the joins of the shape.
    columns: dict[str, str]
    joins: str = ""


@dataclass(frozen=True)
class Shape:
    name: str
    text: str
    # Statements run first, in the shape's schema (temporary helper tables).
    before: Callable[[], list[str]]
    tables: tuple[Table, ...]


def _orgs_first_before() -> list[str]:
    # The new ids: organisations first, each group in its old id order. The span's
    # ends come from the data, so a build of any date or size is squeezed alike.
    return [
        "CREATE TABLE shape_id AS SELECT id AS old_id, row_number() OVER "
        "(ORDER BY is_organization DESC, id) AS new_id "
        "FROM public.customers_customer",
        "CREATE UNIQUE INDEX ON shape_id (old_id)",
        "CREATE TABLE shape_span AS SELECT min(created_at) AS lo, "
        "greatest(max(updated_at), max(created_at), max(last_contacted_at)) AS hi "
        "FROM public.customers_customer",
    ]


def _squeezed(column: str) -> str:
    """An organisation's time into [lo, mid], a person's into (mid, hi]: each group
    keeps its order and spread, and every organisation is older than every person."""
    return (
        f"CASE WHEN c.{column} IS NULL THEN NULL WHEN c.is_organization THEN "
        f"s.lo + (c.{column} - s.lo) / 2 ELSE s.lo + (s.hi - s.lo) / 2 "
        f"+ interval '1 second' + (c.{column} - s.lo) / 2 END"
    )


def _remapped(column: str) -> str:
    lookup = f"SELECT new_id FROM shape_id WHERE old_id = c.{column}"  # noqa: S608
    return f"CASE WHEN c.{column} IS NULL THEN NULL ELSE ({lookup}) END"


ORGS_FIRST = Shape(
    name="orgs_first",
    text="every organisation older (updated_at, created_at, id) than every person",
    before=_orgs_first_before,
    tables=(
        Table(
            "customers_customer",
            columns={
                "id": "m.new_id",
                **{column: _squeezed(column) for column in TIMES},
                **{
                    column: _remapped(column)
                    for column in ("organization_id", "parent_id", "merged_into_id")
                },
            },
            joins="JOIN shape_id AS m ON m.old_id = c.id CROSS JOIN shape_span AS s",
        ),
        Table(
            "customers_customerphone",
            columns={"customer_id": "m.new_id"},
            joins="JOIN shape_id AS m ON m.old_id = c.customer_id",
        ),
    ),
)


def _same_updated_before() -> list[str]:
    from crm.accounts.roles import Role
    from crm.core import scale

    # The sales login's team first (its whole scope, every kind), then the lowest ids.
    sales = scale.lit(scale.LOGINS[Role.SALES])
    team = f"SELECT team_id FROM public.accounts_user WHERE username = {sales}"  # noqa: S608
    share = f"SELECT count(*) / {SAME_UPDATED_SHARE} FROM public.customers_customer"  # noqa: S608
    first = f"c.team_id IS NOT DISTINCT FROM ({team})"
    return [
        f"CREATE TABLE shape_block AS SELECT c.id FROM public.customers_customer AS c "  # noqa: S608
        f"ORDER BY ({first}) DESC, c.id LIMIT ({share})",
        "CREATE UNIQUE INDEX ON shape_block (id)",
        "CREATE TABLE shape_moment AS SELECT max(updated_at) AS at "
        "FROM public.customers_customer",
    ]


SAME_UPDATED_AT = Shape(
    name="same_updated_at",
    text="one customer in ten (the sales team's scope first) shares one updated_at",
    before=_same_updated_before,
    tables=(
        Table(
            "customers_customer",
            columns={
                "updated_at": "CASE WHEN b.id IS NULL THEN c.updated_at ELSE t.at END"
            },
            joins="LEFT JOIN shape_block AS b ON b.id = c.id "
            "CROSS JOIN shape_moment AS t",
        ),
    ),
)

SHAPES = {shape.name: shape for shape in (ORGS_FIRST, SAME_UPDATED_AT)}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_facts(cursor: Any, shape: Shape) -> list[Any]:
    """What the copy is made of: the generated data's build, the tables' columns and
    indexes, and the shape's own SQL."""
    facts: list[Any] = [VERSION, shape.name, shape.before(), repr(shape.tables)]
    cursor.execute("SELECT to_regclass('bench_dataset') IS NOT NULL")
    if cursor.fetchone()[0]:
        cursor.execute(
            "SELECT name, signature, built_at::text FROM bench_dataset "
            "WHERE name IN ('customers', 'customer_phones') ORDER BY name"
        )
        facts.append(cursor.fetchall())
    for table in shape.tables:
        facts.append(_columns(cursor, table.name))
        facts.append(sorted(definition for _, definition in _indexes(cursor, table)))
    return facts


def _columns(cursor: Any, table: str) -> list[tuple[str, bool]]:
    """(column, is generated) of the source table, in order."""
    cursor.execute(
        "SELECT attname, attgenerated <> '' FROM pg_attribute WHERE attrelid = "
        "%s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [f"{SOURCE}.{table}"],
    )
    return cursor.fetchall()


def _indexes(cursor: Any, table: Table) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
        "ORDER BY i.relname",
        [f"{SOURCE}.{table.name}"],
    )
    return cursor.fetchall()


def _stored_fingerprint(cursor: Any, name: str) -> str | None:
    cursor.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'shape_state'",
        [schema(name)],
    )
    if not cursor.fetchone():
        return None
    cursor.execute(f"SELECT fingerprint FROM {schema(name)}.shape_state")  # noqa: S608
    row = cursor.fetchone()
    return row[0] if row else None


def prepare(name: str, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build (or reuse) the shape's copy; returns what was done, for the results."""
    from django.db import connection, transaction

    shape = SHAPES[name]
    target = schema(name)
    started = time.monotonic()
    with connection.cursor() as cursor:
        fingerprint = hashlib.sha256(
            json.dumps(_source_facts(cursor, shape), default=str).encode()
        ).hexdigest()[:16]
        if _stored_fingerprint(cursor, name) == fingerprint:
            log(f"shape {name}: reused ({target})")
            return {"shape": name, "text": shape.text, "reused": True, "seconds": 0}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
        cursor.execute(f"CREATE SCHEMA {target}")
        cursor.execute(f"SET LOCAL search_path = {target}, {SOURCE}")
        # A million rows' indexes are built in memory rather than in passes on disk.
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for statement in shape.before():
            cursor.execute(statement)
        for table in shape.tables:
            _copy(cursor, target, table)
        for statement in ("shape_id", "shape_span", "shape_block", "shape_moment"):
            cursor.execute(f"DROP TABLE IF EXISTS {target}.{statement}")
        cursor.execute("SET LOCAL search_path TO DEFAULT")
        cursor.execute(f"CREATE TABLE {target}.shape_state (fingerprint text)")
        cursor.execute(
            f"INSERT INTO {target}.shape_state VALUES (%s)",  # noqa: S608
            [fingerprint],
        )
    if not connection.in_atomic_block:
        # As seed_scale leaves the generated tables: the visibility map set (index-only
        # scans read no heap) and fresh statistics.
        with connection.cursor() as cursor:
            for table in shape.tables:
                cursor.execute(f"VACUUM (ANALYZE) {target}.{table.name}")
    seconds = time.monotonic() - started
    log(f"shape {name}: built in {seconds:.0f} s ({target})")
    return {
        "shape": name,
        "text": shape.text,
        "reused": False,
        "seconds": round(seconds, 1),
    }


def _copy(cursor: Any, target: str, table: Table) -> None:
    source = f"{SOURCE}.{table.name}"
    copy = f"{target}.{table.name}"
    cursor.execute(
        f"CREATE TABLE {copy} (LIKE {source} INCLUDING DEFAULTS INCLUDING GENERATED "
        "INCLUDING STORAGE)"
    )
    stored = [c for c, generated in _columns(cursor, table.name) if not generated]
    names = ", ".join(_quote(c) for c in stored)
    values = ", ".join(table.columns.get(c, f"c.{_quote(c)}") for c in stored)
    cursor.execute(
        # The shape's own constants and the catalog's column names only.
        f"INSERT INTO {copy} ({names}) SELECT {values} FROM {source} AS c {table.joins}"  # noqa: S608
    )
    for index, definition in _indexes(cursor, table):
        # Same name and definition, on the copy (index names are per schema).
        if f" ON {source} " not in definition:
            raise RuntimeError(f"cannot copy index {index}: {definition}")
        cursor.execute(definition.replace(f" ON {source} ", f" ON {copy} ", 1))
    cursor.execute(f"ANALYZE {copy}")


def use(name: str | None) -> dict[str, str]:
    """Point this process's connection at the shape (None: the generated data) and
    return the environment the application server needs for the same."""
    from django.db import connection

    options = connection.settings_dict.setdefault("OPTIONS", {})
    connection.close()
    if name:
        options["options"] = search_path_option(name)
        return {"KEHU_BENCH_SHAPE": name}
    options.pop("options", None)
    return {"KEHU_BENCH_SHAPE": ""}


def search_path_option(name: str) -> str:
    if name not in SHAPES:
        raise ValueError(f"unknown bench shape {name!r}")
    return f"-c search_path={schema(name)},{SOURCE}"
