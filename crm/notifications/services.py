from __future__ import annotations

from typing import Any

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from crm.notifications.models import Notification

TITLE_LENGTH = Notification._meta.get_field("title").max_length


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
            return None
        if email and recipient.email:
            message = EmailMessage(
                subject=title,
                body=f"{body}\n\n{url}".strip(),
                to=[recipient.email],
                # Lets a mail gateway that supports it drop a resend of the same message.
                headers={"X-Kehu-Idempotency-Key": key},
            )
            message.send()
            notification.emailed_at = timezone.now()
            notification.save(update_fields=["emailed_at"])
    return notification


def notifications_mark_read(*, by: Any, ids: list[int] | None = None) -> int:
    unread = Notification.objects.unread().filter(recipient=by)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())
