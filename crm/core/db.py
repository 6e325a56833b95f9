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
import psycopg
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Model


def audited(by: Any) -> pghistory.context:
    """Tag the audit rows written inside the block with the acting user (or the system)."""
    return pghistory.context(user=by.pk if by else None)


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
