"""Small database helpers shared by every app's services."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import pghistory
import pghistory.trigger
import pgtrigger
import psycopg
from django.db import InterfaceError, OperationalError, connection, models
from django.db.models import Model


def audited(by: Any) -> pghistory.context:
    """Tag the audit rows written inside the block with the acting user (or the system)."""
    return pghistory.context(user=by.pk if by else None)


class _NonEmptyStatementEvent(pghistory.trigger.Event):
    """pghistory's statement-level event trigger, returning at once for a statement
    of no rows: its INSERT … SELECT would still upsert the context row (whether it
    does depends on the plan), which a row-level trigger never fires to do."""

    def get_func(self, model: type[Model]) -> pgtrigger.Func:
        func = super().get_func(model)
        return pgtrigger.Func(
            "IF NOT EXISTS (SELECT FROM new_values) THEN RETURN NULL; END IF; "
            + func.func
        )


class StatementInsertEvent(pghistory.InsertEvent):
    """Insert events written by one statement-level trigger: one INSERT … SELECT over
    the statement's new rows, the context attached once. The same event rows (one a
    row, in the rows' order, same columns and context) as pghistory's row-level
    trigger, which calls `_pgh_attach_context()` (an exception block and an upsert)
    for every row: a fifth of the cost for a COPY of 500 rows (docs/benchmarks.md,
    issue 18, session 13)."""

    level = pgtrigger.Statement

    def add_event_trigger(self, event_model: type[Model]) -> None:
        pgtrigger.register(
            _NonEmptyStatementEvent(
                event_model=event_model,
                label=self.label,
                name=self.trigger_name,
                row=self.row,
                operation=self.operation,
                condition=self.condition,
                level=self.level,
            )
        )(event_model.pgh_tracked_model)


def lock_in_order(model: type[Model], *pks: int) -> dict[int, Model]:
    """SELECT … FOR NO KEY UPDATE the rows in id order, so two transactions locking the
    same pair in opposite roles (A into B, B into A) cannot deadlock. Call in a
    transaction. NO KEY: the callers (merges) update rows but never delete them or change
    their keys, and rows referencing them by foreign key can still be inserted meanwhile."""
    rows = (
        model.objects.select_for_update(no_key=True).filter(pk__in=pks).order_by("pk")
    )
    return {row.pk: row for row in rows}


# --- transient conflicts ---------------------------------------------------------------

# A deadlock victim or a serialization failure is PostgreSQL saying "run it again": the
# transaction was rolled back whole, so repeating the function is safe (reliability D6).
MAX_RETRIES = 3
_retry_log = logging.getLogger("kehu.db")
# Counted per process; the C6 run in bench/chaos reads the driver's and greps the logs.
retry_counts: Counter[str] = Counter()
P = ParamSpec("P")
R = TypeVar("R")


def is_transient(error: BaseException) -> bool:
    """A deadlock or serialization failure, as Django wraps psycopg's error."""
    return isinstance(error, OperationalError) and isinstance(
        error.__cause__,
        psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected,
    )


def is_unavailable(error: BaseException) -> bool:
    """The database cannot be reached or takes no more connections: refused, timed out,
    too many clients (SQLSTATE class 53), shutting down or gone mid-request (57P, 08),
    a pool that had no connection to give. Not a bug in a query: the request is
    answered 503 with Retry-After (crm.core.middleware.DatabaseUnavailableMiddleware).

    psycopg gives errors raised by libpq itself (no server answer) no SQLSTATE."""
    if isinstance(error, InterfaceError):
        return isinstance(error.__cause__, psycopg.InterfaceError)
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    if not isinstance(cause, psycopg.OperationalError):
        return False
    state = cause.sqlstate or ""
    return not state or state.startswith(("08", "53", "57P"))


def retry_transient(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a service again (at most MAX_RETRIES more times) when PostgreSQL aborted its
    transaction as a deadlock victim or a serialization failure.

    Only the outermost transaction can be repeated: inside someone else's atomic block
    the error goes up to whoever owns the transaction."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if connection.in_atomic_block:
            return fn(*args, **kwargs)
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except OperationalError as error:
                if not is_transient(error) or attempt >= MAX_RETRIES:
                    if is_transient(error):
                        retry_counts["gave_up"] += 1
                        _retry_log.error(
                            "kehu.db gave up %s after %d retries: %s",
                            fn.__qualname__,
                            attempt,
                            type(error.__cause__).__name__,
                        )
                    raise
                attempt += 1
                retry_counts["retried"] += 1
                _retry_log.warning(
                    "kehu.db retrying %s (attempt %d) after %s",
                    fn.__qualname__,
                    attempt,
                    type(error.__cause__).__name__,
                )
                # A little jitter, so the two victims of one deadlock do not meet again.
                time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311

    return wrapper


# --- bulk INSERT through COPY ----------------------------------------------------------

# Field classes whose stored value is the attribute itself when it has this exact type
# (their pre_save and get_db_prep_save return it unchanged); any other field or value
# goes through Django's own conversion, as bulk_create sends it.
_PLAIN: dict[type, type] = {
    models.CharField: str,
    models.TextField: str,
    models.EmailField: str,
    models.BooleanField: bool,
    models.IntegerField: int,
    models.PositiveIntegerField: int,
    models.BigIntegerField: int,
    models.BigAutoField: int,
    models.AutoField: int,
    models.ForeignKey: int,
    models.OneToOneField: int,
}


def copy_create(*batches: list[Model]) -> None:
    """INSERT lists of unsaved instances, one model per list, with one COPY per list
    (call in a transaction), as `bulk_create(batch)` for each list in turn would store
    them: the same values for every column (each field's `pre_save(add=True)` and
    `get_db_prep_save`), auto ids taken from the table's sequence in list order,
    generated columns left to the database. A later list may point at the rows of an
    earlier one (phones at the customers just given their ids).

    A third of bulk_create's Python time for a chunk of hundreds of rows (it builds,
    then psycopg re-parses, one statement with a parameter per value). Row triggers
    (pghistory) fire as for INSERT; an active pghistory context is set for the
    transaction first, because COPY does not go through Django's execute wrappers.
    A constraint violation raises IntegrityError for the whole COPY.
    """
    batches = tuple(batch for batch in batches if batch)
    if not batches:
        return
    with connection.cursor() as cursor, connection.wrap_database_errors:
        # pghistory prepends its context to each statement through the wrappers: this
        # one sets it (SET LOCAL) for the COPYs too. Without a context it does nothing.
        cursor.execute("DO $$ BEGIN END $$")
        for batch in batches:
            _copy(cursor, batch)


def _copy(cursor: Any, objs: list[Model]) -> None:
    meta = objs[0]._meta
    pk = meta.pk
    fields = [f for f in meta.concrete_fields if not f.generated]
    plain = [(f, _PLAIN.get(type(f))) for f in fields]
    for obj in objs:
        # As bulk_create: a related object saved since it was assigned gives its id.
        obj._prepare_related_fields_for_save(operation_name="copy_create")
    if isinstance(pk, models.AutoField | models.BigAutoField):
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s))"
            " FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(objs)],
        )
        for obj, (value,) in zip(objs, sorted(cursor.fetchall()), strict=True):
            setattr(obj, pk.attname, value)
    table = connection.ops.quote_name(meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # nosec B608 # names from the model
        for obj in objs:
            row = []
            for field, kind in plain:
                value = getattr(obj, field.attname)
                if kind is None or (value is not None and type(value) is not kind):
                    value = field.get_db_prep_save(
                        field.pre_save(obj, True), connection
                    )
                    if hasattr(value, "resolve_expression"):
                        raise TypeError(f"copy_create cannot send {value!r}")
                row.append(value)
            copy.write_row(row)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
