"""Every write of the 入伙 (handover) booking core.

Capacity (docs/handover.md, reliability D6): a seat is taken with a conditional UPDATE
(`booked_count < capacity`) in the transaction that inserts the appointment, never by
counting first; the CheckConstraint on TimeSlot is the backstop. So `booked_count`
always equals the number of active appointments of the slot.

Lock order, the same in every function so that none can deadlock another: the
customer row where one is taken (a booking, a customer merge), then the unit's scope
row (a booking of a unit, KEY SHARE), then the appointment row (inserted, or updated
conditionally), then slot rows in id order.

Units in scope (docs/handover.md, "Booking a unit"): a booking may name an EventUnit;
then the customer must be an owner or a handover proxy of the unit, the unit must be
eligible and the slot in the unit's batch (staff may override both with a reason;
owners also need their batch's booking window open), and the unit holds at most one
active booking (a partial unique index; a visit finished with its case's outcome no
longer holds it, so a re-inspection can be booked, but a unit accepted in the event
is not booked again). Owners act through their personal link
(`by=None, via_link=...`) and may change or cancel only until the event's cut-off.
A slot's walk-in hold is kept free for walk-ins until the event's release hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts import access
from crm.accounts.roles import Role
from crm.channels import services as channels
from crm.core.db import audited, retry_transient
from crm.scheduler import services as scheduler
from customers.models import ContactLog, Customer
from service.handover import events, links
from service.handover.models import (
    Appointment,
    Batch,
    EventUnit,
    HandoverEvent,
    NoticeRun,
    OwnerLink,
    TimeSlot,
    UnitHandover,
)
from service.handover.notices import address_of
from service.property.models import ProxyAuthorisation, UnitOwnership

EVENT_ROLES = (Role.MANAGER, Role.ADMIN)
BOOKING_ROLES = (Role.SALES, Role.SERVICE, Role.MANAGER, Role.ADMIN)
APPOINTMENT_REMINDER = "handover.appointment_reminder"
# Reminders go out at this local time on the day before the slot.
REMINDER_TIME = dt.time(10, 0)
MAX_SLOTS_PER_DAY = 96
UNIQUE_ACTIVE = "handover_one_active_appointment_per_customer"
UNIQUE_ACTIVE_UNIT = "handover_one_active_appointment_per_unit"

State = Appointment.State
Status = HandoverEvent.Status
Channel = Appointment.Channel


class BookingError(ValueError):
    """A booking the customer cannot have; `message` is shown to the user as is."""

    default_message = ""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or str(self.default_message)
        super().__init__(self.message)


class SlotFull(BookingError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _("该时段已满，请选择其他时段。"))


class AlreadyBooked(BookingError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or _("该客户在本次入伙活动中已有预约，请改约或先取消原预约。")
        )


class Conflict(BookingError):
    """The appointment changed since the page was loaded (stale version or state)."""


class NotBookable(BookingError):
    """The event is not open for booking, or the slot has already begun."""


class CheckInRefused(BookingError):
    """Not the appointment's day, or the event is not open (draft or closed)."""


class NotUnitParty(BookingError):
    """The customer is neither an owner nor a handover proxy of the unit."""


class UnitRequired(BookingError):
    """The event has a scope: a staff booking must name one of its units."""


class NotEligible(BookingError):
    """The unit may not be handed over yet (not ready, arrears, legal hold)."""


class OutsideBatch(BookingError):
    """The slot is not in the unit's batch, or the batch's booking window is shut."""


class OverrideNeeded(BookingError):
    """Staff may book outside the rules only with a reason; the form asks for one."""


class PastCutoff(BookingError):
    """Owners change or cancel their own booking only until the event's cut-off."""


# --- events and slots --------------------------------------------------------------------


def _require_role(by: Any, roles: tuple[str, ...]) -> None:
    if getattr(by, "role", None) not in roles:
        raise PermissionDenied


EVENT_FIELDS = ("name", "project_name", "venue", "start_date", "end_date")
# Added with scope and batches; a caller that does not send them leaves them as they are.
EVENT_OPTIONAL_FIELDS = (
    "kind",
    "project",
    "owner_cutoff_hours",
    "walk_in_release_time",
)


@retry_transient
def event_save(
    *, by: Any, data: dict[str, Any], event: HandoverEvent | None = None
) -> HandoverEvent:
    """Create an event (as a draft) or edit one that is not closed."""
    _require_role(by, EVENT_ROLES)
    if event is None:
        event = HandoverEvent(created_by=by)
    elif event.status == Status.CLOSED:
        raise ValidationError(_("已关闭的活动不能再修改。"))
    old_project_id = event.project_id
    for field in EVENT_FIELDS:
        setattr(event, field, data[field])
    for field in EVENT_OPTIONAL_FIELDS:
        if field in data:
            setattr(event, field, data[field])
    event.full_clean()
    if (
        event.pk
        and event.project_id != old_project_id
        and EventUnit.objects.filter(event=event).exists()
    ):
        raise ValidationError({"project": _("活动已划定交付范围，不能再更换楼盘。")})
    if event.pk:
        outside = event.slots.exclude(
            date__range=(event.start_date, event.end_date)
        ).exists()
        if outside:
            raise ValidationError(
                {"start_date": _("已有时段落在新的日期范围之外，请先调整日期。")}
            )
    with transaction.atomic(), audited(by):
        event.save()
    return event


def _event_transition(
    *, by: Any, event: HandoverEvent, source: tuple[str, ...], target: str
) -> HandoverEvent:
    _require_role(by, EVENT_ROLES)
    with transaction.atomic(), audited(by):
        changed = HandoverEvent.objects.filter(pk=event.pk, status__in=source).update(
            status=target, updated_at=timezone.now()
        )
    event.refresh_from_db()
    if not changed:
        raise ValidationError(
            _("活动当前状态为“%(status)s”，不能执行此操作。")
            % {"status": event.get_status_display()}
        )
    return event


def event_publish(*, by: Any, event: HandoverEvent) -> HandoverEvent:
    """Open the event for booking; it needs at least one slot."""
    if not event.slots.exists():
        raise ValidationError(_("请先添加时段，再发布活动。"))
    return _event_transition(
        by=by, event=event, source=(Status.DRAFT,), target=Status.PUBLISHED
    )


def event_close(*, by: Any, event: HandoverEvent) -> HandoverEvent:
    """Stop all booking, rescheduling and cancelling; appointments stay as they are."""
    return _event_transition(
        by=by,
        event=event,
        source=(Status.DRAFT, Status.PUBLISHED),
        target=Status.CLOSED,
    )


@retry_transient
def slots_add_day(
    *,
    by: Any,
    event: HandoverEvent,
    date: dt.date,
    start_time: dt.time,
    end_time: dt.time,
    interval_minutes: int,
    capacity: int,
    batch: Batch | None = None,
    walk_in_hold: int = 0,
) -> int:
    """Add one day's slots of `interval_minutes` each; returns how many were new.

    A start time that already has a slot is left alone, so adding a day twice is safe.
    With a batch the slots are that batch's; `walk_in_hold` seats of each are held for
    walk-ins (scope.batch_slots_add_day computes it from a share).
    """
    _require_role(by, EVENT_ROLES)
    if event.status == Status.CLOSED:
        raise ValidationError(_("已关闭的活动不能再添加时段。"))
    if not event.start_date <= date <= event.end_date:
        raise ValidationError({"date": _("日期必须在活动的起止日期之内。")})
    if end_time <= start_time:
        raise ValidationError({"end_time": _("结束时间必须晚于开始时间。")})
    if interval_minutes < 5:
        raise ValidationError({"interval_minutes": _("每个时段至少 5 分钟。")})
    if capacity < 1:
        raise ValidationError({"capacity": _("容量至少为 1 户。")})
    if not 0 <= walk_in_hold <= capacity:
        raise ValidationError({"walk_in_hold": _("现场预留不能超过容量。")})
    if batch is not None and batch.event_id != event.pk:
        raise ValidationError(_("批次不属于此活动。"))
    step = dt.timedelta(minutes=interval_minutes)
    day_end = dt.datetime.combine(date, end_time)
    start = dt.datetime.combine(date, start_time)
    slots = []
    # Subtract rather than add: on the last day a calendar can hold, start + step
    # overflowed (year 10000) once the final slot was made.
    while day_end - start >= step:
        slots.append(
            TimeSlot(
                event=event,
                date=date,
                start_time=start.time(),
                end_time=(start + step).time(),
                capacity=capacity,
                batch=batch,
                walk_in_hold=walk_in_hold,
            )
        )
        start += step
    if not slots:
        raise ValidationError(
            {"interval_minutes": _("时段长度超过了开始到结束的时间。")}
        )
    if len(slots) > MAX_SLOTS_PER_DAY:
        raise ValidationError(
            {
                "interval_minutes": _("一天最多 %(max)s 个时段，请加大间隔。")
                % {"max": MAX_SLOTS_PER_DAY}
            }
        )
    with transaction.atomic(), audited(by):
        before = event.slots.filter(date=date).count()
        TimeSlot.objects.bulk_create(slots, ignore_conflicts=True)
        return event.slots.filter(date=date).count() - before


# --- appointments ------------------------------------------------------------------------


def reminder_key(appointment_id: int, slot_id: int) -> str:
    # The slot is part of the key: after a reschedule the new slot gets its own reminder.
    return f"handover:appointment:{appointment_id}:slot:{slot_id}:remind"


def _reminder_due(slot: TimeSlot) -> dt.datetime:
    return dt.datetime.combine(
        slot.date - dt.timedelta(days=1),
        REMINDER_TIME,
        tzinfo=timezone.get_current_timezone(),
    )


def _schedule_reminder(appointment_id: int, slot: TimeSlot) -> None:
    due_at = _reminder_due(slot)
    # Booked after the eve's reminder time: the customer has just been told in person.
    if due_at > timezone.now():
        scheduler.action_schedule(
            kind=APPOINTMENT_REMINDER,
            target_id=appointment_id,
            due_at=due_at,
            key=reminder_key(appointment_id, slot.pk),
        )


def _require_bookable(slot: TimeSlot) -> None:
    if not slot.event.is_bookable:
        raise NotBookable(
            _("活动“%(event)s”%(status)s，不能预约。")
            % {"event": slot.event.name, "status": slot.event.get_status_display()}
        )
    if slot.is_past:
        raise NotBookable(_("该时段已开始或已过去，不能预约。"))


def _require_visible(by: Any, customer: Customer) -> None:
    if access.visibility_scope(by) == "all":
        return
    if not Customer.objects.visible_to(by).filter(pk=customer.pk).exists():
        raise PermissionDenied


def is_unit_party(customer: Customer, unit_id: int, today: dt.date) -> bool:
    """An active owner or co-owner of the unit, or a handover proxy of one of them
    (not revoked, still valid today): the people who may book for the unit."""
    if UnitOwnership.objects.filter(
        unit_id=unit_id, customer=customer, is_active=True
    ).exists():
        return True
    return (
        ProxyAuthorisation.objects.filter(
            unit_id=unit_id,
            proxy=customer,
            scope=ProxyAuthorisation.Scope.HANDOVER,
            revoked_at__isnull=True,
            owner__unit_ownerships__unit_id=unit_id,
            owner__unit_ownerships__is_active=True,
        )
        .exclude(valid_until__lt=today)
        .exists()
    )


def walk_in_released_at(slot: TimeSlot) -> dt.datetime:
    """When the slot's walk-in hold opens to everyone: the event's release hour on the
    slot's day, in the project's time zone."""
    return dt.datetime.combine(
        slot.date,
        slot.event.walk_in_release_time,
        tzinfo=timezone.get_current_timezone(),
    )


def hold_applies(slot: TimeSlot, channel: str, now: dt.datetime | None = None) -> bool:
    """Whether a booking through `channel` must leave the slot's walk-in hold free."""
    if not slot.walk_in_hold or channel == Channel.WALK_IN:
        return False
    return (now or timezone.now()) < walk_in_released_at(slot)


def seats_open(slot: TimeSlot, channel: str, now: dt.datetime | None = None) -> int:
    """Seats a booking through `channel` may take now (slot.event must be loaded)."""
    held = slot.walk_in_hold if hold_applies(slot, channel, now) else 0
    return max(slot.capacity - held - slot.booked_count, 0)


def _take_seat(slot: TimeSlot, channel: str) -> bool:
    """The conditional UPDATE of the capacity rule; with a hold in force the seats it
    holds are not taken. False: no seat (SlotFull)."""
    limit = F("capacity")
    if hold_applies(slot, channel):
        limit = F("capacity") - F("walk_in_hold")
    return bool(
        TimeSlot.objects.filter(pk=slot.pk, booked_count__lt=limit).update(
            booked_count=F("booked_count") + 1
        )
    )


def _slot_full(slot: TimeSlot, channel: str) -> SlotFull:
    if not slot.is_full and hold_applies(slot, channel):
        return SlotFull(
            _("该时段剩余名额为现场预留，%(time)s 起开放预约，请选择其他时段。")
            % {"time": f"{slot.event.walk_in_release_time:%H:%M}"}
        )
    return SlotFull()


def _check_unit_rules(
    event_unit: EventUnit,
    slot: TimeSlot,
    *,
    is_owner: bool,
    override_reason: str,
    check_eligibility: bool = True,
) -> bool:
    """Eligibility and batch for booking the unit into the slot. Owners are refused
    with the reason; staff need an override reason. Returns True when the booking
    goes ahead only because of the staff's override."""
    breaks = []
    if check_eligibility and not event_unit.is_eligible:
        why = event_unit.get_eligibility_display()
        if event_unit.eligibility_note:
            why = f"{why}（{event_unit.eligibility_note}）"
        if is_owner:
            raise NotEligible(
                _("该房间暂不能预约交付：%(why)s。如有疑问请联系客服。") % {"why": why}
            )
        breaks.append(_("房间暂不可交付：%(why)s") % {"why": why})
    batch = event_unit.batch
    # A slot without a batch is open to every unit of the event.
    if batch is not None and slot.batch_id not in (None, batch.pk):
        if is_owner:
            raise OutsideBatch(
                _("该时段不属于您的批次“%(batch)s”，请选择本批次的时段。")
                % {"batch": batch.name}
            )
        breaks.append(_("时段不属于房间所在批次“%(batch)s”") % {"batch": batch.name})
    if is_owner and batch is not None and not batch.is_open():
        local = timezone.localtime
        raise OutsideBatch(
            _("批次“%(batch)s”的预约时间为 %(opens)s 至 %(closes)s，现在不能自助预约。")
            % {
                "batch": batch.name,
                "opens": f"{local(batch.booking_opens_at):%Y-%m-%d %H:%M}",
                "closes": f"{local(batch.booking_closes_at):%Y-%m-%d %H:%M}",
            }
        )
    if is_owner and timezone.now() >= owner_deadline(slot):
        # The venue plans staff and seats from the cut-off on: as for changes.
        raise PastCutoff(
            _("该时段的自助预约已于 %(deadline)s 截止，请选择其他时段或联系客服。")
            % {"deadline": f"{timezone.localtime(owner_deadline(slot)):%Y-%m-%d %H:%M}"}
        )
    if breaks and not override_reason:
        raise OverrideNeeded(
            _("%(breaks)s。如确需预约，请填写例外原因。")
            % {"breaks": "；".join(breaks)}
        )
    return bool(breaks)


def _require_not_handed_over(event_unit: EventUnit) -> None:
    """A unit accepted (收楼) in the event is not booked again: its finished visit no
    longer holds it in the unique index (outcomes._finish), this rule does."""
    accepted = UnitHandover.objects.filter(
        event_unit_id=event_unit.pk,
        state__in=(
            UnitHandover.State.ACCEPTED,
            UnitHandover.State.ACCEPTED_WITH_DEFECTS,
        ),
    ).exists()
    if accepted:
        raise NotBookable(
            _("房间 %(unit)s 已在本次入伙活动中收楼，不能再预约。")
            % {"unit": event_unit.unit.label}
        )


def _owner_link_check(
    via_link: OwnerLink | None, event_unit_id: int | None, customer: Customer
) -> None:
    """An owner acting without a login: only through their live link, for its unit."""
    if via_link is None or not via_link.is_live:
        raise PermissionDenied
    if via_link.holder_id != customer.pk or event_unit_id != via_link.event_unit_id:
        raise PermissionDenied


def _scope_required(event: HandoverEvent) -> bool:
    return EventUnit.objects.filter(event=event).exists()


@retry_transient
def appointment_book(
    *,
    slot: TimeSlot,
    customer: Customer,
    by: Any,
    unit: str = "",
    party_size: int = 1,
    channel: str = Channel.STAFF,
    event_unit: EventUnit | None = None,
    override_reason: str = "",
    via_link: OwnerLink | None = None,
) -> Appointment:
    """Book `customer` into `slot`, or raise a BookingError (SlotFull, AlreadyBooked,
    NotBookable, and for a unit NotUnitParty / NotEligible / OutsideBatch /
    OverrideNeeded / UnitRequired).

    `by=None` is an owner booking through their link: `channel="owner_link"` and
    `via_link` (the OwnerLink) are required, and the unit is the link's.
    """
    is_owner = by is None
    if is_owner:
        if channel != Channel.OWNER_LINK or via_link is None:
            raise PermissionDenied
        event_unit = event_unit or via_link.event_unit
        _owner_link_check(via_link, event_unit.pk, customer)
    else:
        _require_role(by, BOOKING_ROLES)
        _require_visible(by, customer)
    slot = TimeSlot.objects.select_related("event").get(pk=slot.pk)
    _require_bookable(slot)
    override_reason = override_reason.strip()
    is_override = False
    if event_unit is not None:
        event_unit = (
            EventUnit.objects.select_related("unit__building", "batch")
            .filter(pk=event_unit.pk)
            .first()
        )
        if event_unit is None or event_unit.event_id != slot.event_id:
            raise NotBookable(_("该房间不在此入伙活动的交付范围内。"))
        if not is_unit_party(customer, event_unit.unit_id, timezone.localdate()):
            raise NotUnitParty(
                _("%(name)s 不是房间 %(unit)s 的业主或受托人，不能为该房间预约。")
                % {"name": customer.name, "unit": event_unit.unit.label}
            )
        _require_not_handed_over(event_unit)
        is_override = _check_unit_rules(
            event_unit, slot, is_owner=is_owner, override_reason=override_reason
        )
        unit = event_unit.unit.label
    elif _scope_required(slot.event):
        raise UnitRequired(_("本活动已划定交付范围，请选择要预约的房间。"))
    if seats_open(slot, channel) <= 0:
        # Full when just read: refusing is right, and cheaper than insert-and-roll-back.
        # A free seat read here proves nothing; the conditional UPDATE below decides.
        raise _slot_full(slot, channel)
    appointment = Appointment(
        event_id=slot.event_id,
        slot=slot,
        customer=customer,
        unit=unit.strip(),
        event_unit=event_unit,
        override_reason=override_reason if is_override else "",
        party_size=party_size,
        channel=channel,
        created_by=by,
        booked_via=via_link if is_owner else None,
    )
    # The database holds both rules (unique index, seat counter): no read-then-write.
    # The unit's row is checked under its lock below (it may leave the scope meanwhile).
    # The related rows were just read (slot, unit) or are the caller's (customer,
    # link): Django's per-field existence queries would only repeat that, and the
    # foreign keys hold at commit anyway.
    appointment.full_clean(
        exclude=["event", "slot", "customer", "event_unit", "created_by", "booked_via"],
        validate_unique=False,
        validate_constraints=False,
    )
    if not 1 <= party_size <= 20:
        raise ValidationError({"party_size": _("到场人数应在 1 到 20 之间。")})
    with transaction.atomic(), audited(by):
        _lock_customer_unmerged(customer)
        if event_unit is not None:
            _lock_event_unit_in_scope(event_unit)
        # The row first, the seat second: every write here locks the appointment
        # before any slot (module docstring), which rules out deadlocks.
        try:
            with transaction.atomic():
                appointment.save()
        except IntegrityError as exc:
            constraint = _constraint_of(exc)
            if constraint == UNIQUE_ACTIVE:
                raise AlreadyBooked from exc
            if constraint == UNIQUE_ACTIVE_UNIT:
                raise AlreadyBooked(
                    _("房间 %(unit)s 在本次入伙活动中已有预约，请改约或先取消原预约。")
                    % {"unit": unit}
                ) from exc
            raise
        if not _take_seat(slot, channel):
            raise SlotFull
        _schedule_reminder(appointment.pk, slot)
    return appointment


def _lock_customer_unmerged(customer: Customer) -> None:
    """FOR KEY SHARE on the customer, then NotBookable if it has been merged away.

    The foreign key would take this lock only at commit (Django's constraints are
    deferred), too late: a merge (appointments_follow_customer_merge, FOR UPDATE) would
    not see this booking and leave it on the merged record. Taken first, the lock makes
    a merge wait for this booking, or this booking wait for the merge and then read
    merged_into as the merge left it. It does not wait for ordinary customer edits
    (FOR NO KEY UPDATE).
    """
    table = Customer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT merged_into_id FROM "{table}" WHERE id = %s FOR KEY SHARE',  # noqa: S608  # nosec B608 - the model's table name
            [customer.pk],
        )
        row = cursor.fetchone()
    if row is None or row[0] is not None:
        raise NotBookable(_("该客户已被合并到另一位客户，请为合并后的客户预约。"))


def _lock_event_unit_in_scope(event_unit: EventUnit) -> None:
    """FOR KEY SHARE on the unit's scope row, or NotBookable if it has left the scope.

    Taken now rather than by the foreign key at commit (deferred): scope.scope_remove
    locks the rows FOR UPDATE before it checks for bookings and deletes, so either it
    waits for this booking and then keeps the unit, or this booking waits for it and
    finds the unit gone, instead of failing at commit. Bulk edits (FOR NO KEY UPDATE)
    do not wait for it.
    """
    table = EventUnit._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT 1 FROM "{table}" WHERE id = %s FOR KEY SHARE',  # noqa: S608  # nosec B608 - the model's table name
            [event_unit.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotBookable(_("该房间已移出此入伙活动的交付范围。"))


def _constraint_of(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _lock_appointment(appointment: Appointment, version: int | None) -> Appointment:
    """The current row, locked; Conflict if it is no longer booked or was changed."""
    current = (
        Appointment.objects.select_for_update(no_key=True)
        .select_related("event")
        .get(pk=appointment.pk)
    )
    if version is not None and current.version != version:
        raise Conflict(_("预约已被他人修改，请刷新页面后再操作。"))
    if current.state != State.BOOKED:
        raise Conflict(
            _("该预约当前为“%(state)s”，不能再操作。")
            % {"state": current.get_state_display()}
        )
    if current.event.status == Status.CLOSED:
        raise NotBookable(_("活动已关闭，预约不能再更改。"))
    return current


def _advance(current: Appointment, **changes: Any) -> None:
    """The transition itself, conditional on the state and version just read."""
    changed = Appointment.objects.filter(
        pk=current.pk, state=State.BOOKED, version=current.version
    ).update(version=F("version") + 1, updated_at=timezone.now(), **changes)
    if not changed:  # cannot happen while the row lock is held; kept as the guard
        raise Conflict(_("预约已被他人修改，请刷新页面后再操作。"))


def owner_deadline(slot: TimeSlot) -> dt.datetime:
    """Until when an owner may change or cancel their own booking of `slot`."""
    return slot.starts_at - dt.timedelta(hours=slot.event.owner_cutoff_hours)


def _require_owner_may_change(current: Appointment, via_link: OwnerLink | None) -> None:
    """An owner changes only their unit's booking, through a live link, before the
    cut-off (the venue plans staff and seats from then on)."""
    if via_link is None or not via_link.is_live:
        raise PermissionDenied
    if current.event_unit_id is None or current.event_unit_id != via_link.event_unit_id:
        raise PermissionDenied
    unit_id = EventUnit.objects.values_list("unit_id", flat=True).get(
        pk=current.event_unit_id
    )
    if not is_unit_party(via_link.holder, unit_id, timezone.localdate()):
        raise PermissionDenied
    slot = TimeSlot.objects.select_related("event").get(pk=current.slot_id)
    deadline = owner_deadline(slot)
    if timezone.now() >= deadline:
        raise PastCutoff(
            _(
                "自助改约或取消的截止时间为 %(deadline)s，已过截止时间。"
                "如需更改，请联系客服。"
            )
            % {"deadline": f"{timezone.localtime(deadline):%Y-%m-%d %H:%M}"}
        )


def _require_actor(by: Any, via_link: OwnerLink | None) -> None:
    if by is None and via_link is None:
        raise PermissionDenied
    if by is not None:
        _require_role(by, BOOKING_ROLES)


@retry_transient
def appointment_cancel(
    appointment: Appointment,
    *,
    by: Any,
    version: int | None = None,
    via_link: OwnerLink | None = None,
) -> Appointment:
    """Cancel a booked appointment and give its seat back. `by=None` with `via_link`:
    the owner cancels through their link, only before the cut-off (PastCutoff)."""
    _require_actor(by, via_link)
    with transaction.atomic(), audited(by):
        current = _lock_appointment(appointment, version)
        changes: dict[str, Any] = {}
        if by is None:
            _require_owner_may_change(current, via_link)
            changes["booked_via"] = via_link
        _advance(current, state=State.CANCELLED, cancelled_at=timezone.now(), **changes)
        TimeSlot.objects.filter(pk=current.slot_id).update(
            booked_count=F("booked_count") - 1
        )
        scheduler.action_cancel(key=reminder_key(current.pk, current.slot_id))
    current.refresh_from_db()
    return current


def _reschedule_unit_rules(
    current: Appointment, new_slot: TimeSlot, *, is_owner: bool, override_reason: str
) -> dict[str, Any]:
    """The unit's rules for the new slot, as the changes to store. Owners meet every
    booking rule again; staff the batch rule (with a reason to override), not the
    eligibility, which was settled when the unit was booked."""
    if current.event_unit_id is None:
        return {}
    event_unit = EventUnit.objects.select_related("batch").get(pk=current.event_unit_id)
    is_override = _check_unit_rules(
        event_unit,
        new_slot,
        is_owner=is_owner,
        override_reason=override_reason,
        check_eligibility=is_owner,
    )
    return {"override_reason": override_reason} if is_override else {}


@retry_transient
def appointment_reschedule(
    appointment: Appointment,
    *,
    new_slot: TimeSlot,
    by: Any,
    version: int | None = None,
    via_link: OwnerLink | None = None,
    override_reason: str = "",
    as_walk_in: bool = False,
) -> Appointment:
    """Move a booked appointment to another slot of the same event, atomically:
    the customer keeps the old seat if the new one cannot be had.

    `by=None` with `via_link`: the owner moves their own booking, before the cut-off
    and within their batch. The new seat respects the walk-in hold unless staff move
    an owner who is at the desk (`as_walk_in`)."""
    _require_actor(by, via_link)
    is_owner = by is None
    override_reason = override_reason.strip()
    new_slot = TimeSlot.objects.select_related("event").get(pk=new_slot.pk)
    _require_bookable(new_slot)
    with transaction.atomic(), audited(by):
        current = _lock_appointment(appointment, version)
        if new_slot.event_id != current.event_id:
            raise NotBookable(_("只能改约到同一入伙活动的其他时段。"))
        if new_slot.pk == current.slot_id:
            raise NotBookable(_("新时段与原时段相同。"))
        if is_owner:
            _require_owner_may_change(current, via_link)
        changes = _reschedule_unit_rules(
            current, new_slot, is_owner=is_owner, override_reason=override_reason
        )
        if is_owner:
            changes["booked_via"] = via_link
        channel = Channel.WALK_IN if as_walk_in and not is_owner else current.channel
        if seats_open(new_slot, channel) <= 0:
            raise _slot_full(new_slot, channel)
        old_slot_id = current.slot_id
        _advance(current, slot_id=new_slot.pk, reminded_at=None, **changes)
        _lock_slots_in_order(old_slot_id, new_slot.pk)
        if not _take_seat(new_slot, channel):
            raise SlotFull
        TimeSlot.objects.filter(pk=old_slot_id).update(
            booked_count=F("booked_count") - 1
        )
        scheduler.action_cancel(key=reminder_key(current.pk, old_slot_id))
        _schedule_reminder(current.pk, new_slot)
    current.refresh_from_db()
    return current


def _lock_slots_in_order(*pks: int) -> None:
    """Like crm.core.db.lock_in_order, but FOR NO KEY UPDATE: that does not conflict
    with the KEY SHARE lock every appointment insert takes on its slot (the foreign
    key check), so bookings into these slots are not held up by the lock."""
    list(
        TimeSlot.objects.select_for_update(no_key=True)
        .filter(pk__in=pks)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _require_check_in_allowed(current: Appointment, today: dt.date) -> None:
    """Who may be checked in now: an active (booked) appointment of an open event, on
    the day of its slot, in the project's time zone.

    Within that day the hour does not matter: owners who come early queue in the
    lounge and late ones join the walk-in queue (handover.md 1.2). Another day of
    the event does not count: seats and staff are planned per slot, and day 1 is the
    crowded one (handover.md 1.2, 4), so an owner who turns up on the wrong day is
    first rescheduled into one of today's slots, which takes a seat only if one is
    free, and then checked in.
    """
    if current.state != State.BOOKED:
        raise Conflict(
            _("该预约当前为“%(state)s”，不能签到。")
            % {"state": current.get_state_display()}
        )
    event, slot = current.event, current.slot
    if event.status != Status.PUBLISHED:
        raise CheckInRefused(
            _("活动“%(event)s”当前为“%(status)s”，不能签到。")
            % {"event": event.name, "status": event.get_status_display()}
        )
    if slot.date > today:
        raise CheckInRefused(
            _(
                "该预约在 %(date)s %(start)s–%(end)s，只能在预约当天签到。"
                "如客户今天到场，请先改约到今天的时段。"
            )
            % {
                "date": f"{slot.date:%Y-%m-%d}",
                "start": f"{slot.start_time:%H:%M}",
                "end": f"{slot.end_time:%H:%M}",
            }
        )
    if slot.date < today:
        raise CheckInRefused(
            _("该预约在 %(date)s，已过预约日期，不能签到。请先改约到今天或之后的时段。")
            % {"date": f"{slot.date:%Y-%m-%d}"}
        )


@retry_transient
def appointment_check_in(
    appointment: Appointment,
    *,
    by: Any,
    then: Callable[[Appointment, dt.datetime], Any] | None = None,
) -> Appointment:
    """The customer has arrived at the venue; the seat stays taken.

    `then(appointment, now)` runs inside the check-in's transaction after the row was
    updated (onsite.check_in opens the handover case there), so both or neither.

    Refused (CheckInRefused or Conflict, nothing written) unless the rules of
    `_require_check_in_allowed` hold. The UPDATE is conditional on the state and the
    slot just read, so of two staff clicking at once exactly one checks the customer
    in, and a reschedule in between (another day) is not checked in by a stale read.
    The event's status needs no lock: closing only flips the status, so a check-in
    that read "published" just before a close is the same as one finished before it.
    """
    _require_role(by, BOOKING_ROLES)
    current = Appointment.objects.select_related("event", "slot").get(pk=appointment.pk)
    now = timezone.now()
    _require_check_in_allowed(current, timezone.localdate(now))
    with transaction.atomic(), audited(by):
        changed = Appointment.objects.filter(
            pk=current.pk, state=State.BOOKED, slot_id=current.slot_id
        ).update(
            state=State.CHECKED_IN,
            checked_in_at=now,
            version=F("version") + 1,
            updated_at=now,
        )
        if not changed:
            current.refresh_from_db()
            _require_check_in_allowed(current, timezone.localdate(now))
            raise Conflict(_("预约已被他人修改，请刷新页面后再操作。"))
        scheduler.action_cancel(key=reminder_key(current.pk, current.slot_id))
        if then is not None:
            then(current, now)
        if current.event_unit_id is None:
            # No unit, no case and no outcome: the check-in is this handover's end.
            # A unit's handover finishes with its accepted outcome (outcomes.py).
            checked_in = current.pk
            transaction.on_commit(lambda: _finished(checked_in))
    appointment.refresh_from_db()
    return appointment


def _finished(appointment_id: int) -> None:
    """An appointment without a unit (an event without a scope) has no case: its
    check-in is the handover's last step. A unit's case calls
    `events.handover_finished` from its accepted outcome (outcomes.case_accept)."""
    finished = Appointment.objects.filter(pk=appointment_id).first()
    if finished is not None:
        events.handover_finished(finished)


REMINDER_PURPOSE = "handover.reminder"


def appointment_remind(action: Any) -> None:
    """Scheduled-action handler: the day-before reminder to the customer.

    An SMS through the one customer channel layer (crm/channels: queued in this
    transaction, delivered at most once), with the owner's personal link when the
    booking is for a unit, so that they can still change it; and a line on the
    customer's contact timeline (not a salesperson's contact: the public-pool clock is
    untouched). A customer without a mobile number gets only the timeline line, which
    says so. Idempotent: `reminded_at` is claimed with a conditional UPDATE.
    """
    appointment = (
        Appointment.objects.select_related(
            "slot__event__created_by", "customer", "created_by", "event_unit__event"
        )
        .filter(pk=action.target_id)
        .first()
    )
    if appointment is None or appointment.state != State.BOOKED:
        return
    if action.idempotency_key != reminder_key(appointment.pk, appointment.slot_id):
        return  # rescheduled since: the new slot has its own reminder
    with transaction.atomic():
        claimed = Appointment.objects.filter(
            pk=appointment.pk, state=State.BOOKED, reminded_at__isnull=True
        ).update(reminded_at=timezone.now())
        if not claimed:
            return
        slot, event = appointment.slot, appointment.slot.event
        customer = appointment.customer
        if customer.merged_into_id:
            customer = Customer.objects.get(pk=customer.merged_into_id)
        text = _(
            "入伙预约提醒：%(event)s，%(date)s %(start)s–%(end)s，地点：%(venue)s。"
        ) % {
            "event": event.name,
            "date": f"{slot.date:%Y-%m-%d}",
            "start": f"{slot.start_time:%H:%M}",
            "end": f"{slot.end_time:%H:%M}",
            "venue": event.venue,
        }
        mobile = address_of(customer, NoticeRun.Channel.SMS)
        if mobile:
            body = text
            if appointment.event_unit_id and is_unit_party(
                customer, appointment.event_unit.unit_id, timezone.localdate()
            ):
                link = links.link_for(
                    event_unit=appointment.event_unit, holder=customer
                )
                body += _("改约或取消：%(url)s") % {"url": links.url_for(link)}
            channels.message_queue(
                channel="sms",
                to=mobile,
                body=body,
                purpose=REMINDER_PURPOSE,
                key=f"{REMINDER_PURPOSE}:{appointment.pk}:{slot.pk}",
            )
            outcome = _("系统自动提醒（短信）")
        else:
            outcome = _("系统自动提醒：客户没有手机号，短信未发送")
        ContactLog.objects.create(
            customer=customer,
            # An owner's own booking has no staff author: the event's organiser signs.
            author=appointment.created_by or event.created_by,
            channel=ContactLog.Channel.SMS,
            direction=ContactLog.Direction.OUTBOUND,
            occurred_at=timezone.now(),
            summary=text,
            outcome=outcome,
        )


# --- customer merge ----------------------------------------------------------------------


class _MergePlan:
    """What a customer merge does with the two customers' appointments.

    One household, one seat per event: where both hold an active appointment without
    a unit in the same event, one is kept and the other cancelled, its seat given back. The kept one
    is the one already checked in (the household came with it), otherwise the
    survivor's (the record the user chose to keep). Two check-ins are both facts: the
    duplicate's stays on the merged record, whose history stays readable. Everything
    else of the duplicate's, cancelled ones included, moves to the survivor.
    """

    def __init__(self, survivor: Customer, appointments: list[Appointment]) -> None:
        self.cancel: list[tuple[Appointment, Appointment]] = []  # (dropped, kept)
        self.stay: list[Appointment] = []
        self.move: list[Appointment] = []
        active: dict[int, dict[bool, Appointment]] = {}
        for appointment in appointments:
            # A unit's booking is the unit's, not the household's: an investor books
            # each unit, and one unit has one active booking whoever made it.
            if appointment.is_active and appointment.event_unit_id is None:
                mine = appointment.customer_id == survivor.pk
                active.setdefault(appointment.event_id, {})[mine] = appointment
        for pair in active.values():
            if len(pair) < 2:
                continue
            kept, other = pair[True], pair[False]
            if kept.state == State.CHECKED_IN and other.state == State.CHECKED_IN:
                self.stay.append(other)
                continue
            if other.state == State.CHECKED_IN:
                kept, other = other, kept
            self.cancel.append((other, kept))
        stay = {a.pk for a in self.stay}
        self.move = [
            a for a in appointments if a.customer_id != survivor.pk and a.pk not in stay
        ]


def _appointments_of(*customers: Customer, lock: bool = False) -> list[Appointment]:
    appointments = Appointment.objects.filter(customer__in=customers)
    if lock:
        appointments = appointments.select_for_update(no_key=True, of=("self",))
    return list(appointments.select_related("event", "slot").order_by("pk"))


def appointments_follow_customer_merge(survivor: Customer, duplicate: Customer) -> None:
    """Merge hook (customers.hooks): runs inside customer_merge's transaction, whose
    audit context names the user; every change is an update of the appointment rows
    (pghistory), so a cancelled booking stays readable with who merged and when."""
    # FOR UPDATE, stronger than the merge's own lock, conflicts with the KEY SHARE lock
    # appointment_book takes on its customer first: bookings of these two customers
    # still in flight finish first and are seen below, later ones wait for the merge
    # and are then refused (_lock_customer_unmerged reads merged_into after the wait).
    list(
        Customer.objects.select_for_update(no_key=False)
        .filter(pk__in=[survivor.pk, duplicate.pk])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # Lock order as everywhere here: appointment rows, then slots in id order.
    plan = _MergePlan(survivor, _appointments_of(survivor, duplicate, lock=True))
    if not plan.cancel and not plan.move:
        return
    now = timezone.now()
    _lock_slots_in_order(*{dropped.slot_id for dropped, _kept in plan.cancel})
    for dropped, kept in plan.cancel:
        Appointment.objects.filter(pk=dropped.pk).update(
            state=State.CANCELLED,
            cancelled_at=now,
            version=F("version") + 1,
            updated_at=now,
        )
        TimeSlot.objects.filter(pk=dropped.slot_id).update(
            booked_count=F("booked_count") - 1
        )
        scheduler.action_cancel(key=reminder_key(dropped.pk, dropped.slot_id))
        if not kept.unit and dropped.unit:
            # The unit number typed on the dropped booking is not lost.
            Appointment.objects.filter(pk=kept.pk).update(
                unit=dropped.unit, version=F("version") + 1, updated_at=now
            )
    # Cancelled first: the moved rows then never meet an active one of the survivor's
    # in the unique index (one active appointment per customer and event).
    Appointment.objects.filter(pk__in=[a.pk for a in plan.move]).update(
        customer=survivor, version=F("version") + 1, updated_at=now
    )


def customer_merge_notes(survivor: Customer, duplicate: Customer) -> list[str]:
    """What appointments_follow_customer_merge will do, for the merge page."""
    plan = _MergePlan(survivor, _appointments_of(survivor, duplicate))
    notes = []
    dropped_pks = {dropped.pk for dropped, _kept in plan.cancel}
    moved = [a for a in plan.move if a.is_active and a.pk not in dropped_pks]
    if moved:
        notes.append(
            _("“%(other)s”的 %(n)s 个入伙预约将移到“%(name)s”。")
            % {"other": duplicate.name, "name": survivor.name, "n": len(moved)}
        )
    for dropped, kept in plan.cancel:
        notes.append(
            _(
                "两位客户都预约了入伙活动“%(event)s”：保留“%(kept)s”的预约"
                "（%(kept_slot)s，%(kept_state)s），取消“%(dropped)s”的预约"
                "（%(dropped_slot)s）并释放名额；取消的预约保留在修改历史中。"
            )
            % {
                "event": kept.event.name,
                "kept": _owner_name(kept, survivor, duplicate),
                "kept_slot": kept.slot,
                "kept_state": kept.get_state_display(),
                "dropped": _owner_name(dropped, survivor, duplicate),
                "dropped_slot": dropped.slot,
            }
        )
    for stays in plan.stay:
        notes.append(
            _(
                "两位客户都已在入伙活动“%(event)s”签到：两条签到记录都保留，"
                "“%(other)s”的签到留在已合并的记录上。"
            )
            % {"event": stays.event.name, "other": duplicate.name}
        )
    return notes


def _owner_name(appointment: Appointment, survivor: Customer, other: Customer) -> str:
    return (survivor if appointment.customer_id == survivor.pk else other).name
