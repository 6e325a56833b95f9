from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.utils import timezone

from crm.notifications.models import Notification

TITLE_LENGTH = Notification._meta.get_field("title").max_length
# The record of one e-mail sent (what `.filter(pk=...).update(emailed_at=...)` writes),
# as plain SQL: it runs once per e-mail.
_MARK_EMAILED = (
    f'UPDATE "{Notification._meta.db_table}" SET "emailed_at" = %s '  # noqa: S608
    f'WHERE "{Notification._meta.db_table}"."id" = %s'
)


def _title_line(title: str) -> str:
    """One line that fits the column: titles quote subjects and names that users typed
    (up to 200 characters plus our prefix), and a line break in an e-mail subject is
    refused by Django as header injection."""
    line = " ".join(str(title).split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def notification_send(
    *,
    recipient: Any,
    key: str,
    title: str,
    body: str = "",
    url: str = "",
    email: bool = True,
) -> Notification | None:
    """Create the in-app notification and e-mail it, once per `key`.

    Returns None when a notification with this key already exists (a redelivery).
    Runs inside the caller's transaction: if that rolls back, so does the notification.
    """
    title = _title_line(title)
    with transaction.atomic():
        notification, created = Notification.objects.get_or_create(
            idempotency_key=key,
            defaults={"recipient": recipient, "title": title, "body": body, "url": url},
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
    return EmailMessage(
        subject=notification.title,
        body=f"{notification.body}\n\n{notification.url}".strip(),
        to=[address],
        # Lets a mail gateway that supports it drop a resend of the same message.
        headers={"X-Kehu-Idempotency-Key": notification.idempotency_key},
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


def notify_many(drafts: Sequence[Draft]) -> list[str]:
    """Create many in-app notifications in one statement, once per key.

    Returns the keys actually created now (a redelivered key already has its row and is
    left alone). E-mail them afterwards with `notifications_email_pending`, outside the
    caller's transaction, so that each e-mail's record commits as it leaves.
    """
    if not drafts:
        return []
    table = Notification._meta.db_table
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(drafts))
    created_at = timezone.now()
    params: list[Any] = []
    for draft in drafts:
        params += [
            draft.recipient_id,
            _title_line(draft.title),
            draft.body,
            draft.url,
            draft.key,
            created_at,
        ]
    with connection.cursor() as cursor:
        # The model's table name and placeholders only; the values go as parameters.
        sql = (
            f"INSERT INTO {table} (recipient_id, title, body, url, idempotency_key,"  # noqa: S608
            f" created_at) VALUES {rows}"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key"
        )
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def notifications_email_pending(*, keys: Sequence[str]) -> int:
    """E-mail every notification among `keys` that has not been e-mailed yet.

    One query finds them, one mail connection sends them, and each one's `emailed_at` is
    written right after it left -- its own commit when no transaction is open -- so a
    worker killed in the middle resends at most the one e-mail in flight (D3), not the
    whole batch. Returns how many were sent.

    Those commits do not wait for the WAL flush (`synchronous_commit = off`, for that
    one statement's transaction only): the server has applied the commit when it
    answers, so a killed worker loses none of them. Only a crash of PostgreSQL or its
    machine can lose the last of them (at most 3 x wal_writer_delay), and then the
    action's later, synchronous done mark is lost too, so the sweep redelivers it and
    those e-mails go again: at-least-once, the staff channel's semantics
    (docs/reliability.md). Inside a caller's transaction the UPDATE is just part of it.
    """
    pending = list(
        Notification.objects.filter(idempotency_key__in=keys, emailed_at__isnull=True)
        .exclude(recipient__email="")
        .select_related("recipient")
        .only("title", "body", "url", "idempotency_key", "recipient__email")
        .order_by("pk")
    )
    if not pending:
        return 0
    mark = _MARK_EMAILED
    if connection.get_autocommit():
        # One round trip: the two statements run as one implicit transaction, so SET
        # LOCAL covers exactly this UPDATE's commit.
        mark = "SET LOCAL synchronous_commit = off; " + _MARK_EMAILED
    with get_connection() as mail, connection.cursor() as cursor:
        for notification in pending:
            _email(notification, notification.recipient.email, connection=mail).send()
            cursor.execute(mark, [timezone.now(), notification.pk])
    return len(pending)


def notifications_mark_read(*, by: Any, ids: list[int] | None = None) -> int:
    unread = Notification.objects.unread().filter(recipient=by)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())
