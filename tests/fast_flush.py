"""A faster end for transactional tests (`transactional_db`, `live_server`, the browser
and reliability tests), same result.

Django ends each such test with `flush`: one TRUNCATE of every table, then the
post_migrate signal, which puts back the content types, permissions and role groups.
On PostgreSQL a TRUNCATE of the ~70 tables makes new files for every table and index
and took 2-3.5 s a test, the signal another 1-2 s: minutes over the suite. After a
test the tables hold a few rows, so here:

- right after the test database is made (tests/conftest.py, django_db_setup), the
  rows the migrations left (content types, permissions, role groups, default deal
  stages ...) are copied into the schema `kehu_test_flush` of the test database;
- each flush is one transaction that DELETEs every row of every table and copies
  those rows back: the database as the migrations left it, as every other test sees
  it, in well under a second. (Django's flush left the tables empty but for what
  post_migrate puts back; with the suite spread over xdist workers a test that needs
  a migration's rows may run after a transactional test on the same worker.)

The DELETEs run with `session_replication_role = replica`, which turns off the
foreign-key and audit triggers for that transaction only, as TRUNCATE bypasses them; it
needs a superuser (the suite's `postgres`). Without one, or when a test asks for what
this does not do (reset_sequences, serialized_rollback, available_apps), Django's flush
runs as before.
"""

from __future__ import annotations

from django.db import connections, transaction
from django.test import TransactionTestCase

SCHEMA = "kehu_test_flush"
_django_teardown = TransactionTestCase._fixture_teardown
# Per database alias: the tables whose rows the migrations left, with their columns;
# None where this cannot work (not a superuser): Django's flush then.
_saved: dict[str, dict[str, list[str]] | None] = {}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_superuser(alias: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
    return bool(row and row[0])


def _tables(alias: str) -> list[str]:
    connection = connections[alias]
    return sorted(
        connection.introspection.django_table_names(
            only_existing=True, include_views=False
        )
    )


def _save(alias: str) -> dict[str, list[str]]:
    """Copy the rows that Django's flush left into SCHEMA; the tables and columns."""
    saved: dict[str, list[str]] = {}
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
        for table in _tables(alias):
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {_quote(table)})")  # noqa: S608 - a table name of our models
            if not cursor.fetchone()[0]:
                continue
            # Generated columns (a search column) cannot be written; they follow.
            cursor.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                " AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
                " ORDER BY attnum",
                [_quote(table)],
            )
            columns = [_quote(row[0]) for row in cursor.fetchall()]
            cursor.execute(
                f"CREATE TABLE {SCHEMA}.{_quote(table)} AS"  # noqa: S608 - names of our models
                f" SELECT {', '.join(columns)} FROM {_quote(table)}"
            )
            saved[table] = columns
    return saved


def _restore(alias: str, saved: dict[str, list[str]]) -> None:
    """Every table emptied, the saved rows put back: one transaction."""
    statements = ["SET LOCAL session_replication_role = replica"]
    statements += [f"DELETE FROM {_quote(table)}" for table in _tables(alias)]  # noqa: S608
    for table, columns in saved.items():
        names = ", ".join(columns)
        statements.append(
            f"INSERT INTO {_quote(table)} ({names})"  # noqa: S608 - names of our models
            f" SELECT {names} FROM {SCHEMA}.{_quote(table)}"
        )
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(";\n".join(statements))


def save_initial(alias: str = "default") -> None:
    """Right after the test database is made: save what the migrations left."""
    if connections[alias].vendor == "postgresql" and _is_superuser(alias):
        _saved[alias] = _save(alias)
    else:
        _saved[alias] = None


def _fixture_teardown(self: TransactionTestCase) -> None:
    aliases = list(self._databases_names(include_mirrors=False))
    if (
        self.reset_sequences
        or self.serialized_rollback
        or self.available_apps is not None
        or len(aliases) != 1
        or _saved.get(aliases[0]) is None
    ):
        _django_teardown(self)
        return
    _restore(aliases[0], _saved[aliases[0]])


def install() -> None:
    """Put the faster flush in place of TransactionTestCase's (django.test.TestCase,
    the `db` fixture, keeps its own: a rollback)."""
    TransactionTestCase._fixture_teardown = _fixture_teardown
