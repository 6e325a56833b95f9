"""Test databases cloned from a migrated template instead of migrated one by one.

`migrate` from nothing costs about 40 s of CPU (Django renders the model states of
120-odd migrations), and every pytest process paid it for its own test database:
both xdist workers, the serial part, CI's second run and the L1 smoke. Now the first
process to need a database migrates a template once per set of migrations, on that
server (`kehu_tpl_<fingerprint>`, built under a temporary name and renamed, under an
advisory lock so that two workers never build it twice), and each test database is a
`CREATE DATABASE … TEMPLATE` copy of it: a second or two.

The fingerprint covers every migration file of the project and the lock files (which
pin the packages whose migrations run too), so a new migration builds a new template.
The KEEP most recently used templates stay (each clone stamps its template's comment
with the time): checkouts with different migrations on one server, such as git
worktrees, would otherwise drop and rebuild each other's (40 s each time).

    python -m tests.template_db clone kehu_l1   # used by bench/l1/run.sh
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
PREFIX = "kehu_tpl_"
# pg_advisory_lock key: one builder at a time per server.
LOCK_KEY = 0x6B656875  # "kehu"
KEEP = 4


def fingerprint() -> str:
    digest = hashlib.sha256()
    files = sorted(
        [
            *REPO.glob("*/migrations/*.py"),
            *REPO.glob("*/*/migrations/*.py"),
            *REPO.glob("requirements/*.txt"),
        ]
    )
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def template_name() -> str:
    return PREFIX + fingerprint()


def _server_url(settings_dict: dict) -> str:
    """The maintenance database of the server `settings_dict` names."""
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth + '@' if auth else ''}{host}:{port}/postgres"


def _exists(cursor: psycopg.Cursor, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    return cursor.fetchone() is not None


def _drop(cursor: psycopg.Cursor, name: str) -> None:
    cursor.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def _build(cursor: psycopg.Cursor, server_url: str, name: str) -> None:
    """Migrate a new database and give it the template's name only when done."""
    building = name + "_building"
    _drop(cursor, building)
    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
    env = {
        **os.environ,
        "DATABASE_URL": server_url.rsplit("/", 1)[0] + "/" + building,
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
    }
    # Django's test runner migrates with run_syncdb as well.
    subprocess.run(  # noqa: S603 - our own manage.py
        [
            sys.executable,
            "manage.py",
            "migrate",
            "--run-syncdb",
            "--no-input",
            "--skip-checks",
            "-v0",
        ],
        cwd=REPO,
        env=env,
        check=True,
    )
    cursor.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(building), sql.Identifier(name)
        )
    )
    _stamp(cursor, name)
    _drop_least_used(cursor)


def _stamp(cursor: psycopg.Cursor, name: str) -> None:
    """Mark the template as used now (its comment holds the time)."""
    cursor.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(str(time.time()))
        )
    )


def _drop_least_used(cursor: psycopg.Cursor) -> None:
    """All but the KEEP most recently used templates: most are of migrations that
    are gone. A template without a stamp (older code) counts as the least used."""
    cursor.execute(
        """SELECT datname FROM pg_database
           WHERE datname LIKE %s AND datname NOT LIKE %s
           ORDER BY COALESCE(shobj_description(oid, 'pg_database'), '0')::float DESC""",
        [PREFIX + "%", "%_building"],
    )
    for (old,) in cursor.fetchall()[KEEP:]:
        _drop(cursor, old)


def clone(settings_dict: dict, target: str) -> None:
    """`target` (dropped first if it exists) as a copy of the migrated template on the
    server of `settings_dict`, building the template first when there is none."""
    server_url = _server_url(settings_dict)
    template = template_name()
    with psycopg.connect(server_url, autocommit=True) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            if _exists(cursor, template):
                _stamp(cursor, template)
            else:
                _build(cursor, server_url, template)
            _drop(cursor, target)
            cursor.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(target), sql.Identifier(template)
                )
            )
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def drop(settings_dict: dict, target: str) -> None:
    with psycopg.connect(_server_url(settings_dict), autocommit=True) as connection:
        _drop(connection.cursor(), target)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "clone":
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)  # noqa: T201
        return 2
    import environ

    settings_dict = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    clone(settings_dict, argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
