"""On-the-day rows for the report tests (cases, visits, readings, fees, refusals,
defects), made directly with the ORM so the reports do not wait on the services that
will fill them. Times given are set after the insert where the column is
auto_now_add."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.utils import timezone

from service.defects.models import Contractor, Defect, DefectCategory
from service.handover.models import EventUnit, HandoverEvent
from service.handover.onsite_models import (
    FeePayment,
    MeterReading,
    RefusalRecord,
    StationDefinition,
    StationVisit,
    UnitHandover,
)

_serial = itertools.count(1)

# A 1×1 transparent PNG: a drawn signature, as far as the PDF is concerned.
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A local moment of `day`."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def make_station(
    event: HandoverEvent, code: str, position: int, name: str = ""
) -> StationDefinition:
    return StationDefinition.objects.create(
        event=event,
        code=code,
        name=name or StationDefinition.Code(code).label,
        position=position,
    )


def make_case(
    event_unit: EventUnit,
    *,
    state: str = UnitHandover.State.CHECKED_IN,
    checked_in_at: dt.datetime,
    finished_at: dt.datetime | None = None,
    outcome_at: dt.datetime | None = None,
    by=None,
    **fields,
) -> UnitHandover:
    owner = event_unit.unit.ownerships.get(role="primary").customer
    return UnitHandover.objects.create(
        event=event_unit.event,
        event_unit=event_unit,
        customer=owner,
        state=state,
        checked_in_at=checked_in_at,
        checked_in_by=by,
        finished_at=finished_at,
        outcome_at=outcome_at,
        outcome_by=by if outcome_at else None,
        **fields,
    )


def add_visit(
    case: UnitHandover,
    station: StationDefinition,
    *,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    operator=None,
) -> StationVisit:
    return StationVisit.objects.create(
        case=case,
        station=station,
        state=StationVisit.State.DONE,
        queued_at=started_at - dt.timedelta(minutes=5),
        started_at=started_at,
        finished_at=finished_at,
        operator=operator,
    )


def add_reading(case, kind: str, reading: str, *, by, number: str = "") -> MeterReading:
    return MeterReading.objects.create(
        case=case,
        kind=kind,
        reading=Decimal(reading),
        meter_number=number,
        read_by=by,
    )


def add_fee(
    case, item: str, amount: str, *, by, paid_at: dt.datetime, method: str = "wechat"
) -> FeePayment:
    fee = FeePayment.objects.create(
        case=case, item=item, amount=Decimal(amount), method=method, cashier=by
    )
    FeePayment.objects.filter(pk=fee.pk).update(paid_at=paid_at)
    fee.paid_at = paid_at
    return fee


def add_refusal(
    case,
    *,
    by,
    reason: str = RefusalRecord.Reason.QUALITY,
    details: str = "客厅墙面大面积开裂",
    deadline: dt.date | None = None,
) -> RefusalRecord:
    return RefusalRecord.objects.create(
        case=case,
        reason=reason,
        details=details,
        notice_deadline=deadline or case.event.end_date,
        recorded_by=by,
    )


def make_category(name: str = "墙面开裂") -> DefectCategory:
    n = next(_serial)
    trade = DefectCategory.objects.create(level=1, name=f"土建{n}")
    part = DefectCategory.objects.create(level=2, name="墙面", parent=trade)
    return DefectCategory.objects.create(level=3, name=name, parent=part)


def make_contractor(name: str) -> Contractor:
    return Contractor.objects.create(
        name=name, contact_name="王工", phone="13600000000"
    )


def add_defect(
    *,
    event_unit: EventUnit,
    category: DefectCategory,
    by,
    case: UnitHandover | None = None,
    severity: str = "P2",
    state: str = Defect.State.OPEN,
    created_at: dt.datetime,
    due_at: dt.datetime,
    closed_at: dt.datetime | None = None,
    contractor: Contractor | None = None,
    description: str = "墙面裂缝",
    event: HandoverEvent | None = None,
) -> Defect:
    defect = Defect.objects.create(
        unit=event_unit.unit,
        case=case,
        event=event or event_unit.event,
        room=Defect.Room.LIVING,
        category=category,
        description=description,
        severity=severity,
        state=state,
        contractor=contractor,
        due_at=due_at,
        closed_at=closed_at,
        closed_by=by if closed_at else None,
        approved_by=by if state == Defect.State.FORCE_CLOSED else None,
        close_reason="业主同意" if state == Defect.State.FORCE_CLOSED else "",
        reported_by=by,
    )
    Defect.objects.filter(pk=defect.pk).update(created_at=created_at)
    defect.created_at = created_at
    return defect
