"""The platform's half of the scale data for `make bench`: how a dataset is described
and turned into one set-based INSERT, the bench users, and the bench database's state.

The apps own their datasets (`customers/demo.py`, `service/demo.py`, ...) and register
them with crm.core.seeding; `seed_scale` builds them in the registry's order.

Each dataset is a `Dataset`: a model and, per column, one SQL expression over the row
number `i` and the per-row draws of `base`. The model's own fields decide which columns
are written: a new column that is NULL-able, defaulted or blank-able is filled with its
default, a NOT NULL one without a default stops the build and names itself, and a
GeneratedField is left to PostgreSQL. So a new column is one line in `columns`.
Draws are `hashint8extended(i, seed)`, which makes the data the same on every build.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import connection, models
from pypinyin import lazy_pinyin

from crm.accounts.models import Department, Team, User
from crm.accounts.roles import Role

SIZES = {"small": 10_000, "full": 1_000_000}
SALESPEOPLE = 50
TEAM_SIZE = 5  # 10 teams of 5
PASSWORD = os.environ.get("KEHU_BENCH_PASSWORD", "kehu-bench")
STATE_TABLE = "bench_dataset"
GENERATOR_VERSION = "2"
CHUNK_ROWS = 100_000
# Emptied with the datasets: they point at the old rows' ids. An app adds its own
# (Scale.also_emptied).
ALSO_EMPTIED = [
    "scheduler_scheduledaction",
    "notifications_notification",
]

DEPARTMENTS = {"east": "华东销售部", "south": "华南销售部", "service": "客户服务部"}
SALES_TEAMS = [
    *(("east", f"华东{n}组") for n in "一二三四五"),
    *(("south", f"华南{n}组") for n in "一二三四五"),
]
# The logins the runner uses, one per role; "sales" is the first of the 50 salespeople.
LOGINS = {
    Role.SALES: "sales",
    Role.MANAGER: "manager",
    Role.SERVICE: "service",
    Role.ADMIN: "admin",
}

# --- Name parts (repeats weight the common ones, roughly as in the population) -------
SURNAMES = (
    "王王王王王李李李李李张张张张张刘刘刘刘陈陈陈陈杨杨杨黄黄赵赵吴吴周周徐徐孙孙"
    "马马朱朱胡胡郭郭何何高高林林罗郑梁谢宋唐许韩冯邓彭曹肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛阎段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华建国文辉鑫宇浩然子涵欣怡梓轩"
    "佳琪思远晨阳雨婷俊杰志强海燕红梅秀兰玉兰春花秋菊立新永庆德胜家豪嘉怡诗雅博"
    "文凯一鸣天翔雪梅丹丹晓东晓燕建华建平建军国强国庆金凤凤英淑珍秀珍美玲丽娟慧"
    "敏宏伟晓明振华少华卫东红霞云飞"
)
# Five desk teams of ten agents; agent 1 of each team leads it, and `service` (the login)
# is agent 1 of 客服一组.
SERVICE_TEAMS = [f"客服{n}组" for n in "一二三四五"]
AGENTS_PER_TEAM = 10
SERVICE_MANAGER = (
    "service_manager"  # a manager of the desk department: level-2 escalation
)
MASK = "9223372036854775807"


def lit(value: str) -> str:
    """A SQL string literal of a generator's constant (never of outside input)."""
    return "'" + value.replace("'", "''") + "'"


def array(values: Sequence[str]) -> str:
    return "(ARRAY[" + ", ".join(lit(v) for v in values) + "])"


def pinyins(values: Sequence[str]) -> tuple[list[str], list[str]]:
    """Full pinyin and initials of each value, as customers' search columns hold them."""
    full, initials = [], []
    for value in values:
        syllables = [s.lower() for s in lazy_pinyin(value) if s.isascii()]
        full.append("".join(syllables))
        initials.append("".join(s[0] for s in syllables))
    return full, initials


def draw(seed: int, n: int) -> str:
    """A repeatable pseudo-random integer in [0, n) for row `i`, independent per seed."""
    return f"mod(hashint8extended(i, {seed}) & 9223372036854775807, {n})"


def part(values: Sequence[str], index: str) -> str:
    return f"{array(values)}[1 + {index}]"


def pick(values: Sequence[str], seed: int) -> str:
    """One of `values`, uniformly; repeat a value to weight it."""
    return part(values, draw(seed, len(values)))


def uniform(seed: int) -> str:
    """A repeatable draw in [0, 1) for row `i`."""
    return f"({draw(seed, 1_000_000)}::float8 / 1000000)"


def weighted(index: str, choices: Sequence[tuple[str, int]]) -> str:
    """One of `choices` (value, percent) by `index` in [0, 100)."""
    whens, edge = [], 0
    for value, share in choices[:-1]:
        edge += share
        whens.append(f"WHEN {index} < {edge} THEN {lit(value)}")
    return f"CASE {' '.join(whens)} ELSE {lit(choices[-1][0])} END"


SURNAME_LIST = list(SURNAMES)
GIVEN_LIST = list(GIVEN)


@dataclass(frozen=True)
class Dataset:
    """One generated table. `model` None means its feature is not built yet."""

    name: str
    model: str | None
    rows_per_customer: float = 0  # 0: `rows` decides
    rows: dict[str, int] = field(default_factory=dict)
    # FROM clause yielding one row per generated row with its number as `i`; the
    # {start}/{stop} placeholders bound one chunk.
    source: str = "generate_series({start}::bigint, {stop}) AS g(i)"
    joins: str = ""
    base: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    todo: str = ""
    # What {start}/{stop} count when it is not the rows themselves (e.g. "tickets").
    unit: str = "rows"
    # Statements run once after the load (e.g. moving a sequence past the loaded rows).
    after: tuple[str, ...] = ()
    chunk: int = CHUNK_ROWS  # {start}..{stop} per INSERT
    # Planner settings for this dataset's INSERTs only (restored afterwards).
    settings: dict[str, str] = field(default_factory=dict)

    def size(self, size: str) -> int:
        if self.rows:
            return self.rows[size]
        return int(SIZES[size] * self.rows_per_customer)


@dataclass
class Plan:
    dataset: Dataset
    table: str = ""
    sql: str = ""
    params: list[Any] = field(default_factory=list)
    missing: str = ""


def build_sql(dataset: Dataset) -> Plan:
    """The INSERT ... SELECT for one dataset, from the model's current fields."""
    if dataset.model is None:
        return Plan(dataset, missing=dataset.todo or "feature not built yet")
    try:
        model = apps.get_model(dataset.model)
    except LookupError:
        return Plan(dataset, missing=f"model {dataset.model} does not exist yet")
    names, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        auto = f.primary_key and isinstance(f, models.AutoField)
        if auto and f.column not in dataset.columns:
            continue  # numbered by its sequence, unless the dataset sets it
        if getattr(f, "generated", False):
            continue  # PostgreSQL computes it
        if f.column in dataset.columns:
            names.append(f.column)
            exprs.append(dataset.columns[f.column])
        elif f.null:
            continue
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            names.append(f.column)
            exprs.append("now()")
        elif f.has_default() or (f.blank and f.empty_strings_allowed):
            names.append(f.column)
            exprs.append("%s")
            params.append(f.get_db_prep_save(f.get_default(), connection))
        else:
            raise CommandError(
                f"seed_scale cannot fill {model._meta.label}.{f.name}: the column "
                f"{f.column!r} is NOT NULL without a default. Add an expression for it "
                f"to the {dataset.name!r} dataset's columns in "
                f"{model._meta.app_config.name.replace('.', '/')}/demo.py."
            )
    base = ", ".join(f"{expr} AS {alias}" for alias, expr in dataset.base.items())
    quote = connection.ops.quote_name
    sql = (
        # Built from the model's own columns and the generators' constants only.
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(n) for n in names)}) "
        f"SELECT {', '.join(exprs)} "
        f"FROM (SELECT i{', ' + base if base else ''} FROM {dataset.source}) AS b "
        f"{dataset.joins}"
    )
    return Plan(dataset, table=model._meta.db_table, sql=sql, params=params)


@dataclass
class Staff:
    """Who the generated rows point at (all of it goes into the signature)."""

    sellers: list[tuple[int, int, int]]  # (n, user_id, team_id): the 50 salespeople
    agents: list[tuple[int, int, int, int]]  # (n, k, user_id, team_id); k = 0 leads
    service_teams: list[int] = field(default_factory=list)


@dataclass
class Reference:
    """What an app's `Scale.prepare` made outside the build (categories, policies ...).

    `signature`: JSON values that shape the app's data, so that a change rebuilds it.
    `rows`: per lookup table, the rows its `Scale.lookups` loads in the build.
    """

    signature: list[Any] = field(default_factory=list)
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


def make_signature(
    size: str, staff: Staff, references: Sequence[Reference], plans: Sequence[Plan]
) -> str:
    """Changes when anything that shapes the data does: size, users, schema, generator."""
    text = json.dumps(
        [
            GENERATOR_VERSION,
            size,
            staff.sellers,
            staff.agents,
            *(part for reference in references for part in reference.signature),
            [
                (p.dataset.name, p.sql, [str(x) for x in p.params], p.missing)
                for p in plans
            ],
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_users() -> Staff:
    """Departments, 10 sales teams of 5 and the 50 salespeople, 5 service-desk teams of
    10 agents (agent 1 of each leads it), a desk manager and one login per role.

    Idempotent (matched by name).
    """
    hashed = make_password(PASSWORD)
    departments = {
        key: Department.objects.get_or_create(name=name)[0]
        for key, name in DEPARTMENTS.items()
    }
    teams = [
        Team.objects.get_or_create(
            name=name, defaults={"department": departments[key]}
        )[0]
        for key, name in SALES_TEAMS
    ]
    service_teams = [
        Team.objects.get_or_create(
            name=name, defaults={"department": departments["service"]}
        )[0]
        for name in SERVICE_TEAMS
    ]
    groups = {role: Group.objects.get(name=role.value) for role in Role}
    names = [
        SURNAME_LIST[n * 7 % len(SURNAME_LIST)] + GIVEN[n * 3 % len(GIVEN)]
        for n in range(60)
    ]
    agent_names = [
        SURNAME_LIST[(n * 11 + 3) % len(SURNAME_LIST)] + GIVEN[(n * 5 + 1) % len(GIVEN)]
        for n in range(AGENTS_PER_TEAM * len(SERVICE_TEAMS) + 1)
    ]

    def user(username: str, role: Role, team: Team | None, display: str) -> User:
        account, _ = User.objects.update_or_create(
            username=username,
            defaults={
                "display_name": display,
                "team": team,
                "password": hashed,
                "is_staff": role == Role.ADMIN,
                "is_superuser": role == Role.ADMIN,
                "email": f"{username}@bench.example.cn",
                "is_away": False,
            },
        )
        account.groups.set([groups[role]])
        return account

    sellers = []
    for n in range(1, SALESPEOPLE + 1):
        team = teams[(n - 1) // TEAM_SIZE]
        username = LOGINS[Role.SALES] if n == 1 else f"sales{n:02d}"
        account = user(username, Role.SALES, team, names[n] + "（销售）")
        sellers.append((n, account.pk, team.pk))
    agents = []
    for n in range(1, AGENTS_PER_TEAM * len(SERVICE_TEAMS) + 1):
        place, k = divmod(n - 1, AGENTS_PER_TEAM)
        team = service_teams[place]
        if n == 1:
            account = user(LOGINS[Role.SERVICE], Role.SERVICE, team, "陈客服")
        else:
            account = user(
                f"service{n:02d}", Role.SERVICE, team, agent_names[n] + "（客服）"
            )
        agents.append((n, k, account.pk, team.pk))
        if k == 0:
            Team.objects.filter(pk=team.pk).update(lead=account)
    manager = user(LOGINS[Role.MANAGER], Role.MANAGER, teams[0], "王经理")
    user(SERVICE_MANAGER, Role.MANAGER, service_teams[0], "周经理（客服）")
    user(LOGINS[Role.ADMIN], Role.ADMIN, None, "系统管理员")
    Team.objects.filter(pk__in=[t.pk for t in teams[:5]]).update(lead=manager)
    return Staff(
        sellers=sellers, agents=agents, service_teams=[t.pk for t in service_teams]
    )


def schema_matches() -> bool:
    """True when every model's table has exactly the columns the models expect."""
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        for model in apps.get_models():
            meta = model._meta
            if not meta.managed or meta.proxy or meta.db_table not in tables:
                if meta.managed and not meta.proxy:
                    return False
                continue
            actual = {
                c.name
                for c in connection.introspection.get_table_description(
                    cursor, meta.db_table
                )
            }
            if actual != {f.column for f in meta.concrete_fields}:
                return False
    return True


def ensure_state_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (name text PRIMARY KEY, "
            "size text NOT NULL, rows bigint NOT NULL, signature text NOT NULL, "
            "seconds double precision NOT NULL, missing text NOT NULL DEFAULT '', "
            "built_at timestamptz NOT NULL DEFAULT now())"
        )


def read_state() -> dict[str, dict[str, Any]]:
    """What the bench database holds, per dataset (also read by bench/run.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, size, rows, signature, seconds, missing, built_at "  # noqa: S608  # nosec B608 # STATE_TABLE is a constant
            f"FROM {STATE_TABLE}"
        )
        columns = [c.name for c in cursor.description]
        return {
            row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()
        }


def write_state(
    cursor: Any, name: str, size: str, rows: int, sig: str, seconds: float, missing: str
) -> None:
    cursor.execute(
        f"INSERT INTO {STATE_TABLE} (name, size, rows, signature, seconds, missing) "  # noqa: S608  # nosec B608 # constant table, values bound
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
        "size = EXCLUDED.size, rows = EXCLUDED.rows, signature = EXCLUDED.signature, "
        "seconds = EXCLUDED.seconds, missing = EXCLUDED.missing, built_at = now()",
        [name, size, rows, sig, seconds, missing],
    )


def drop_secondary_indexes(cursor: Any, table: str) -> list[str]:
    """Drop the table's indexes that back no constraint; return their CREATE statements.

    Loading first and indexing once is several times faster than maintaining six
    indexes row by row; it all happens in the build's transaction, so a failure
    leaves the indexes as they were.
    """
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        [table],
    )
    found = cursor.fetchall()
    for name, _ in found:
        cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    return [definition for _, definition in found]


def _server_params() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    return {k: v for k, v in params.items() if v is not None}


def create_database(name: str) -> bool:
    """Create the bench database on the same server when missing; True if created."""
    with psycopg.connect(**_server_params()) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


def drop_database(name: str) -> None:
    if "bench" not in name:
        raise CommandError(f"refusing to drop {name!r}: not a bench database")
    with psycopg.connect(**_server_params()) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
