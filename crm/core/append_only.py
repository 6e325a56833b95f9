"""Audit tables refuse UPDATE and DELETE, whoever asks (ASVS V16.4.2).

A row trigger raises SQLSTATE 42501 (insufficient_privilege), so a raw UPDATE or DELETE
from the application's connection fails with psycopg's InsufficientPrivilege. TRUNCATE
is a table-level statement the trigger does not see; only the database owner may run
it, and the application never does (tests flush their database with it).

Covered: core_accesslog (migration 0002) and every pghistory event table, found at each
`migrate` (post_migrate, see CoreConfig.ready), so an event model added later is
covered without a migration here depending on every other app.

Retention (docs/security.md): the purge runs as the table owner, in one transaction,
`ALTER TABLE … DISABLE TRIGGER kehu_append_only; DELETE … ; ALTER TABLE … ENABLE TRIGGER
kehu_append_only;` — ALTER TABLE holds an ACCESS EXCLUSIVE lock until commit, so no
other session can write while the trigger is off (`manage.py audit_purge`).
"""

from __future__ import annotations

TRIGGER = "kehu_append_only"

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION kehu_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def create_trigger_sql(table: str) -> str:
    return (
        f'CREATE OR REPLACE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON "{table}" '
        "FOR EACH ROW EXECUTE FUNCTION kehu_refuse_change();"
    )


def drop_trigger_sql(table: str) -> str:
    return f'DROP TRIGGER IF EXISTS {TRIGGER} ON "{table}";'


def event_tables() -> list[str]:
    """The tables of every concrete pghistory event model."""
    from django.apps import apps
    from pghistory.models import Event

    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, Event)
        and not model._meta.abstract
        and not model._meta.proxy
        and model._meta.managed
    )


def protect_event_tables(using: str = "default", **kwargs: object) -> None:
    """post_migrate: (re)install the trigger on each pghistory event table."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        cursor.execute(CREATE_FUNCTION)
        for table in event_tables():
            if table in existing:
                cursor.execute(create_trigger_sql(table))
