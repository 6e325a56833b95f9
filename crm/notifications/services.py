from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from crm.notifications.models import Notification

TITLE_LENGTH = Notification._meta.get_field("title").max_length
REASON_LENGTH = Notification._meta.get_field("reason").max_length
# A notification joins an unread line of its group (same recipient, same group key)
# started at most this long ago; later ones start a new line.
GROUP_WINDOW = timedelta(hours=4)
# The record of one e-mail sent (what `.filter(pk=...).update(emailed_at=...)` writes),
# as plain SQL, prepared: it runs once per e-mail.
_MARK_EMAILED = (
    f'UPDATE "{Notification._meta.db_table}" SET "emailed_at" = %s '  # noqa: S608
    f'WHERE "{Notification._meta.db_table}"."id" = %s'
)
# The session's commits stop waiting for the WAL flush while e-mails are recorded
# (notifications_email_pending), and the previous setting is put back afterwards.
_SYNC_COMMIT_OFF = (
    "SELECT current_setting('synchronous_commit'), "
    "set_config('synchronous_commit', 'off', false)"
)
_SYNC_COMMIT_SET = "SELECT set_config('synchronous_commit', %s, false)"


def _title_line(title: str) -> str:
    """One line that fits the column: titles quote subjects and names that users typed
    (up to 200 characters plus our prefix), and a line break in an e-mail subject is
    refused by Django as header injection."""
    line = " ".join(str(title).split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def _open_line(recipient_id: int, group: str, now: datetime) -> int | None:
    """The unread line `group` joins for this recipient, if one started recently."""
    if not group:
        return None
    return (
        Notification.objects.filter(
            recipient_id=recipient_id,
            group_key=group,
            read_at__isnull=True,
            grouped_into__isnull=True,
            created_at__gte=now - GROUP_WINDOW,
        )
        .order_by("-created_at")
        .values_list("pk", flat=True)
        .first()
    )


def notification_send(
    *,
    recipient: Any,
    key: str,
    title: str,
    body: str = "",
    url: str = "",
    email: bool = True,
    reason: str = "",
    group: str = "",
    actor: Any = None,
) -> Notification | None:
    """Create the in-app notification and e-mail it, once per `key`.

    `reason` says why the recipient gets it ("你是该工单的处理人"), shown on the list:
    pass the Chinese source text marked with `gettext_noop`, so the list translates it
    into the reader's language.
    `group` (same kind and target, e.g. "ticket:12:sla") folds it into an unread line
    of the same group from the last GROUP_WINDOW. `actor`, the user whose action caused
    it: nobody is notified of their own action, so it returns None when the recipient
    is the actor. Returns None too when a notification with this key already exists (a
    redelivery). Runs inside the caller's transaction: if that rolls back, so does the
    notification.
    """
    if actor is not None and getattr(actor, "pk", actor) == recipient.pk:
        return None
    title = _title_line(title)
    with transaction.atomic():
        notification, created = Notification.objects.get_or_create(
            idempotency_key=key,
            defaults={
                "recipient": recipient,
                "title": title,
                "body": body,
                "url": url,
                "reason": str(reason)[:REASON_LENGTH],
                "group_key": group,
                "grouped_into_id": _open_line(recipient.pk, group, timezone.now()),
            },
        )
        if not created:
            if email and notification.emailed_at is None:
                # A batch delivery (notify_many) stored it and died before its e-mail
                # left: the e-mail is still owed.
                notifications_email_pending(keys=[key])
            return None
        if email and recipient.email:
            _email(notification, recipient.email).send()
            notification.emailed_at = timezone.now()
            notification.save(update_fields=["emailed_at"])
    return notification


def _email(notification: Notification, address: str, **kwargs: Any) -> EmailMessage:
    return _message(
        notification.title,
        notification.body,
        notification.url,
        notification.idempotency_key,
        address,
        **kwargs,
    )


def _message(
    title: str, body: str, url: str, key: str, address: str, **kwargs: Any
) -> EmailMessage:
    return EmailMessage(
        subject=title,
        body=f"{body}\n\n{url}".strip(),
        to=[address],
        # Lets a mail gateway that supports it drop a resend of the same message.
        headers={"X-Kehu-Idempotency-Key": key},
        **kwargs,
    )


@dataclass(frozen=True)
class Draft:
    """One notification for `notify_many`."""

    recipient_id: int
    key: str
    title: str
    body: str = ""
    url: str = ""
    reason: str = ""
    group: str = ""


def notify_many(drafts: Sequence[Draft], *, actor_id: int | None = None) -> list[str]:
    """Create many in-app notifications in one statement, once per key.

    Same rules as `notification_send`: a draft for `actor_id` (who caused them) is
    dropped, and a draft with a `group` joins its recipient's open line of that group.
    Returns the keys actually created now (a redelivered key already has its row and is
    left alone). E-mail them afterwards with `notifications_email_pending`, outside the
    caller's transaction, so that each e-mail's record commits as it leaves.
    """
    drafts = [d for d in drafts if actor_id is None or d.recipient_id != actor_id]
    # Drafts of one group for one recipient in one batch: the first starts (or joins)
    # the line, the others go in a second statement that finds it.
    firsts: list[Draft] = []
    rest: list[Draft] = []
    seen: set[tuple[int, str]] = set()
    for draft in drafts:
        group = (draft.recipient_id, draft.group)
        (rest if draft.group and group in seen else firsts).append(draft)
        seen.add(group)
    now = timezone.now()
    created = _insert_many(firsts, now)
    if rest:
        created += _insert_many(rest, now)
    return created


# The batch INSERT of `notify_many`: one text whatever the batch size (the drafts go as
# seven arrays), so psycopg and PostgreSQL parse it once per process, not per batch.
# The subquery is the line each draft joins (`_open_line`). It names recipient and group
# but not the window, which is checked on the one row it finds: the newest open line of
# the group, so the same line as "the newest open line within the window". That way
# only notification_open_group (recipient, group_key, -created_at) answers it from its
# first entry. With the window in the WHERE clause, notification_unread_line
# (recipient, -created_at) could look as cheap to a planner whose statistics predate
# the window (as they do during a sweep), and each draft then read every unread line
# its recipient got in the window, dead ones of earlier sweeps included: a team lead's
# thousands (issue 14; issue 18 saw it on the bench data after an earlier sweep, 53 s
# in this INSERT over 10,000 escalations). `n.group_key <> ''` follows
# from the other conditions, but the planner uses that partial index only when the
# query says it.
_INSERT_MANY = (
    f"INSERT INTO {Notification._meta.db_table} (recipient_id, title, body, url,"  # noqa: S608  # nosec B608 - table name from the model, values as parameters
    " reason, group_key, idempotency_key, created_at, grouped_into_id)"
    " SELECT v.recipient_id, v.title, v.body, v.url, v.reason, v.group_key,"
    " v.idempotency_key, %(now)s, ("
    "  SELECT CASE WHEN n.created_at >= %(window)s THEN n.id END"
    f"  FROM {Notification._meta.db_table} n WHERE v.group_key <> ''"
    "   AND n.recipient_id = v.recipient_id AND n.group_key = v.group_key"
    "   AND n.group_key <> '' AND n.read_at IS NULL AND n.grouped_into_id IS NULL"
    "   ORDER BY n.created_at DESC LIMIT 1)"
    " FROM unnest(%(recipients)s::bigint[], %(titles)s::text[], %(bodies)s::text[],"
    " %(urls)s::text[], %(reasons)s::text[], %(groups)s::text[], %(keys)s::text[])"
    " AS v(recipient_id, title, body, url, reason, group_key, idempotency_key)"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key"
)


def _insert_many(drafts: Sequence[Draft], now: datetime) -> list[str]:
    if not drafts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_MANY,
            {
                "now": now,
                "window": now - GROUP_WINDOW,
                "recipients": [draft.recipient_id for draft in drafts],
                "titles": [_title_line(draft.title) for draft in drafts],
                "bodies": [draft.body for draft in drafts],
                "urls": [draft.url for draft in drafts],
                "reasons": [str(draft.reason)[:REASON_LENGTH] for draft in drafts],
                "groups": [draft.group for draft in drafts],
                "keys": [draft.key for draft in drafts],
            },
        )
        return [row[0] for row in cursor.fetchall()]


def notifications_email_pending(*, keys: Sequence[str]) -> int:
    """E-mail every notification among `keys` that has not been e-mailed yet.

    One query finds them, one mail connection sends them, and each one's `emailed_at` is
    written right after it left -- its own commit when no transaction is open -- so a
    worker killed in the middle resends at most the one e-mail in flight (D3), not the
    whole batch. Returns how many were sent.

    Those commits do not wait for the WAL flush (`synchronous_commit = off` for the
    session while the e-mails go, `_marking`): the server has applied the commit when
    it answers, so a killed worker loses none of them. Only a crash of PostgreSQL or its
    machine can lose the last of them (at most 3 x wal_writer_delay), and then the
    action's later, synchronous done mark is lost too, so the sweep redelivers it and
    those e-mails go again: at-least-once, the staff channel's semantics
    (docs/reliability.md). Inside a caller's transaction the UPDATE is just part of it.
    """
    # Tuples, not model instances: a sweep e-mails thousands.
    pending = list(
        Notification.objects.filter(idempotency_key__in=keys, emailed_at__isnull=True)
        .exclude(recipient__email="")
        .order_by("pk")
        .values_list(
            "pk", "title", "body", "url", "idempotency_key", "recipient__email"
        )
    )
    if not pending:
        return 0
    with get_connection() as mail, _marking() as cursor:
        for pk, title, body, url, key, address in pending:
            _message(title, body, url, key, address, connection=mail).send()
            cursor.execute(_MARK_EMAILED, [timezone.now(), pk])
    return len(pending)


class _PreparedCursor(psycopg.Cursor):
    """Binds its parameters on the server and has every statement prepared, so that
    PostgreSQL parses and plans the one UPDATE once per connection instead of once
    per e-mail (Django's own cursors bind on the client: simple query protocol)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(query, params, **{**kwargs, "prepare": True})

    def _send_query_prepared(self, name: bytes, pgq: Any, **kwargs: Any) -> None:
        # psycopg keeps the query it ran only when it ran it unprepared; Django's query
        # log (and CaptureQueriesContext) reads the statement from there.
        self._query = pgq
        super()._send_query_prepared(name, pgq, **kwargs)


@contextmanager
def _marking() -> Iterator[Any]:
    """A cursor for the records of e-mails sent, in Django's wrapper (so statement
    counters and the query log see them).

    In autocommit (a worker) each UPDATE is its own transaction, and for as long as
    this lasts the session's commits do not wait for the WAL flush; the setting is put
    back afterwards, also when an e-mail fails. Inside a caller's transaction the
    UPDATEs are just part of it and nothing is changed.
    """
    connection.ensure_connection()
    raw = connection.connection
    threshold = raw.prepare_threshold
    # Django turns psycopg's prepared statements off (its cursors could not use them
    # anyway); this cursor asks for them explicitly, which needs a threshold set.
    raw.prepare_threshold = 5
    cursor = connection._prepare_cursor(_PreparedCursor(raw))  # noqa: SLF001 - wrap a cursor of ours as Django wraps its own
    try:
        if not connection.get_autocommit():
            yield cursor
            return
        cursor.execute(_SYNC_COMMIT_OFF)
        previous = cursor.fetchone()[0]
        try:
            yield cursor
        finally:
            cursor.execute(_SYNC_COMMIT_SET, [previous])
    finally:
        cursor.close()
        raw.prepare_threshold = threshold


def notifications_mark_read(*, by: Any, ids: list[int] | None = None) -> int:
    """Mark `by`'s notifications read: these lines with everything grouped into them,
    or all of them. Returns how many rows changed."""
    unread = Notification.objects.unread().filter(recipient=by)
    if ids is not None:
        unread = unread.filter(Q(pk__in=ids) | Q(grouped_into__in=ids))
    return unread.update(read_at=timezone.now())
