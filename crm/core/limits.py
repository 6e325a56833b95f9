"""Rate and quota limits, each enforced by one atomic statement in PostgreSQL.

A limit is "at most `limit` uses of one key (an address, a phone, a username on an
address) per window". `take` counts a use and checks the limit in the same
`INSERT … ON CONFLICT DO UPDATE … WHERE count < limit` upsert: PostgreSQL locks the
key's row for the statement (and, inside a transaction, until it ends), so of any
number of parallel requests exactly `limit` get a slot and the rest get None. Counting
rows and then inserting one, by contrast, lets every request that counted before the
others inserted pass (issue 11, findings 3 and 4).

The window starts at the key's first use and lasts `window`; the first use after it
ended starts the next one in the same statement. So at most `limit` uses fall in any
window, and at most 2 × `limit` in any span of one window's length that straddles two.

Inside a transaction the slot is part of it: a request whose work rolls back (a form
error, a conflict) gives its slot back with everything else. Outside one (the login
page) the slot is committed at once, before the work it guards, so parallel requests
see it; `give_back` returns it when the work turned out not to count (a right
password), `keep` marks it final (a wrong one) and `forgive` forgets the kept ones (a
right password after wrong ones).

The counters live in the database, Kehu's source of truth, so every web process sees
the same counts and a Redis restart forgets none. One row per key, reused window after
window; `purge` deletes keys whose window ended (hourly, `crm.core.tasks`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from crm.core.models import LimitCounter

PURGE_BATCH = 5000

_TABLE = LimitCounter._meta.db_table
_TAKE = f"""
    INSERT INTO {_TABLE} AS c (key, count, kept, window_ends_at)
    VALUES (%(key)s, 1, 0, %(ends_at)s)
    ON CONFLICT (key) DO UPDATE SET
        count = CASE WHEN c.window_ends_at <= %(now)s THEN 1 ELSE c.count + 1 END,
        kept = CASE WHEN c.window_ends_at <= %(now)s THEN 0 ELSE c.kept END,
        window_ends_at = CASE
            WHEN c.window_ends_at <= %(now)s THEN EXCLUDED.window_ends_at
            ELSE c.window_ends_at
        END
    WHERE c.window_ends_at <= %(now)s OR c.count < %(limit)s
    RETURNING window_ends_at
"""  # noqa: S608 - the table name is the model's, every value a parameter
_GIVE_BACK = f"""
    UPDATE {_TABLE} SET count = count - 1
    WHERE key = %(key)s AND window_ends_at = %(ends_at)s AND count > 0
"""  # noqa: S608
_KEEP = f"""
    UPDATE {_TABLE} SET kept = kept + 1
    WHERE key = %(key)s AND window_ends_at = %(ends_at)s AND kept < count
"""  # noqa: S608
_FORGIVE = f"""
    UPDATE {_TABLE} SET count = GREATEST(count - 1 - kept, 0), kept = 0
    WHERE key = %(key)s AND window_ends_at = %(ends_at)s
"""  # noqa: S608
_PURGE = f"""
    DELETE FROM {_TABLE} WHERE key IN (
        SELECT key FROM {_TABLE} WHERE window_ends_at < %(now)s LIMIT %(batch)s
    )
"""  # noqa: S608


@dataclass(frozen=True)
class Slot:
    """One use of a limit's key, in the window that ends at `window_ends_at`."""

    key: str
    window_ends_at: datetime


def key_for(name: str, *parts: object) -> str:
    """`name` and a digest of `parts`: bounded in length whatever a client typed (NUL
    bytes included), and no address, phone or username kept in clear."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8"))
    return f"{name}:{digest.hexdigest()[:40]}"


def take(
    name: str,
    *parts: object,
    limit: int,
    window: timedelta,
    now: datetime | None = None,
) -> Slot | None:
    """Count one use of the key (`name`, `parts`) and return its slot, or None when the
    key already had `limit` uses in its window (nothing is counted then)."""
    if limit <= 0:
        return None
    now = now or timezone.now()
    key = key_for(name, *parts)
    with connection.cursor() as cursor:
        cursor.execute(
            _TAKE, {"key": key, "ends_at": now + window, "now": now, "limit": limit}
        )
        row = cursor.fetchone()
    return Slot(key, row[0]) if row else None


def give_back(slot: Slot) -> None:
    """Un-count a use that turned out not to count (its window may have ended since:
    then there is nothing to give back)."""
    with connection.cursor() as cursor:
        cursor.execute(_GIVE_BACK, {"key": slot.key, "ends_at": slot.window_ends_at})


def keep(slot: Slot) -> None:
    """Mark a use as final: it stays counted, and `forgive` may take it off again.

    Only needed for a key that is ever forgiven; other slots stay counted anyway."""
    with connection.cursor() as cursor:
        cursor.execute(_KEEP, {"key": slot.key, "ends_at": slot.window_ends_at})


def forgive(slot: Slot) -> None:
    """Give `slot` back and forget the key's kept uses (a right password after wrong
    ones, as django-axes' AXES_RESET_ON_SUCCESS). Uses still in progress stay counted:
    forgiving never lets more of them run at once than the limit."""
    with connection.cursor() as cursor:
        cursor.execute(_FORGIVE, {"key": slot.key, "ends_at": slot.window_ends_at})


def used(name: str, *parts: object, now: datetime | None = None) -> int:
    """How many uses the key has in its current window (for pages and tests)."""
    now = now or timezone.now()
    row = (
        LimitCounter.objects.filter(key=key_for(name, *parts), window_ends_at__gt=now)
        .values_list("count", flat=True)
        .first()
    )
    return row or 0


def purge(*, now: datetime | None = None) -> int:
    """Delete the keys whose window ended, in batches of PURGE_BATCH; returns how many.

    Each batch is its own short statement, so the purge never holds many row locks; a
    take racing with it simply inserts the key again."""
    now = now or timezone.now()
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_PURGE, {"now": now, "batch": PURGE_BATCH})
            batch = cursor.rowcount
        deleted += batch
        if batch < PURGE_BATCH:
            return deleted
