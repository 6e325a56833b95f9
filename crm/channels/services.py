"""Queue and deliver messages to customers (docs/channels.md).

`message_queue` stores the message and its delivery action in the caller's
transaction; the scheduled-action pipeline (crm/scheduler) delivers it at most once
through `message_deliver`. A refusal worth retrying is tried again by a new action
after the pipeline's back-off, up to KEHU_CHANNEL_MAX_ATTEMPTS; then, or at once for a
permanent refusal, the message is failed.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.channels import backends, registry
from crm.channels.models import OutboundMessage
from crm.scheduler import services as scheduler

logger = logging.getLogger(__name__)
DELIVER = "channels.deliver"
Channel = OutboundMessage.Channel
State = OutboundMessage.State
KEY_LENGTH = OutboundMessage._meta.get_field("idempotency_key").max_length
BODY_MAX = 5000
_SMS_NUMBER = re.compile(r"\+?[0-9]{5,20}")


def _attempt_key(message: OutboundMessage, attempt: int) -> str:
    return f"channels:{message.pk}:{attempt}"


def address_check(*, channel: str, to: str) -> str:
    """The address cleaned, or ValidationError({"to": ...}) when it cannot be used."""
    to = (to or "").strip()
    if channel == Channel.EMAIL:
        try:
            validate_email(to)
        except ValidationError as exc:
            raise ValidationError({"to": _("邮箱地址无效。")}) from exc
        return to
    if channel == Channel.SMS:
        number = re.sub(r"[\s-]", "", to)
        if not _SMS_NUMBER.fullmatch(number):
            raise ValidationError({"to": _("手机号无效，无法发送短信。")})
        return number
    raise ValidationError({"channel": _("不支持的渠道。")})


def message_queue(
    *,
    channel: str,
    to: str,
    body: str,
    key: str,
    subject: str = "",
    purpose: str = "",
    due_at: datetime | None = None,
) -> OutboundMessage:
    """Store a queued message and schedule its delivery, once per `key`.

    Call inside the business transaction: the message exists exactly when the change
    that sends it does. A second call with the same key returns the first message.
    """
    to = address_check(channel=channel, to=to)
    if not body.strip():
        raise ValidationError({"body": _("请填写内容。")})
    if len(key) > KEY_LENGTH:
        raise ValueError(f"message key longer than {KEY_LENGTH}: {key!r}")
    with transaction.atomic():
        message, created = OutboundMessage.objects.get_or_create(
            idempotency_key=key,
            defaults={
                "channel": channel,
                "to": to,
                "subject": subject[:200],
                "body": body[:BODY_MAX],
                "purpose": purpose,
            },
        )
        if created:
            scheduler.action_schedule(
                kind=DELIVER,
                target_id=message.pk,
                due_at=due_at or timezone.now(),
                key=_attempt_key(message, 1),
            )
    return message


def message_deliver(action: Any) -> None:
    """The pipeline's handler: send one queued message, record what happened.

    Idempotent: a message no longer queued is left alone. A refusal is recorded on the
    message and not raised, so the action is done; a retry is a new action.
    """
    message = (
        OutboundMessage.objects.select_for_update(no_key=True)
        .filter(pk=action.target_id)
        .first()
    )
    if message is None or message.state != State.QUEUED:
        return
    now = timezone.now()
    message.attempts += 1
    try:
        message.provider_id = _send(message)
    except backends.ChannelError as exc:
        message.error = str(exc)[:2000]
        if exc.permanent or message.attempts >= max(
            1, settings.KEHU_CHANNEL_MAX_ATTEMPTS
        ):
            message.state = State.FAILED
        else:
            scheduler.action_schedule(
                kind=DELIVER,
                target_id=message.pk,
                due_at=now + scheduler.retry_delay(message.attempts),
                key=_attempt_key(message, message.attempts + 1),
            )
    else:
        message.state, message.sent_at, message.error = State.SENT, now, ""
    message.save(update_fields=["attempts", "provider_id", "error", "state", "sent_at"])
    if message.state != State.QUEUED:
        _tell(message)


def _send(message: OutboundMessage) -> str:
    if message.channel == Channel.EMAIL:
        return backends.send_email(
            to=message.to,
            subject=message.subject,
            body=message.body,
            key=message.idempotency_key,
        )
    return backends.sms_backend().send(
        to=message.to, body=message.body, key=message.idempotency_key
    )


def _tell(message: OutboundMessage) -> None:
    """Run the purpose's callbacks; one that raises must not undo a sent message (the
    action would be retried and the customer texted twice)."""
    for callback in registry.callbacks_for(message.purpose):
        try:
            with transaction.atomic():
                callback(message)
        except Exception:  # noqa: BLE001 - logged; the delivery stands
            logger.exception(
                "outcome callback %r failed for message %s", callback, message.pk
            )
