"""Every write of the service desk: tickets, their workflow and SLA clocks, work orders,
assets and the public intake form.

SLA deadlines are stored on the ticket (as Zammad does) and every warning and
escalation is a ScheduledAction written in the same transaction (crm/scheduler), so a
worker or Redis restart loses none and sends none twice.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from crm.channels import services as channels
from crm.channels.models import OutboundMessage
from crm.core.db import audited, lock_in_order, retry_transient
from crm.notifications import services as notifications
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import events, routing, sla, warranty
from service.models import (
    Asset,
    AssignmentCursor,
    Category,
    SLAPolicy,
    Ticket,
    TicketAttachment,
    TicketLink,
    TicketMessage,
    TicketTransition,
    WorkOrder,
)
from service.sla import Calendar

Status = Ticket.Status
SLA_WARNING = "service.sla_warning"
SLA_BREACH = "service.sla_breach"
SLA_MANAGER = "service.sla_manager"
WORKORDER_OVERDUE = "service.workorder_overdue"
WORKORDER_CREATED = "service.workorder_created"
SLA_KINDS = (SLA_WARNING, SLA_BREACH, SLA_MANAGER)

# Which status may follow which; anything else is refused.
TRANSITIONS: dict[str, set[str]] = {
    Status.NEW: {Status.ASSIGNED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED},
    Status.ASSIGNED: {Status.IN_PROGRESS, Status.WAITING, Status.RESOLVED},
    Status.IN_PROGRESS: {Status.WAITING, Status.RESOLVED},
    Status.WAITING: {Status.IN_PROGRESS, Status.RESOLVED},
    Status.RESOLVED: {Status.CLOSED, Status.IN_PROGRESS},
    Status.CLOSED: {Status.IN_PROGRESS},
}
UPLOAD_TYPES = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        ".docx",
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# File signatures: the declared type must match the bytes, not only the name.
MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),  # and "WEBP" at byte 8, checked in _looks_like
    "application/pdf": (b"%PDF",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        b"PK\x03\x04",
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (
        b"PK\x03\x04",
    ),
}


class EditConflict(Exception):
    def __init__(self, current: Ticket) -> None:
        super().__init__("stale ticket version")
        self.current = current


def _require(by: Any, perm: str) -> None:
    if by is not None and not by.has_perm(perm):
        raise PermissionDenied


def next_reference() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('service_ticket_ref_seq')")
        number = cursor.fetchone()[0]
    return f"{timezone.localdate().year}{number:06d}"


# --- SLA clocks --------------------------------------------------------------------------


def sla_policy_for(
    *, ticket_type: str, priority: str, is_key_account: bool
) -> SLAPolicy | None:
    policies = SLAPolicy.objects.filter(ticket_type=ticket_type, priority=priority)
    if is_key_account:
        key = policies.filter(for_key_accounts=True).first()
        if key:
            return key
    return policies.filter(for_key_accounts=False).first()


def _key(ticket: Ticket, metric: str, stage: str, due: datetime) -> str:
    return f"ticket:{ticket.pk}:{metric}:{stage}:{int(due.timestamp())}"


def _schedule_clocks(ticket: Ticket, calendar: Calendar, now: datetime) -> None:
    """Schedule warning, breach and manager escalation for each running clock."""
    policy = ticket.sla_policy
    if policy is None or ticket.paused_at or not ticket.is_open:
        return
    clocks = [("resolution", ticket.resolution_due_at)]
    if ticket.first_responded_at is None:
        clocks.append(("first_response", ticket.first_response_due_at))
    manager_delay = timedelta(minutes=settings.KEHU_ESCALATION_MANAGER_MINUTES)
    for metric, due in clocks:
        if due is None:
            continue
        left = calendar.minutes_between(now, due)
        if left > policy.warn_before_minutes:
            warn_at = calendar.add_minutes(now, left - policy.warn_before_minutes)
            scheduler.action_schedule(
                kind=SLA_WARNING,
                target_id=ticket.pk,
                due_at=warn_at,
                key=_key(ticket, metric, "warning", due),
            )
        scheduler.action_schedule(
            kind=SLA_BREACH,
            target_id=ticket.pk,
            due_at=due,
            key=_key(ticket, metric, "breach", due),
        )
        scheduler.action_schedule(
            kind=SLA_MANAGER,
            target_id=ticket.pk,
            due_at=due + manager_delay,
            key=_key(ticket, metric, "manager", due),
        )


def _cancel_clocks(ticket: Ticket, metric: str | None = None) -> None:
    pending = ScheduledAction.objects.filter(
        kind__in=SLA_KINDS,
        target_id=ticket.pk,
        state__in=[ScheduledAction.State.PENDING, ScheduledAction.State.DISPATCHED],
    )
    if metric:
        pending = pending.filter(idempotency_key__contains=f":{metric}:")
    pending.update(state=ScheduledAction.State.CANCELLED)


def _start_clocks(ticket: Ticket, now: datetime, calendar: Calendar) -> None:
    policy = ticket.sla_policy
    if policy is None:
        return
    ticket.first_response_due_at = calendar.add_minutes(
        now, policy.first_response_minutes
    )
    ticket.resolution_due_at = calendar.add_minutes(now, policy.resolution_minutes)


# --- tickets -----------------------------------------------------------------------------


@retry_transient
def ticket_create(
    *,
    by: Any,
    customer: Any,
    ticket_type: str,
    channel: str,
    subject: str,
    description: str,
    priority: str = "normal",
    category: Category | None = None,
    asset: Asset | None = None,
    contact_name: str = "",
    contact_phone: str = "",
    team: Any = None,
    now: datetime | None = None,
) -> Ticket:
    """Open a ticket, start its SLA clocks and assign it round-robin when it can."""
    _require(by, "service.add_ticket")
    now = now or timezone.now()
    if asset is not None and asset.customer_id != customer.pk:
        raise ValidationError({"asset": _("该资产不属于此客户。")})
    ticket = Ticket(
        customer=customer,
        ticket_type=ticket_type,
        channel=channel,
        subject=subject.strip(),
        description=description.strip(),
        priority=priority,
        category=category,
        asset=asset,
        dealer_id=asset.dealer_id if asset else None,
        contact_name=contact_name,
        contact_phone=contact_phone,
        created_by=by,
    )
    # routing.py: a category routes the ticket and deals it round-robin; without one
    # it still gets a team (for its queue and its SLA escalation), unassigned.
    routed = team or routing.category_team(category)
    ticket.team = routed or routing.default_team(by=by)
    ticket.sla_policy = sla_policy_for(
        ticket_type=ticket_type,
        priority=priority,
        is_key_account=customer.is_key_account or customer.tier == "A",
    )
    # The policy chooses its calendar: business hours or 24×7 (sla.calendar_for).
    calendar = sla.calendar_for(ticket.sla_policy)
    _start_clocks(ticket, now, calendar)
    with transaction.atomic(), audited(by):
        ticket.reference = next_reference()
        ticket.full_clean(exclude=["reference"])
        ticket.save()
        TicketTransition.objects.create(ticket=ticket, to_status=Status.NEW, by=by)
        if routed is not None:
            _auto_assign(ticket, by=by)
        _schedule_clocks(ticket, calendar, now)
    return ticket


def _auto_assign(ticket: Ticket, *, by: Any) -> None:
    """Round-robin within the ticket's team, skipping people marked away."""
    cursor, _ = AssignmentCursor.objects.select_for_update(no_key=True).get_or_create(
        team_id=ticket.team_id
    )
    people = list(
        get_user_model()
        .objects.filter(team_id=ticket.team_id, is_active=True, is_away=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not people:
        return
    later = [
        pk for pk in people if cursor.last_user_id is None or pk > cursor.last_user_id
    ]
    chosen = later[0] if later else people[0]
    cursor.last_user_id = chosen
    cursor.save(update_fields=["last_user"])
    _assign(ticket, get_user_model().objects.get(pk=chosen), by=by)


def _assign(ticket: Ticket, assignee: Any, *, by: Any) -> None:
    previous = ticket.status
    ticket.assignee = assignee
    if ticket.status == Status.NEW:
        ticket.status = Status.ASSIGNED
    Ticket.objects.filter(pk=ticket.pk).update(
        assignee=assignee,
        status=ticket.status,
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    ticket.version += 1
    if previous != ticket.status:
        TicketTransition.objects.create(
            ticket=ticket, from_status=previous, to_status=ticket.status, by=by
        )
    notifications.notification_send(
        recipient=assignee,
        key=f"ticket:{ticket.pk}:assigned:{assignee.pk}:{ticket.version}",
        title=_("新工单 %(ref)s：%(subject)s")
        % {"ref": ticket.reference, "subject": ticket.subject},
        body=ticket.description[:200],
        url=ticket.get_absolute_url(),
        email=False,
        reason=gettext_noop("你是该工单的处理人"),
        group=f"ticket:{ticket.pk}:assigned",
        actor=by,
    )


@retry_transient
def ticket_assign(*, by: Any, ticket: Ticket, assignee: Any, version: int) -> Ticket:
    _require(by, "service.change_ticket")
    if not assignee.is_active or assignee.role not in (
        "service",
        "manager",
        "admin",
        "sales",
    ):
        raise ValidationError({"assignee": _("不能分派给此用户。")})
    with transaction.atomic(), audited(by):
        ticket = _lock(ticket, version)
        _assign(ticket, assignee, by=by)
    return ticket


def _lock(ticket: Ticket, version: int | None) -> Ticket:
    current = Ticket.objects.select_for_update(no_key=True).get(pk=ticket.pk)
    if version is not None and current.version != version:
        raise EditConflict(current)
    return current


@retry_transient
def ticket_update(
    *, by: Any, ticket: Ticket, version: int, data: dict[str, Any]
) -> Ticket:
    """Edit fields; a form loaded before someone else's save is refused (EditConflict)."""
    _require(by, "service.change_ticket")
    allowed = {
        "subject",
        "priority",
        "category",
        "ticket_type",
        "asset",
        "team",
        "contact_name",
        "contact_phone",
    }
    with transaction.atomic(), audited(by):
        current = _lock(ticket, version)
        old_policy = (current.ticket_type, current.priority)
        for field, value in data.items():
            if field not in allowed:
                raise ValidationError({field: _("该字段不可修改。")})
            setattr(current, field, value)
        current.dealer_id = (
            current.asset.dealer_id if current.asset_id else current.dealer_id
        )
        current.version += 1
        current.full_clean()
        if (current.ticket_type, current.priority) != old_policy and current.is_open:
            _restart_policy(current)
        current.save()
    return current


def _restart_policy(ticket: Ticket) -> None:
    """A new type or priority changes the targets by the difference between the policies.

    Shifting the current deadlines (rather than recounting from creation) keeps the time
    the ticket spent waiting on the customer out of the clock.
    """
    now = timezone.now()
    old = ticket.sla_policy
    new = sla_policy_for(
        ticket_type=ticket.ticket_type,
        priority=ticket.priority,
        is_key_account=ticket.customer.is_key_account or ticket.customer.tier == "A",
    )
    ticket.sla_policy = new
    calendar = sla.calendar_for(new)
    _cancel_clocks(ticket)
    if new is None:
        return
    if old is None:
        _start_clocks(ticket, now, calendar)
    else:
        shift_first = new.first_response_minutes - old.first_response_minutes
        shift_resolution = new.resolution_minutes - old.resolution_minutes
        if ticket.paused_at:
            if ticket.first_response_left is not None:
                ticket.first_response_left = max(
                    0, ticket.first_response_left + shift_first
                )
            if ticket.resolution_left is not None:
                ticket.resolution_left = max(
                    0, ticket.resolution_left + shift_resolution
                )
            return
        # What is left is read on the old policy's calendar, the rest counted on
        # the new one's (a priority raised to urgent may switch to 24×7).
        counted = sla.calendar_for(old) if old.calendar != new.calendar else calendar
        if ticket.first_response_due_at and ticket.first_responded_at is None:
            left = (
                counted.minutes_between(now, ticket.first_response_due_at) + shift_first
            )
            ticket.first_response_due_at = _due_from(calendar, now, left)
        if ticket.resolution_due_at:
            left = (
                counted.minutes_between(now, ticket.resolution_due_at)
                + shift_resolution
            )
            ticket.resolution_due_at = _due_from(calendar, now, left)
    _schedule_clocks(ticket, calendar, now)


def _due_from(calendar: Calendar, now: datetime, left: int) -> datetime:
    """`left` business minutes from now; a negative value is a deadline already passed."""
    if left >= 0:
        return calendar.add_minutes(now, left)
    return now - timedelta(minutes=-left)


@retry_transient
def ticket_transition(
    *,
    by: Any,
    ticket: Ticket,
    to_status: str,
    note: str = "",
    resolution_summary: str = "",
    now: datetime | None = None,
) -> Ticket:
    """Move a ticket along its workflow; only the TRANSITIONS rules are allowed.

    The UPDATE is conditional on the status read, so two agents cannot both move it.
    """
    _require(by, "service.change_ticket")
    now = now or timezone.now()
    if to_status not in Status.values:
        raise ValidationError({"status": _("状态无效。")})
    if to_status not in TRANSITIONS.get(ticket.status, set()):
        raise ValidationError(
            _("工单不能从“%(from)s”变为“%(to)s”。")
            % {"from": Status(ticket.status).label, "to": Status(to_status).label}
        )
    if to_status == Status.RESOLVED and not resolution_summary.strip():
        raise ValidationError({"resolution_summary": _("解决工单需要填写解决说明。")})
    calendar = sla.calendar_for(ticket.sla_policy)
    with transaction.atomic(), audited(by):
        current = Ticket.objects.select_for_update(no_key=True).get(pk=ticket.pk)
        if current.status != ticket.status:
            raise EditConflict(current)
        previous = current.status
        current.status = to_status
        if previous == Status.WAITING:
            _resume(current, calendar, now)
        if to_status == Status.WAITING:
            _pause(current, calendar, now)
        if to_status == Status.RESOLVED:
            current.resolved_at = now
            current.resolution_summary = resolution_summary.strip()
            _cancel_clocks(current)
        if to_status == Status.CLOSED:
            current.closed_at = now
            _cancel_clocks(current)
        reopened = previous in (Status.RESOLVED, Status.CLOSED) and current.is_open
        if reopened:
            current.resolved_at = current.closed_at = None
            if current.sla_policy:
                current.resolution_due_at = calendar.add_minutes(
                    now, current.sla_policy.resolution_minutes
                )
                current.resolution_breached = False
        current.version += 1
        current.save()
        TicketTransition.objects.create(
            ticket=current,
            from_status=previous,
            to_status=to_status,
            by=by,
            note=note[:300],
        )
        if (
            previous in (Status.WAITING, Status.RESOLVED, Status.CLOSED)
            and current.is_open
        ):
            _schedule_clocks(current, calendar, now)
        if to_status == Status.RESOLVED:
            resolved = current
            transaction.on_commit(lambda: events.ticket_resolved(resolved))
    return current


def _pause(ticket: Ticket, calendar: Calendar, now: datetime) -> None:
    ticket.paused_at = now
    if ticket.first_responded_at is None and ticket.first_response_due_at:
        ticket.first_response_left = max(
            0, calendar.minutes_between(now, ticket.first_response_due_at)
        )
    if ticket.resolution_due_at:
        ticket.resolution_left = max(
            0, calendar.minutes_between(now, ticket.resolution_due_at)
        )
    _cancel_clocks(ticket)


def _resume(ticket: Ticket, calendar: Calendar, now: datetime) -> None:
    if ticket.first_response_left is not None:
        ticket.first_response_due_at = calendar.add_minutes(
            now, ticket.first_response_left
        )
    if ticket.resolution_left is not None:
        ticket.resolution_due_at = calendar.add_minutes(now, ticket.resolution_left)
    ticket.paused_at = None
    ticket.first_response_left = ticket.resolution_left = None


REPLY_PURPOSE = "service.reply"
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def reply_channels(ticket: Ticket) -> dict[str, str]:
    """Where a reply to this ticket's customer can go: {"email": address, "sms": number}.

    SMS goes to the ticket's contact phone when it is a mobile number, else to the
    customer's; e-mail to the customer's address.
    """
    found: dict[str, str] = {}
    customer = ticket.customer
    if customer.email:
        found[OutboundMessage.Channel.EMAIL] = customer.email
    for number in (ticket.contact_phone, customer.phone):
        digits = re.sub(r"[\s-]", "", number or "")
        if _MOBILE.fullmatch(digits):
            found[OutboundMessage.Channel.SMS] = digits
            break
    return found


NO_CHANNEL = gettext_lazy(
    "客户没有邮箱或手机号，回复无法发送给客户。请先在客户资料中补充联系方式，"
    "或记为电话记录、内部备注。"
)


def _reply_message(ticket: Ticket, message: TicketMessage, channel: str) -> Any:
    """Queue the e-mail or SMS that carries a reply (crm/channels)."""
    available = reply_channels(ticket)
    if not available:
        raise ValidationError({"kind": NO_CHANNEL})
    if not channel:
        if len(available) > 1:
            raise ValidationError({"channel": _("请选择通过邮件还是短信发送。")})
        channel = next(iter(available))
    if channel not in available:
        raise ValidationError({"channel": _("客户没有这种联系方式。")})
    subject = _("关于工单 %(ref)s 的回复") % {"ref": ticket.reference}
    if channel == OutboundMessage.Channel.SMS:
        body = _("【客服】%(body)s（工单 %(ref)s）") % {
            "body": message.body,
            "ref": ticket.reference,
        }
    else:
        body = message.body
    return channels.message_queue(
        channel=channel,
        to=available[channel],
        subject=subject,
        body=body,
        purpose=REPLY_PURPOSE,
        key=f"ticket-message:{message.pk}",
    )


def _first_response(ticket: Ticket, when: datetime) -> None:
    """Stop the first-response clock at `when` (once)."""
    answered = Ticket.objects.filter(
        pk=ticket.pk, first_responded_at__isnull=True
    ).update(first_responded_at=when, updated_at=when)
    if answered:
        _cancel_clocks(ticket, "first_response")
        # A first reply after the deadline is a breach even if the breach
        # action had not run yet.
        Ticket.objects.filter(pk=ticket.pk, first_response_due_at__lt=when).update(
            first_response_breached=True
        )


@retry_transient
def ticket_message_add(
    *,
    by: Any,
    ticket: Ticket,
    body: str,
    kind: str = TicketMessage.Kind.REPLY,
    channel: str = "",
    now: datetime | None = None,
) -> TicketMessage:
    """A reply to the customer, a phone-call note or an internal note.

    A reply is queued as an e-mail or SMS (`channel`, or the customer's only one); it
    stops the first-response clock when it is sent (`reply_delivery_outcome`), not now.
    A phone-call note stops it at once: the customer was spoken to.
    """
    _require(by, "service.change_ticket")
    if not body.strip():
        raise ValidationError({"body": _("请填写内容。")})
    if kind not in TicketMessage.Kind.values:
        raise ValidationError({"kind": _("类型无效。")})
    now = now or timezone.now()
    with transaction.atomic(), audited(by):
        message = TicketMessage.objects.create(
            ticket=ticket, kind=kind, author=by, body=body.strip()
        )
        if kind == TicketMessage.Kind.REPLY:
            message.delivery = _reply_message(ticket, message, channel)
            message.save(update_fields=["delivery"])
        elif kind == TicketMessage.Kind.CALL:
            _first_response(ticket, now)
        Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
    return message


def reply_delivery_outcome(outbound: Any) -> None:
    """crm/channels tells the outcome of a reply's e-mail or SMS (registered in apps).

    Sent: the first-response clock stops at the time it left. Failed: its author is
    told, and the clock runs on.
    """
    message = (
        TicketMessage.objects.select_related("ticket", "author")
        .filter(delivery=outbound)
        .first()
    )
    if message is None:
        return
    ticket = message.ticket
    with audited(None):
        if outbound.state == OutboundMessage.State.SENT:
            _first_response(ticket, outbound.sent_at)
        elif message.author is not None:
            notifications.notification_send(
                recipient=message.author,
                key=f"ticket-message:{message.pk}:failed",
                title=_("回复未能送达客户：%(ref)s") % {"ref": ticket.reference},
                body=outbound.error[:200],
                url=ticket.get_absolute_url() + "#conversation",
                email=False,
                reason=gettext_noop("这是你写的回复"),
            )


def canned_reply_render(*, body: str, ticket: Ticket, agent: Any) -> str:
    return (
        body.replace("{客户}", ticket.customer.name)
        .replace("{工单号}", ticket.reference)
        .replace("{处理人}", str(agent))
    )


def attachment_add(*, by: Any, ticket: Ticket, upload: Any) -> TicketAttachment:
    """Store an upload after checking its size, extension and real type (magic bytes)."""
    _require(by, "service.change_ticket")
    name = (upload.name or "").replace("\x00", "")[-200:]
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    content_type = next(
        (t for t, exts in UPLOAD_TYPES.items() if extension in exts), None
    )
    if upload.size == 0:
        raise ValidationError({"file": _("文件是空的。")})
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValidationError({"file": _("文件不能超过 10 MB。")})
    if content_type is None:
        raise ValidationError(
            {"file": _("只能上传图片（JPG、PNG、WebP）、PDF、Word 或 Excel 文件。")}
        )
    head = upload.read(16)
    upload.seek(0)
    if not _looks_like(content_type, head):
        raise ValidationError({"file": _("文件内容与扩展名不符。")})
    attachment = TicketAttachment(
        ticket=ticket,
        original_name=name.rsplit("/", 1)[-1] or "file",
        content_type=content_type,
        size=upload.size,
        uploaded_by=by,
    )
    # Stored under a random name: the original name is only shown, never used as a path.
    import uuid

    attachment.file.save(f"{uuid.uuid4().hex}{extension}", upload, save=False)
    attachment.save()
    return attachment


def _looks_like(content_type: str, head: bytes) -> bool:
    if not any(head.startswith(magic) for magic in MAGIC[content_type]):
        return False
    return content_type != "image/webp" or head[8:12] == b"WEBP"


DIFFERENT_CUSTOMERS = gettext_lazy(
    "两张工单属于不同的客户，不能合并：一位客户的沟通记录会出现在另一位客户的工单里。"
    "如确是同一位客户，请先合并客户；否则请使用“关联工单”。"
)


@retry_transient
def ticket_merge(*, by: Any, target: Ticket, duplicate: Ticket) -> Ticket:
    """Move the duplicate's conversation and attachments into `target` and close it."""
    _require(by, "service.change_ticket")
    if target.pk == duplicate.pk:
        raise ValidationError(_("不能与自己合并。"))
    with transaction.atomic(), audited(by):
        locked = lock_in_order(Ticket, target.pk, duplicate.pk)
        target, duplicate = locked[target.pk], locked[duplicate.pk]
        # Refusing already-merged tickets stops two agents merging A into B and B into A.
        if target.merged_into_id or duplicate.merged_into_id:
            raise ValidationError(_("其中一张工单已被合并，请刷新后重试。"))
        if target.customer_id != duplicate.customer_id:
            # The duplicate's conversation (internal notes, the customer's name) would
            # be read by everyone who sees the target's customer, who may not see
            # this one. Merging the customers first moves their tickets together.
            raise ValidationError(DIFFERENT_CUSTOMERS)
        TicketMessage.objects.filter(ticket=duplicate).update(ticket=target)
        TicketAttachment.objects.filter(ticket=duplicate).update(ticket=target)
        TicketMessage.objects.create(
            ticket=target,
            kind=TicketMessage.Kind.NOTE,
            author=by,
            body=_("已合并工单 %(ref)s：%(subject)s")
            % {"ref": duplicate.reference, "subject": duplicate.subject},
        )
        previous = duplicate.status
        Ticket.objects.filter(pk=duplicate.pk).update(
            merged_into=target,
            status=Status.CLOSED,
            closed_at=timezone.now(),
            version=F("version") + 1,
        )
        TicketTransition.objects.create(
            ticket=duplicate,
            from_status=previous,
            to_status=Status.CLOSED,
            by=by,
            note=_("合并到 %(ref)s") % {"ref": target.reference},
        )
        _cancel_clocks(duplicate)
    return target


def ticket_link(*, by: Any, ticket: Ticket, other: Ticket) -> None:
    _require(by, "service.change_ticket")
    if ticket.pk == other.pk:
        raise ValidationError(_("不能关联自己。"))
    a, b = sorted([ticket.pk, other.pk])
    TicketLink.objects.get_or_create(a_id=a, b_id=b)


# --- escalation handlers (called by the scheduled-action pipeline) -----------------------


def _clock_still_running(ticket: Ticket, metric: str, due_ts: int) -> bool:
    if not ticket.is_open or ticket.paused_at:
        return False
    if metric == "first_response":
        due = ticket.first_response_due_at
        if ticket.first_responded_at is not None:
            return False
    else:
        due = ticket.resolution_due_at
    # A deadline moved since this action was scheduled: the action is stale.
    return due is not None and int(due.timestamp()) == due_ts


def sla_escalate(action: ScheduledAction) -> None:
    """Warn before a breach, escalate to the team lead at it, then to the managers."""
    ticket = (
        Ticket.objects.select_related("team__lead", "assignee", "customer")
        .filter(pk=action.target_id)
        .first()
    )
    managers: list[Any] = []

    def managers_of(ticket: Ticket) -> list[Any]:
        managers[:] = _department_managers(ticket)
        return managers

    step = _sla_step(action, ticket, managers_of)
    if step is None:
        return
    flag, title, recipient_ids = step
    people = {
        user.pk: user
        for user in (ticket.team.lead if ticket.team else None, ticket.assignee)
        if user is not None
    }
    people.update((manager.pk, manager) for manager in managers)
    _sla_flag(flag, [ticket.pk])
    for recipient_id in recipient_ids:
        notifications.notification_send(
            recipient=people[recipient_id],
            key=f"{action.idempotency_key}:{recipient_id}",
            title=title,
            body=ticket.subject,
            url=ticket.get_absolute_url(),
            reason=_sla_reason(ticket, recipient_id, flag[1]),
            group=f"ticket:{ticket.pk}:sla",
        )


# What `sla_escalate_many` reads of a ticket: its clocks, and who is told.
_SLA_TICKET_FIELDS = (
    "reference",
    "subject",
    "status",
    "paused_at",
    "first_response_due_at",
    "first_responded_at",
    "resolution_due_at",
    "assignee_id",
    "team__lead_id",
    "team__department_id",
)


def sla_escalate_many(actions: list[ScheduledAction]) -> None:
    """Batch handler: `sla_escalate` for a chunk of SLA actions, with one query for the
    tickets, one for the managers, an UPDATE per kind of flag, one INSERT for the
    notifications, then the owed e-mails over one mail connection."""
    # Only the columns the step reads: the recipients are ids (the e-mail query reads
    # their addresses), so no user row is loaded, and a ticket's row is wide.
    tickets = (
        Ticket.objects.select_related("team")
        .only(*_SLA_TICKET_FIELDS)
        .in_bulk([action.target_id for action in actions])
    )
    managers: list[Any] | None = None

    def managers_of(ticket: Ticket) -> list[Any]:
        nonlocal managers
        if managers is None:
            managers = list(
                get_user_model()
                .objects.filter(groups__name="manager", is_active=True)
                .select_related("team")
            )
        if ticket.team_id:
            department = ticket.team.department_id
            return [
                m for m in managers if m.team and m.team.department_id == department
            ]
        return managers

    url_of = _ticket_url_maker()
    flags: dict[tuple[str, str], list[int]] = {}
    drafts: list[notifications.Draft] = []
    for action in actions:
        ticket = tickets.get(action.target_id)
        step = _sla_step(action, ticket, managers_of)
        if step is None:
            continue
        flag, title, recipient_ids = step
        flags.setdefault(flag, []).append(ticket.pk)
        url = url_of(ticket.reference)
        drafts += [
            notifications.Draft(
                recipient_id=recipient_id,
                key=f"{action.idempotency_key}:{recipient_id}",
                title=title,
                body=ticket.subject,
                url=url,
                reason=_sla_reason(ticket, recipient_id, flag[1]),
                group=f"ticket:{ticket.pk}:sla",
            )
            for recipient_id in recipient_ids
        ]
    with scheduler.batch_transaction():
        for flag, ticket_ids in flags.items():
            _sla_flag(flag, ticket_ids)
        notifications.notify_many(drafts)
    notifications.notifications_email_pending(keys=[draft.key for draft in drafts])


def _ticket_url_maker() -> Any:
    """`ticket.get_absolute_url()` for many references with one `reverse()`: the
    reference is the pattern's only argument, so the rest of the path is the same for
    every ticket (a sweep builds 10,000, and reverse costs more than the query)."""
    head, _sep, tail = reverse("service:ticket_detail", args=["0"]).rpartition("0")
    safe = RFC3986_SUBDELIMS + "/~:@"  # what reverse() leaves unquoted

    def url_of(reference: str) -> str:
        return head + quote(reference, safe=safe) + tail

    return url_of


def _sla_step(
    action: ScheduledAction,
    ticket: Ticket | None,
    managers_of: Any,
) -> tuple[tuple[str, str], str, list[int]] | None:
    """What an SLA action does to its ticket: ((metric, stage), title, recipient ids),
    or None when the clock it was made for no longer runs (stale, paused, answered)."""
    _prefix, _pk, metric, stage, due_ts = action.idempotency_key.split(":")
    if ticket is None or not _clock_still_running(ticket, metric, int(due_ts)):
        return None
    label = _("首次响应") if metric == "first_response" else _("解决")
    lead_id = ticket.team.lead_id if ticket.team_id else None
    if stage == "warning":
        title = _("即将超时（%(what)s）：%(ref)s") % {
            "what": label,
            "ref": ticket.reference,
        }
        recipients = [ticket.assignee_id or lead_id]
    elif stage == "breach":
        title = _("已超时（%(what)s），升级到组长：%(ref)s") % {
            "what": label,
            "ref": ticket.reference,
        }
        recipients = [lead_id, ticket.assignee_id]
    else:
        title = _("超时未处理，升级到经理：%(ref)s") % {"ref": ticket.reference}
        recipients = [manager.pk for manager in managers_of(ticket)]
    return (metric, stage), title, list(dict.fromkeys(filter(None, recipients)))


# Why each recipient gets an SLA notification: (who they are, stage) -> reason, stored
# untranslated and translated on the list (crm.notifications).
SLA_REASONS = {
    ("assignee", True): gettext_noop("你是该工单的处理人；SLA 即将超时"),
    ("assignee", False): gettext_noop("你是该工单的处理人；SLA 已超时"),
    ("lead", True): gettext_noop("你是该工单所在团队的组长；SLA 即将超时"),
    ("lead", False): gettext_noop("你是该工单所在团队的组长；SLA 已超时"),
    ("manager", True): gettext_noop("你是该部门的经理；SLA 即将超时"),
    ("manager", False): gettext_noop("你是该部门的经理；SLA 已超时"),
}


def _sla_reason(ticket: Ticket, recipient_id: int, stage: str) -> str:
    """Why the user `recipient_id` gets this SLA notification, as the list shows it."""
    if recipient_id == ticket.assignee_id:
        who = "assignee"
    elif ticket.team_id and recipient_id == ticket.team.lead_id:
        who = "lead"
    else:
        who = "manager"
    return SLA_REASONS[(who, stage == "warning")]


def _sla_flag(flag: tuple[str, str], ticket_ids: list[int]) -> None:
    """Mark the breach and raise the escalation level (never lower it)."""
    metric, stage = flag
    tickets = Ticket.objects.filter(pk__in=ticket_ids)
    if stage == "breach":
        field = (
            "first_response_breached"
            if metric == "first_response"
            else "resolution_breached"
        )
        tickets.update(**{field: True}, escalation_level=models_greatest(1))
    elif stage != "warning":
        tickets.update(escalation_level=models_greatest(2))


def models_greatest(level: int) -> Any:
    from django.db.models import Value
    from django.db.models.functions import Greatest

    return Greatest(F("escalation_level"), Value(level))


def _department_managers(ticket: Ticket) -> Any:
    managers = get_user_model().objects.filter(groups__name="manager", is_active=True)
    if ticket.team_id:
        return managers.filter(team__department=ticket.team.department_id)
    return managers


# --- back-office work orders -------------------------------------------------------------


@retry_transient
def workorder_create(
    *,
    by: Any,
    ticket: Ticket,
    department: Any,
    title: str,
    due_at: datetime,
    description: str = "",
) -> WorkOrder:
    _require(by, "service.add_workorder")
    if due_at <= timezone.now():
        raise ValidationError({"due_at": _("完成时限必须晚于现在。")})
    order = WorkOrder(
        ticket=ticket,
        department=department,
        title=title.strip(),
        description=description,
        due_at=due_at,
        created_by=by,
    )
    order.full_clean()
    with transaction.atomic(), audited(by):
        order.save()
        scheduler.action_schedule(
            kind=WORKORDER_OVERDUE,
            target_id=order.pk,
            due_at=due_at,
            key=f"workorder:{order.pk}:overdue:{int(due_at.timestamp())}",
        )
        # The department hears of it through the pipeline, at once: the row commits
        # with the order, so no order goes unannounced and none is announced twice.
        scheduler.action_schedule(
            kind=WORKORDER_CREATED,
            target_id=order.pk,
            due_at=timezone.now(),
            key=f"workorder:{order.pk}:created",
        )
    return order


def workorder_recipients(order: WorkOrder) -> list[tuple[Any, str]]:
    """Who hears of a new work order, and why (docs/architecture.md, notifications):
    every active member of the department's teams who is not away; when nobody is
    (all away, or the department has no members yet), the leads of its teams. Never
    the person who created it."""
    from crm.accounts.models import Team

    users = get_user_model().objects.filter(is_active=True).order_by("pk")
    members = list(
        users.filter(team__department=order.department_id, is_away=False).exclude(
            pk=order.created_by_id
        )
    )
    if members:
        return [(member, gettext_noop("你是该部门成员")) for member in members]
    leads = Team.objects.filter(department=order.department_id).values("lead")
    return [
        (lead, gettext_noop("你是该部门的组长（部门成员都不在岗）"))
        for lead in users.filter(pk__in=leads).exclude(pk=order.created_by_id)
    ]


def workorder_announce(action: ScheduledAction) -> None:
    """Scheduled-action handler: tell the department a work order arrived (once per
    member and order: the notification keys carry both)."""
    order = (
        WorkOrder.objects.select_related("ticket", "department", "created_by")
        .filter(pk=action.target_id)
        .first()
    )
    if order is None or order.status not in (
        WorkOrder.Status.OPEN,
        WorkOrder.Status.IN_PROGRESS,
    ):
        return
    title = _("新后台工单（%(dept)s）：%(title)s") % {
        "dept": order.department.name,
        "title": order.title,
    }
    body = _("%(by)s 发出，工单 %(ref)s，完成时限 %(due)s。") % {
        "by": order.created_by or _("服务台"),
        "ref": order.ticket.reference,
        "due": timezone.localtime(order.due_at).strftime("%m-%d %H:%M"),
    }
    drafts = [
        notifications.Draft(
            recipient_id=recipient.pk,
            key=f"{action.idempotency_key}:{recipient.pk}",
            title=title,
            body=body,
            url=order.get_absolute_url(),
            reason=reason,
        )
        for recipient, reason in workorder_recipients(order)
    ]
    with transaction.atomic():
        notifications.notify_many(drafts, actor_id=order.created_by_id)
    notifications.notifications_email_pending(keys=[draft.key for draft in drafts])


def can_work_on(user: Any, order: WorkOrder) -> bool:
    """Members of the order's department, and admins, may work on it."""
    if user.role == "admin":
        return True
    return bool(user.team_id) and user.team.department_id == order.department_id


@retry_transient
def workorder_update(
    *, by: Any, order: WorkOrder, status: str, result: str = ""
) -> WorkOrder:
    if not can_work_on(by, order):
        raise PermissionDenied
    if status not in WorkOrder.Status.values:
        raise ValidationError({"status": _("状态无效。")})
    if status == WorkOrder.Status.DONE and not result.strip():
        raise ValidationError({"result": _("完成时请填写处理结果。")})
    with transaction.atomic(), audited(by):
        changed = WorkOrder.objects.filter(
            pk=order.pk,
            status__in=[WorkOrder.Status.OPEN, WorkOrder.Status.IN_PROGRESS],
        ).update(
            status=status,
            result=result.strip(),
            assignee=by,
            completed_at=timezone.now() if status in ("done", "rejected") else None,
        )
        if not changed:
            raise ValidationError(_("该后台工单已结束，不能再修改。"))
        if status in ("done", "rejected"):
            scheduler.action_cancel(
                key=f"workorder:{order.pk}:overdue:{int(order.due_at.timestamp())}"
            )
            ticket = order.ticket
            if ticket.assignee_id:
                notifications.notification_send(
                    recipient=ticket.assignee,
                    key=f"workorder:{order.pk}:finished",
                    title=_("后台工单已处理：%(title)s") % {"title": order.title},
                    body=result[:200],
                    url=ticket.get_absolute_url(),
                    email=False,
                    reason=gettext_noop("你是该工单的处理人"),
                    group=f"ticket:{ticket.pk}:workorders",
                    actor=by,
                )
    order.refresh_from_db()
    return order


def workorder_rate(*, by: Any, order: WorkOrder, rating: int) -> WorkOrder:
    _require(by, "service.change_ticket")
    if order.status != WorkOrder.Status.DONE:
        raise ValidationError(_("只能评价已完成的后台工单。"))
    if not 1 <= rating <= 5:
        raise ValidationError({"rating": _("评分为 1 到 5 分。")})
    WorkOrder.objects.filter(pk=order.pk).update(rating=rating)
    order.rating = rating
    return order


def workorder_overdue(action: ScheduledAction) -> None:
    order = (
        WorkOrder.objects.select_related("ticket", "department")
        .filter(pk=action.target_id)
        .first()
    )
    if order is None or order.status not in (
        WorkOrder.Status.OPEN,
        WorkOrder.Status.IN_PROGRESS,
    ):
        return
    WorkOrder.objects.filter(pk=order.pk).update(is_overdue=True)
    from crm.accounts.models import Team

    leads = Team.objects.filter(department=order.department_id).values("lead")
    members = (
        get_user_model()
        .objects.filter(
            Q(team__department=order.department_id, groups__name="manager")
            | Q(pk__in=leads)
            | Q(pk=order.assignee_id),
            is_active=True,
        )
        .distinct()
    )
    recipients = list(members) + (
        [order.ticket.assignee] if order.ticket.assignee_id else []
    )
    for recipient in {r.pk: r for r in recipients}.values():
        if recipient.pk == order.ticket.assignee_id:
            reason = gettext_noop("你是该工单的处理人")
        elif recipient.pk == order.assignee_id:
            reason = gettext_noop("你是该后台工单的处理人")
        else:
            reason = gettext_noop("你是该部门的组长或经理")
        notifications.notification_send(
            recipient=recipient,
            key=f"{action.idempotency_key}:{recipient.pk}",
            title=_("后台工单超时：%(title)s") % {"title": order.title},
            body=_("%(dept)s 未在时限内完成。") % {"dept": order.department.name},
            url=order.ticket.get_absolute_url(),
            reason=reason,
            group=f"workorder:{order.pk}",
        )


@retry_transient
def caller_ticket_create(
    *,
    by: Any,
    name: str,
    phone: str,
    ticket: dict[str, Any],
    asset: dict[str, Any] | None = None,
    uploads: list[Any] = (),
) -> Ticket:
    """An unknown caller: register them (an unverified contact of the desk), their
    unit or appliance if given, and open the ticket with its files, all in one
    transaction: a refusal anywhere leaves nothing behind.

    The phone's duplicate check runs first, on its own (customers.services), so a
    refusal it audits is kept even though nothing else is written.
    """
    from customers import services as customer_services

    customer_services.check_numbers_free(by=by, phone_numbers=[phone])
    with transaction.atomic():
        customer = customer_services.caller_register(by=by, name=name, phone=phone)
        new_asset = None
        if asset and asset.get("name", "").strip():
            new_asset = asset_create(by=by, customer=customer, data=asset)
        created = ticket_create(by=by, customer=customer, asset=new_asset, **ticket)
        for upload in uploads:
            attachment_add(by=by, ticket=created, upload=upload)
    return created


# --- assets, customers' timeline and merges ---------------------------------------------


@retry_transient
def asset_create(*, by: Any, customer: Any, data: dict[str, Any]) -> Asset:
    _require(by, "service.add_asset")
    asset = Asset(customer=customer, **data)
    asset.full_clean()
    with transaction.atomic(), audited(by):
        asset.save()
        warranty.reminder_schedule(asset)
    return asset


def ticket_timeline_entries(customer: Any, before: datetime | None, limit: int) -> list:
    from customers.timeline import Entry

    tickets = Ticket.objects.filter(customer=customer)
    if before:
        tickets = tickets.filter(created_at__lte=before)
    return [
        Entry(
            at=ticket.created_at,
            kind="ticket",
            icon="headset",
            title=_("%(type)s %(reference)s：%(subject)s")
            % {
                "type": ticket.get_ticket_type_display(),
                "reference": ticket.reference,
                "subject": ticket.subject,
            },
            body=ticket.resolution_summary or ticket.description[:200],
            badge=ticket.get_status_display(),
            url=ticket.get_absolute_url(),
            id=ticket.pk,
        )
        for ticket in tickets.order_by("-created_at", "-id")[:limit]
    ]


def tickets_follow_customer_merge(survivor: Any, duplicate: Any) -> None:
    Ticket.objects.filter(customer=duplicate).update(customer=survivor)
    Asset.objects.filter(customer=duplicate).update(customer=survivor)
    Asset.objects.filter(dealer=duplicate).update(dealer=survivor)
    Ticket.objects.filter(dealer=duplicate).update(dealer=survivor)


# --- the public intake form --------------------------------------------------------------


def _intake_customer(number: str, name: str, now: datetime) -> Any:
    """The customer with this phone, created if there is none: an unverified contact
    of the service desk, not a sales lead, until an agent verifies it.

    Built by customers.builder, as the customer form and the import build one. Two
    first submissions from one new phone race on the unique phone index: the loser's
    savepoint rolls back and it uses the winner's customer.
    """
    from customers import builder
    from customers.models import Customer, CustomerPhone

    known = (
        CustomerPhone.objects.select_related("customer").filter(number=number).first()
    )
    if known:
        return known.customer
    new = builder.build(
        data={"name": name.strip()[:100] or number, "source": Customer.Source.ONLINE},
        phone_numbers=[number],
        now=now,
        verified=False,
    )
    builder.clean(new)
    try:
        with transaction.atomic():
            return builder.save(new, by=None)
    except builder.NumberTaken:
        return (
            CustomerPhone.objects.select_related("customer").get(number=number).customer
        )


@retry_transient
def intake_submit(
    *,
    ip: str,
    phone: str,
    name: str,
    ticket_type: str,
    description: str,
    now: datetime | None = None,
) -> Ticket:
    """A customer files a complaint or repair without logging in.

    Throttled per IP and per phone (crm.core.limits). The customer is found by phone,
    or created as an unverified contact so that the desk sees who called (spam never
    reaches the sales pool).
    """
    from crm.core import limits
    from customers import phones

    now = now or timezone.now()
    number, _kind = phones.normalise_phone(phone)
    if ticket_type not in ("complaint", "repair"):
        raise ValidationError({"ticket_type": _("请选择投诉或报修。")})
    hour = timedelta(hours=1)
    with transaction.atomic(), audited(None):
        # The slots are taken in this transaction: parallel posts from one address
        # wait on its counter row until the one before commits or rolls back, so
        # exactly the limit is accepted, and a post that fails gives its slot back.
        # Address before phone in every request, so no two wait on each other in turn.
        per_ip = settings.KEHU_INTAKE_PER_IP_HOUR
        if not limits.take("intake-ip", ip, limit=per_ip, window=hour, now=now):
            raise ValidationError(_("提交太频繁，请稍后再试或拨打客服热线。"))
        per_phone = settings.KEHU_INTAKE_PER_PHONE_HOUR
        if not limits.take(
            "intake-phone", number, limit=per_phone, window=hour, now=now
        ):
            raise ValidationError(_("该号码提交太频繁，请稍后再试或拨打客服热线。"))
        customer = _intake_customer(number, name, now)
        category = Category.objects.filter(
            name=_("报修") if ticket_type == "repair" else _("投诉")
        ).first()
        ticket = ticket_create(
            by=None,
            customer=customer,
            ticket_type=ticket_type,
            channel=Ticket.Channel.WEB,
            subject=description.strip()[:60],
            description=description,
            category=category,
            contact_name=name.strip()[:50],
            contact_phone=number,
            now=now,
        )
        intake_acknowledge(ticket=ticket)
        return ticket


# --- the customer follows the case (issue 13) --------------------------------------------

FOLLOW_SALT = "service.follow"
ACK_PURPOSE = "service.acknowledgement"
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


class FollowLinkError(Exception):
    """A customer's link that opens nothing: tampered, for no ticket, or expired."""

    def __init__(self, *, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def follow_token(ticket: Ticket) -> str:
    """The signed, dated token of the customer's personal link to one ticket."""
    return signing.dumps({"t": ticket.pk}, salt=FOLLOW_SALT)


def follow_url(ticket: Ticket) -> str:
    """The personal link as the customer opens it (KEHU_PUBLIC_URL + path)."""
    path = reverse("intake_follow", args=[follow_token(ticket)])
    return settings.KEHU_PUBLIC_URL.rstrip("/") + path


def ticket_for_follow_token(token: str) -> Ticket:
    """The ticket a token was signed for, if it is younger than KEHU_FOLLOW_LINK_DAYS."""
    max_age = timedelta(days=settings.KEHU_FOLLOW_LINK_DAYS)
    try:
        data = signing.loads(token, salt=FOLLOW_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise FollowLinkError(expired=True) from exc
    except signing.BadSignature as exc:
        raise FollowLinkError(expired=False) from exc
    pk = data.get("t") if isinstance(data, dict) else None
    ticket = (
        Ticket.objects.select_related("customer").filter(pk=pk).first()
        if isinstance(pk, int)
        else None
    )
    if ticket is None:
        raise FollowLinkError(expired=False)
    return ticket


def intake_acknowledge(*, ticket: Ticket) -> Any:
    """Text (or, without a mobile number, e-mail) the customer the ticket's reference
    and their personal link; once per ticket. None when there is nowhere to send it."""
    available = reply_channels(ticket)
    channel = next(
        (
            c
            for c in (OutboundMessage.Channel.SMS, OutboundMessage.Channel.EMAIL)
            if c in available
        ),
        None,
    )
    if channel is None:
        return None
    text = _(
        "【客服】已收到您的%(type)s，工单号 %(ref)s。查看进度、补充说明或照片：%(url)s"
    ) % {
        "type": ticket.get_ticket_type_display(),
        "ref": ticket.reference,
        "url": follow_url(ticket),
    }
    try:
        # A savepoint: an address the channel refuses costs the acknowledgement only,
        # never the customer's report.
        with transaction.atomic():
            return channels.message_queue(
                channel=channel,
                to=available[channel],
                subject=_("已收到您的反馈：工单 %(ref)s") % {"ref": ticket.reference},
                body=text,
                purpose=ACK_PURPOSE,
                key=f"ticket:{ticket.pk}:acknowledgement",
            )
    except ValidationError:
        return None


def _check_photo(photo: Any) -> None:
    name = (photo.name or "").lower()
    if not name.endswith(PHOTO_EXTENSIONS):
        raise ValidationError({"photo": _("只能上传 JPG、PNG 或 WebP 格式的照片。")})


@retry_transient
def ticket_customer_message_add(
    *,
    ticket: Ticket,
    body: str,
    ip: str,
    photo: Any = None,
    now: datetime | None = None,
) -> TicketMessage:
    """The customer adds a message or a photo on their personal page (no login).

    Throttled per address and per ticket (crm.core.limits); the photo passes the
    checks of `attachment_add` (size, type, magic bytes); the assignee (or, while
    nobody has it, the team lead) is notified.
    """
    from crm.core import limits

    now = now or timezone.now()
    body = body.strip()
    if not body and photo is None:
        raise ValidationError({"body": _("请填写留言或选择照片。")})
    if photo is not None:
        _check_photo(photo)
    hour = timedelta(hours=1)
    with transaction.atomic(), audited(None):
        per_ip = settings.KEHU_FOLLOW_PER_IP_HOUR
        if not limits.take("follow-ip", ip, limit=per_ip, window=hour, now=now):
            raise ValidationError(_("提交太频繁，请稍后再试或拨打客服热线。"))
        per_ticket = settings.KEHU_FOLLOW_PER_TICKET_HOUR
        if not limits.take(
            "follow-ticket", ticket.pk, limit=per_ticket, window=hour, now=now
        ):
            raise ValidationError(_("该工单的留言太频繁，请稍后再试或拨打客服热线。"))
        message = TicketMessage.objects.create(
            ticket=ticket,
            kind=TicketMessage.Kind.CUSTOMER,
            body=body or _("（客户上传了照片）"),
        )
        if photo is not None:
            try:
                attachment_add(by=None, ticket=ticket, upload=photo)
            except ValidationError as error:
                raise ValidationError(
                    {"photo": error.message_dict.get("file", error.messages)}
                ) from error
        Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
        _tell_about_customer_message(ticket, message)
    return message


def _tell_about_customer_message(ticket: Ticket, message: TicketMessage) -> None:
    if ticket.assignee_id:
        recipient, reason = ticket.assignee, gettext_noop("你是该工单的处理人")
    elif ticket.team_id and ticket.team.lead_id:
        recipient = ticket.team.lead
        reason = gettext_noop("你是该工单所在团队的组长，工单尚未分派")
    else:
        return
    notifications.notification_send(
        recipient=recipient,
        key=f"ticket-message:{message.pk}:customer",
        title=_("客户在工单 %(ref)s 留言") % {"ref": ticket.reference},
        body=message.body[:200],
        url=ticket.get_absolute_url() + "#conversation",
        email=False,
        reason=reason,
    )
