"""The re-inspection (复验) of a unit whose handover ended 验收未通过 (issue 17).

The outcome finished the case's appointment (outcomes._finish sets
`Appointment.finished_at`), so the unit and its owner no longer hold a booking in the
event and the booking core may book them again. Staff book the re-inspection here:

- the case must be 验收未通过 and have no active re-inspection booking (a cancelled or
  missed one may be replaced);
- the slot is one of the case's event, or of a later event of the same project
  (the unit must be in that event's scope), on or after the date the owner asked for
  (`reinspection_on`) and not begun;
- the booking itself is `services.appointment_book` (staff channel): its capacity
  rule, walk-in hold, batch rule (override with a reason) and unit-party rule hold
  as for any booking; its refusals come back as ReinspectionRefused with their
  message;
- the new appointment is linked as `UnitHandover.reinspection_appointment`, the case's
  version bumped, and one CaseLog row (`reinspection_booked`) written.

When the owner comes back, the appointment is checked in as any other and the check-in
opens the unit's next round (onsite._open_case: round = the earlier round + 1, CaseLog
`reinspection`).

Lock order: the case row (FOR NO KEY UPDATE, so that two staff booking at once book
once), then appointment_book's own (customer, unit, appointment, slot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.db import audited, retry_transient
from service.handover import outcomes, services
from service.handover.models import (
    Appointment,
    CaseLog,
    EventUnit,
    HandoverEvent,
    TimeSlot,
    UnitHandover,
)

# Booking is the booking core's: the roles that book (every staff role today).
BOOKING_ROLES = services.BOOKING_ROLES
# The slots offered on the case page: the first ones from the asked-for date on.
MAX_CHOICES = 120


class ReinspectionRefused(outcomes.OutcomeRefused):
    """The re-inspection cannot be booked; `message` is shown to the user as is."""


def needs_booking(case: UnitHandover) -> bool:
    """验收未通过 and no active re-inspection booking (case.reinspection_appointment
    must be loaded with the case, or this reads it)."""
    if case.state != UnitHandover.State.NOT_ACCEPTED:
        return False
    booked = case.reinspection_appointment
    return booked is None or not booked.is_active


def _first_day(case: UnitHandover) -> Any:
    today = timezone.localdate()
    return max(case.reinspection_on or today, today)


def _events(case: UnitHandover) -> Q:
    """The case's event, and the later events of its project."""
    same = Q(event_id=case.event_id)
    if case.event.project_id is None:
        return same
    return same | Q(
        event__project_id=case.event.project_id,
        event__start_date__gte=case.event.start_date,
        event__event_units__unit_id=case.event_unit.unit_id,
    )


@dataclass
class SlotChoice:
    slot: TimeSlot
    seats: int


def slot_choices(case: UnitHandover) -> list[SlotChoice]:
    """The slots the re-inspection may be booked into, from the asked-for date on,
    with the seats a staff booking may take now (full ones shown, marked 已满)."""
    now = timezone.now()
    slots = (
        TimeSlot.objects.filter(
            _events(case),
            event__status=HandoverEvent.Status.PUBLISHED,
            date__gte=_first_day(case),
        )
        .select_related("event")
        .distinct()
        .order_by("date", "start_time", "pk")
    )
    return [
        SlotChoice(slot, services.seats_open(slot, Appointment.Channel.STAFF, now))
        for slot in slots[:MAX_CHOICES]
        if slot.starts_at > now
    ]


def _event_unit_for(case: UnitHandover, slot: TimeSlot) -> EventUnit:
    """The unit's scope row in the slot's event, or ReinspectionRefused."""
    if slot.event_id == case.event_id:
        return case.event_unit
    project_id = case.event.project_id
    if (
        project_id is None
        or slot.event.project_id != project_id
        or slot.event.start_date < case.event.start_date
    ):
        raise ReinspectionRefused(
            _("复验只能预约本次入伙活动或同一楼盘后续活动的时段。")
        )
    event_unit = EventUnit.objects.filter(
        event_id=slot.event_id, unit_id=case.event_unit.unit_id
    ).first()
    if event_unit is None:
        raise ReinspectionRefused(
            _("房间 %(unit)s 不在活动“%(event)s”的交付范围内，不能预约复验。")
            % {"unit": case.event_unit.unit.label, "event": slot.event.name}
        )
    return event_unit


def _check_slot(case: UnitHandover, slot: TimeSlot | None) -> EventUnit:
    if slot is None:
        raise ReinspectionRefused(_("所选时段不存在，请重新选择。"))
    event_unit = _event_unit_for(case, slot)
    if slot.is_past:
        raise ReinspectionRefused(_("该时段已开始或已过去，请选择其他时段。"))
    if case.reinspection_on and slot.date < case.reinspection_on:
        raise ReinspectionRefused(
            _("复验时段不能早于业主要求的复验日期 %(date)s。")
            % {"date": f"{case.reinspection_on:%Y-%m-%d}"}
        )
    return event_unit


def _require_needs_booking(case: UnitHandover) -> None:
    if case.state != UnitHandover.State.NOT_ACCEPTED:
        raise ReinspectionRefused(
            _("只有验收未通过的交房单才能预约复验（当前为“%(state)s”）。")
            % {"state": case.get_state_display()}
        )
    if not needs_booking(case):
        booked = case.reinspection_appointment
        raise ReinspectionRefused(
            _("已预约复验（%(slot)s），如需更改请改约该预约。") % {"slot": booked.slot}
        )


@retry_transient
def reinspection_book(
    case: UnitHandover,
    *,
    by: Any,
    slot_id: int | None,
    override_reason: str = "",
) -> Appointment:
    """Book the re-inspection of a 验收未通过 case into the slot, or raise
    ReinspectionRefused (nothing written) with the reason."""
    if getattr(by, "role", None) not in BOOKING_ROLES:
        raise PermissionDenied
    if not slot_id:
        raise ReinspectionRefused(_("请选择复验时段。"))
    slot = TimeSlot.objects.select_related("event").filter(pk=slot_id).first()
    with transaction.atomic(), audited(by):
        current = outcomes.lock_case(case, None)
        current = (
            UnitHandover.objects.select_related(
                "event",
                "event_unit__unit__building",
                "customer",
                "reinspection_appointment__slot",
            )
            .filter(pk=current.pk)
            .get()
        )
        _require_needs_booking(current)
        event_unit = _check_slot(current, slot)
        try:
            appointment = services.appointment_book(
                slot=slot,
                customer=current.customer,
                by=by,
                event_unit=event_unit,
                override_reason=override_reason,
                channel=Appointment.Channel.STAFF,
            )
        except services.BookingError as refused:
            raise ReinspectionRefused(refused.message) from refused
        except ValidationError as invalid:
            raise ReinspectionRefused(" ".join(invalid.messages)) from invalid
        except PermissionDenied as denied:
            # The booking core books only customers the user may see.
            raise ReinspectionRefused(
                _("该业主不在您的客户范围内，不能为其预约，请联系经理。")
            ) from denied
        now = timezone.now()
        UnitHandover.objects.filter(pk=current.pk).update(
            reinspection_appointment=appointment,
            version=F("version") + 1,
            updated_at=now,
        )
        CaseLog.objects.create(
            case=current,
            action="reinspection_booked",
            from_state=current.state,
            to_state=current.state,
            note=(
                _("预约复验：%(event)s %(slot)s")
                % {"event": slot.event.name, "slot": slot}
            )[:300],
            actor=by,
        )
    case.refresh_from_db()
    return appointment
