"""Defects: recording, the rectification state machine, overdue escalation, the
contractors' links and the service-desk link (issue 17 part 4, handover.md §2.6).

Every write runs in one transaction under the acting user's audit context; every
state change is one DefectEvent row and checks the defect's `version` (optimistic: a
form posted from a stale page is refused, not applied over a newer change). A defect
that belongs to an event moves the live board's counters in the same transaction
(service/handover/counters.py): recorded → severity, trade and open +1; leaving the
open states (closed, void, force-closed) → open −1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.accounts.roles import Role
from crm.core.db import audited
from crm.notifications import services as notifications
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service.defects import catalog
from service.defects.models import (
    Contractor,
    Defect,
    DefectCategory,
    DefectEvent,
    DefectPhoto,
    Severity,
)
from service.handover import counters

State = Defect.State
APPROVER_ROLES = (Role.MANAGER, Role.ADMIN)
DEFECT_OVERDUE = "defects.overdue"
CONTRACTOR_SALT = "defects.contractor_link"
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
MAX_PHOTOS = 6
CLOSED_STATES = (State.CLOSED, State.VOID, State.FORCE_CLOSED)

# action → (states it starts from, state it leads to). `decide` leads to ASSIGNED or
# VOID (the decision); void and force_close start from any open state.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "assign": ((State.OPEN,), State.ASSIGNED),
    "start": ((State.ASSIGNED,), State.IN_PROGRESS),
    "ready": ((State.IN_PROGRESS,), State.READY_FOR_REVIEW),
    "verify": ((State.READY_FOR_REVIEW,), State.CLOSED),
    "reject": ((State.READY_FOR_REVIEW,), State.IN_PROGRESS),
    "dispute": ((State.ASSIGNED,), State.IN_DISPUTE),
    "decide": ((State.IN_DISPUTE,), State.ASSIGNED),
    "void": (tuple(Defect.OPEN_STATES), State.VOID),
    "force_close": (tuple(Defect.OPEN_STATES), State.FORCE_CLOSED),
}
# Actions only a manager or an admin may take.
APPROVER_ACTIONS = ("decide", "void", "force_close")


# --- categories and due times -----------------------------------------------------------


def categories_ensure_default() -> int:
    """The default three-level tree (catalog.py), idempotent; returns nodes created."""
    with transaction.atomic():
        return catalog.ensure(DefectCategory)


def due_hours(severity: str) -> int:
    hours = settings.KEHU_DEFECT_DUE_HOURS
    default = {"P0": 2, "P1": 24, "P2": 72}
    try:
        value = int(hours.get(severity, default.get(severity, 72)))
    except (TypeError, ValueError, AttributeError):
        value = default.get(severity, 72)
    return max(1, min(value, 24 * 365))


def due_at_for(severity: str, now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) + dt.timedelta(hours=due_hours(severity))


def trade_of(category: DefectCategory) -> DefectCategory:
    """The level-1 ancestor (土建, 门窗 …) of a category."""
    node = category
    while node.parent_id is not None:
        node = node.parent
    return node


# --- recording ---------------------------------------------------------------------------


def _check_photo(upload: Any, field: str = "photos") -> None:
    name = (upload.name or "").lower()
    if not name.endswith(PHOTO_EXTENSIONS):
        raise ValidationError({field: _("只能上传 JPG、PNG 或 WebP 格式的照片。")})


def _event_row(
    defect: Defect,
    from_state: str,
    to_state: str,
    *,
    by: Any = None,
    contractor: Contractor | None = None,
    comment: str = "",
) -> DefectEvent:
    return DefectEvent.objects.create(
        defect=defect,
        from_state=from_state,
        to_state=to_state,
        actor=by,
        contractor=contractor,
        comment=comment[:300],
    )


def _bump(defect: Defect, deltas: dict[str, int]) -> None:
    if defect.event_id:
        counters.bump(defect.event_id, deltas)


def overdue_key(defect: Defect) -> str:
    return f"defect:{defect.pk}:overdue:{int(defect.due_at.timestamp())}"


def _overdue_schedule(defect: Defect) -> None:
    """Arm (or move) the escalation at the defect's due time; cancel it once closed."""
    pending = ScheduledAction.objects.filter(
        kind=DEFECT_OVERDUE,
        target_id=defect.pk,
        state__in=[ScheduledAction.State.PENDING],
    )
    if not defect.is_open:
        pending.update(state=ScheduledAction.State.CANCELLED)
        return
    key = overdue_key(defect)
    pending.exclude(idempotency_key=key).update(state=ScheduledAction.State.CANCELLED)
    scheduler.action_schedule(
        kind=DEFECT_OVERDUE, target_id=defect.pk, due_at=defect.due_at, key=key
    )


def defect_record(
    *,
    by: Any,
    unit: Any,
    room: str,
    category: DefectCategory,
    description: str,
    severity: str = "",
    contractor: Contractor | None = None,
    due_at: dt.datetime | None = None,
    case: Any = None,
    event: Any = None,
    ticket: Any = None,
    source: str = "",
    photos: Iterable[Any] = (),
    now: dt.datetime | None = None,
) -> Defect:
    """Record a defect against a unit (from a handover case, or by unit for
    pre-inspection, open days and warranty). A contractor given at once assigns it in
    the same transaction (open → assigned, two history rows)."""
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    if category.level != 3:
        errors.setdefault("category", []).append(_("请选择到第三级（具体问题）。"))
    if room not in Defect.Room.values:
        errors.setdefault("room", []).append(_("请选择位置。"))
    description = (description or "").strip()
    if not description:
        errors.setdefault("description", []).append(_("请填写问题描述。"))
    severity = severity or category.default_severity
    if severity not in Severity.values:
        errors.setdefault("severity", []).append(_("严重程度无效。"))
    if contractor is not None and not contractor.active:
        errors.setdefault("contractor", []).append(_("该责任单位已停用。"))
    photos = list(photos)
    if len(photos) > MAX_PHOTOS:
        errors.setdefault("photos", []).append(
            _("最多上传 %(n)s 张照片。") % {"n": MAX_PHOTOS}
        )
    for photo in photos:
        try:
            _check_photo(photo)
        except ValidationError as error:
            errors.setdefault("photos", []).extend(error.message_dict["photos"])
            break
    if case is not None:
        if case.event_unit.unit_id != unit.pk:
            errors.setdefault("__all__", []).append(_("交房单与房间不一致。"))
        event = case.event
    if due_at is None:
        due_at = due_at_for(severity, now) if severity in Severity.values else now
    elif due_at <= now - dt.timedelta(minutes=5):
        errors.setdefault("due_at", []).append(_("整改时限不能早于现在。"))
    elif due_at > now + dt.timedelta(days=365):
        errors.setdefault("due_at", []).append(_("整改时限不能超过一年。"))
    if errors:
        raise ValidationError(errors)
    if not source:
        source = (
            Defect.Source.HANDOVER if case is not None else Defect.Source.PRE_INSPECTION
        )
        if ticket is not None:
            source = Defect.Source.WARRANTY
    with transaction.atomic(), audited(by):
        defect = Defect.objects.create(
            unit=unit,
            case=case,
            event=event,
            ticket=ticket,
            source=source,
            room=room,
            category=category,
            description=description[:300],
            severity=severity,
            contractor=contractor,
            due_at=due_at,
            reported_by=by,
        )
        _event_row(defect, "", State.OPEN, by=by)
        for photo in photos:
            DefectPhoto.objects.create(
                defect=defect, kind=DefectPhoto.Kind.FOUND, file=photo, uploaded_by=by
            )
        _bump(
            defect,
            {
                f"defect:severity:{severity}": 1,
                f"defect:category:{trade_of(category).pk}": 1,
                "defect:open": 1,
            },
        )
        if contractor is not None:
            Defect.objects.filter(pk=defect.pk).update(
                state=State.ASSIGNED, assigned_at=now, version=defect.version + 1
            )
            _event_row(defect, State.OPEN, State.ASSIGNED, by=by)
            defect.refresh_from_db()
        _overdue_schedule(defect)
    return defect


# --- the state machine --------------------------------------------------------------------


def allowed_actions(defect: Defect, user: Any) -> list[str]:
    """The actions the user may take on the defect now (for the page's buttons)."""
    actions = [
        name
        for name, (sources, _target) in TRANSITIONS.items()
        if defect.state in sources
        and (name not in APPROVER_ACTIONS or user.role in APPROVER_ROLES)
    ]
    return actions


def _locked(defect_id: int, version: int | None) -> Defect:
    defect = (
        Defect.objects.select_for_update(of=("self",), no_key=True)
        .select_related("category")
        .get(pk=defect_id)
    )
    if version is not None and defect.version != version:
        raise ValidationError(_("该问题已被他人修改，请刷新页面后重试。"))
    return defect


def _refuse_state(defect: Defect, action: str) -> None:
    sources, _target = TRANSITIONS[action]
    if defect.state not in sources:
        raise ValidationError(
            _("问题当前状态为“%(state)s”，不能执行此操作。")
            % {"state": defect.get_state_display()}
        )


def defect_transition(
    *,
    by: Any,
    defect: Defect,
    action: str,
    version: int | None,
    contractor: Contractor | None = None,
    comment: str = "",
    reason: str = "",
    decision: str = "",
    photo: Any = None,
    now: dt.datetime | None = None,
) -> Defect:
    """Apply one action of TRANSITIONS, with its rule:

    assign needs a contractor (active); ready needs a "fixed" photo; reject counts a
    rework round; verify closes and records the pass round (rework_rounds + 1); decide
    takes `decision` "assigned" or "void"; void and force_close need a reason; decide,
    void and force_close need a manager or an admin (force_close records them as the
    approver)."""
    if action not in TRANSITIONS:
        raise ValidationError(_("未知操作。"))
    if action in APPROVER_ACTIONS and getattr(by, "role", None) not in APPROVER_ROLES:
        raise PermissionDenied
    now = now or timezone.now()
    reason = (reason or "").strip()
    comment = (comment or "").strip()
    if action in ("void", "force_close") and not reason:
        raise ValidationError({"reason": _("请填写原因。")})
    if action == "assign" and contractor is None:
        raise ValidationError({"contractor": _("派单需要选择责任单位。")})
    if contractor is not None and not contractor.active:
        raise ValidationError({"contractor": _("该责任单位已停用。")})
    if action == "ready":
        if photo is None:
            raise ValidationError({"photo": _("请上传整改后的照片。")})
        _check_photo(photo, "photo")
    if action == "decide" and decision not in (State.ASSIGNED, State.VOID):
        raise ValidationError({"decision": _("请选择处理结果。")})
    with transaction.atomic(), audited(by):
        row = _locked(defect.pk, version)
        _refuse_state(row, action)
        return _apply(
            row,
            action,
            by=by,
            contractor=contractor,
            comment=comment,
            reason=reason,
            decision=decision,
            photo=photo,
            now=now,
        )


def _apply(
    defect: Defect,
    action: str,
    *,
    by: Any,
    contractor: Contractor | None,
    comment: str,
    reason: str,
    decision: str,
    photo: Any,
    now: dt.datetime,
    via_contractor: Contractor | None = None,
) -> Defect:
    from_state = defect.state
    target = TRANSITIONS[action][1]
    changes: dict[str, Any] = {}
    if action == "assign":
        changes.update(contractor=contractor, assigned_at=now)
    elif action == "ready":
        changes.update(ready_at=now)
        DefectPhoto.objects.create(
            defect=defect, kind=DefectPhoto.Kind.FIXED, file=photo, uploaded_by=by
        )
    elif action == "verify":
        changes.update(closed_at=now, closed_by=by)
        round_text = _("第 %(n)s 轮复验通过") % {"n": defect.rework_rounds + 1}
        comment = f"{round_text}{'：' + comment if comment else ''}"
    elif action == "reject":
        if defect.rework_rounds >= 50:
            raise ValidationError(_("返工次数已达上限，请强制关闭或作废。"))
        changes.update(rework_rounds=defect.rework_rounds + 1, ready_at=None)
    elif action == "decide":
        target = decision
        if decision == State.ASSIGNED and contractor is not None:
            changes.update(contractor=contractor)
        if decision == State.VOID:
            changes.update(closed_at=now, closed_by=by, close_reason=comment[:300])
    elif action == "void":
        changes.update(closed_at=now, closed_by=by, close_reason=reason[:300])
        comment = reason
    elif action == "force_close":
        changes.update(
            closed_at=now, closed_by=by, close_reason=reason[:300], approved_by=by
        )
        comment = reason
    changes.update(state=target, version=defect.version + 1)
    Defect.objects.filter(pk=defect.pk).update(updated_at=now, **changes)
    for name, value in changes.items():
        setattr(defect, name, value)
    _event_row(
        defect, from_state, target, by=by, contractor=via_contractor, comment=comment
    )
    if target in CLOSED_STATES:
        _bump(defect, {"defect:open": -1})
    _overdue_schedule(defect)
    return defect


def defect_due_change(
    *,
    by: Any,
    defect: Defect,
    version: int | None,
    due_at: dt.datetime,
    now: dt.datetime | None = None,
) -> Defect:
    """A manager or an admin moves an open defect's due time: the escalation moves
    with it (the old action is cancelled; one already sent stays sent) and a defect
    escalated before may escalate again at the new time."""
    if getattr(by, "role", None) not in APPROVER_ROLES:
        raise PermissionDenied
    now = now or timezone.now()
    if due_at <= now:
        raise ValidationError({"due_at": _("整改时限不能早于现在。")})
    if due_at > now + dt.timedelta(days=365):
        raise ValidationError({"due_at": _("整改时限不能超过一年。")})
    with transaction.atomic(), audited(by):
        row = _locked(defect.pk, version)
        if not row.is_open:
            raise ValidationError(_("问题已关闭，不能修改整改时限。"))
        Defect.objects.filter(pk=row.pk).update(
            due_at=due_at, escalated_at=None, version=row.version + 1, updated_at=now
        )
        row.due_at, row.escalated_at, row.version = due_at, None, row.version + 1
        _event_row(
            row,
            row.state,
            row.state,
            by=by,
            comment=_("整改时限改为 %(due)s")
            % {"due": timezone.localtime(due_at).strftime("%Y-%m-%d %H:%M")},
        )
        _overdue_schedule(row)
    return row


# --- overdue escalation -------------------------------------------------------------------


def overdue_recipients(defect: Defect) -> list[tuple[Any, str]]:
    """(user, why): the contractor's staff contact, the event's planner, and, when
    neither is there, the active managers."""
    people: dict[int, tuple[Any, str]] = {}
    staff = defect.contractor.staff if defect.contractor_id else None
    if staff is not None and staff.is_active:
        people[staff.pk] = (staff, gettext_noop("你是该责任单位的对接人"))
    event_planner = defect.event.created_by if defect.event_id else None
    if event_planner is not None and event_planner.is_active:
        people.setdefault(
            event_planner.pk, (event_planner, gettext_noop("你是该入伙活动的负责人"))
        )
    if not people:
        for manager in (
            get_user_model()
            .objects.filter(groups__name=Role.MANAGER, is_active=True)
            .order_by("pk")[:20]
        ):
            people[manager.pk] = (manager, gettext_noop("你是经理"))
    return list(people.values())


def defect_overdue(action: ScheduledAction) -> None:
    """The handler: at the due time, a defect still open is escalated once (escalated_at
    set, each recipient told once by key). A stale action (due time moved, defect
    closed) does nothing."""
    now = timezone.now()
    with transaction.atomic():
        defect = (
            Defect.objects.select_for_update(of=("self",), no_key=True)
            .select_related("contractor__staff", "event__created_by", "unit__building")
            .filter(pk=action.target_id)
            .first()
        )
        if defect is None or not defect.is_open:
            return
        if action.idempotency_key != overdue_key(defect) or defect.due_at > now:
            return
        if defect.escalated_at is None:
            Defect.objects.filter(pk=defect.pk).update(escalated_at=now)
        title = _("整改超期：%(unit)s %(desc)s（%(severity)s）") % {
            "unit": defect.unit.label,
            "desc": defect.description[:60],
            "severity": defect.severity,
        }
        body = _("责任单位：%(contractor)s；时限 %(due)s。") % {
            "contractor": defect.contractor.name
            if defect.contractor_id
            else _("未派单"),
            "due": timezone.localtime(defect.due_at).strftime("%Y-%m-%d %H:%M"),
        }
        for person, why in overdue_recipients(defect):
            notifications.notification_send(
                recipient=person,
                reason=why,
                key=f"{action.idempotency_key}:{person.pk}",
                title=title,
                body=body,
                url=reverse("defects:defect_detail", args=[defect.pk]),
            )


# --- the contractor's link ------------------------------------------------------------------


class LinkError(Exception):
    """A contractor link that opens nothing: tampered or unknown (404), expired (410)."""

    def __init__(self, *, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def contractor_token(contractor: Contractor) -> str:
    return signing.dumps({"c": contractor.pk}, salt=CONTRACTOR_SALT)


def contractor_url(contractor: Contractor) -> str:
    path = reverse("contractor_items", args=[contractor_token(contractor)])
    return settings.KEHU_PUBLIC_URL.rstrip("/") + path


def contractor_for_token(token: str) -> Contractor:
    max_age = dt.timedelta(days=settings.KEHU_CONTRACTOR_LINK_DAYS)
    if not token or len(token) > 300 or not token.isprintable():
        raise LinkError(expired=False)
    try:
        data = signing.loads(token, salt=CONTRACTOR_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkError(expired=True) from exc
    except signing.BadSignature as exc:
        raise LinkError(expired=False) from exc
    pk = data.get("c") if isinstance(data, dict) else None
    contractor = (
        Contractor.objects.filter(pk=pk, active=True).first()
        if isinstance(pk, int)
        else None
    )
    if contractor is None:
        raise LinkError(expired=False)
    return contractor


def contractor_mark_ready(
    *,
    contractor: Contractor,
    defect_id: int,
    photo: Any,
    comment: str = "",
    now: dt.datetime | None = None,
) -> Defect:
    """The contractor marks one of their items ready with a photo (no user). Another
    contractor's item is Defect.DoesNotExist (404); an item no longer in progress is
    refused (a replayed post changes nothing)."""
    now = now or timezone.now()
    if photo is None:
        raise ValidationError({"photo": _("请上传整改后的照片。")})
    _check_photo(photo, "photo")
    with transaction.atomic(), audited(None):
        defect = (
            Defect.objects.select_for_update(of=("self",), no_key=True)
            .select_related("category")
            .get(pk=defect_id, contractor=contractor)
        )
        # The contractor's own start is implicit: an assigned item goes to work first.
        if defect.state == State.ASSIGNED:
            defect = _apply(
                defect,
                "start",
                by=None,
                contractor=None,
                comment="",
                reason="",
                decision="",
                photo=None,
                now=now,
                via_contractor=contractor,
            )
        _refuse_state(defect, "ready")
        return _apply(
            defect,
            "ready",
            by=None,
            contractor=None,
            comment=(comment or "").strip(),
            reason="",
            decision="",
            photo=photo,
            now=now,
            via_contractor=contractor,
        )


# --- the service desk ---------------------------------------------------------------------


def defect_ticket_create(*, by: Any, defect: Defect) -> Any:
    """Open a repair ticket for the defect's unit owner and link it (never a copy)."""
    from service import services as desk
    from service.models import Ticket, TicketType
    from service.property.models import UnitOwnership

    ownership = (
        UnitOwnership.objects.filter(unit_id=defect.unit_id, is_active=True)
        .select_related("customer")
        .order_by("-role", "pk")
        .first()
    )
    primary = (
        UnitOwnership.objects.filter(
            unit_id=defect.unit_id, is_active=True, role=UnitOwnership.Role.PRIMARY
        )
        .select_related("customer")
        .first()
    )
    ownership = primary or ownership
    if ownership is None:
        raise ValidationError(_("该房间没有登记业主，无法创建报修工单。"))
    with transaction.atomic(), audited(by):
        row = _locked(defect.pk, None)
        if row.ticket_id is not None:
            raise ValidationError(_("该问题已关联报修工单。"))
        ticket = desk.ticket_create(
            by=by,
            customer=ownership.customer,
            ticket_type=TicketType.REPAIR,
            channel=Ticket.Channel.ON_SITE,
            subject=_("%(unit)s %(category)s：%(desc)s")
            % {
                "unit": defect.unit.label,
                "category": defect.category.name,
                "desc": defect.description[:60],
            },
            description=defect.description,
        )
        Defect.objects.filter(pk=row.pk).update(ticket=ticket, version=row.version + 1)
        _event_row(
            row,
            row.state,
            row.state,
            by=by,
            comment=_("创建报修工单 %(ref)s") % {"ref": ticket.reference},
        )
    return ticket


def defect_ticket_link(*, by: Any, defect: Defect, ticket: Any) -> Defect:
    with transaction.atomic(), audited(by):
        row = _locked(defect.pk, None)
        if row.ticket_id == ticket.pk:
            return row
        Defect.objects.filter(pk=row.pk).update(ticket=ticket, version=row.version + 1)
        _event_row(
            row,
            row.state,
            row.state,
            by=by,
            comment=_("关联报修工单 %(ref)s") % {"ref": ticket.reference},
        )
        row.ticket = ticket
    return row


def open_filter() -> Q:
    return Q(state__in=Defect.OPEN_STATES)
