"""Cases (UnitHandover) ready for the station captures and the outcomes, made with
the ORM as check-in would make them (issue 17), and the board's recount."""

from __future__ import annotations

import base64
import datetime as dt
import io

from django.core.files.base import ContentFile
from django.db.models import F
from django.utils import timezone
from PIL import Image

from service.defects.models import Defect, DefectCategory
from service.handover import counters
from service.handover.models import (
    Appointment,
    HandoverEvent,
    StationDefinition,
    StationVisit,
    TimeSlot,
    UnitHandover,
)
from tests.handover.builders import make_event
from tests.handover.scope_builders import (
    buildings_of,
    make_project,
    owned_unit_in_scope,
)

Code = StationDefinition.Code
ROUTE = (
    (Code.IDENTITY, True),
    (Code.SETTLEMENT, True),
    (Code.FEES, True),
    (Code.METERS, True),
    (Code.KEYS, True),
    (Code.ACCEPTANCE, True),
    (Code.SURVEY, False),
)


def add_stations(event: HandoverEvent) -> list[StationDefinition]:
    if event.stations.exists():
        return list(event.stations.order_by("position"))
    return [
        StationDefinition.objects.create(
            event=event,
            code=code,
            name=str(Code(code).label),
            position=n,
            required=required,
        )
        for n, (code, required) in enumerate(ROUTE, start=1)
    ]


def make_case(
    by,
    *,
    event: HandoverEvent | None = None,
    state: str = UnitHandover.State.IN_PROGRESS,
) -> UnitHandover:
    """A checked-in owner's case, in progress, with a visit waiting at every station;
    its `case:<state>` counter bumped as check-in does."""
    event = event or make_event(by, slots_per_day=1, capacity=20)
    stations = add_stations(event)
    building = buildings_of(make_project())[0]
    event_unit, owner = owned_unit_in_scope(event, building)
    unit = event_unit.unit
    unit.contract_area, unit.measured_area = 100, "101.50"
    unit.save(update_fields=["contract_area", "measured_area"])
    slot = event.slots.order_by("date", "start_time").first()
    now = timezone.now()
    appointment = Appointment.objects.create(
        event=event,
        slot=slot,
        customer=owner,
        event_unit=event_unit,
        unit=unit.label,
        state=Appointment.State.CHECKED_IN,
        checked_in_at=now,
        created_by=by,
    )
    TimeSlot.objects.filter(pk=slot.pk).update(booked_count=F("booked_count") + 1)
    case = UnitHandover.objects.create(
        event=event,
        event_unit=event_unit,
        appointment=appointment,
        customer=owner,
        state=state,
        checked_in_at=now,
        checked_in_by=by,
    )
    counters.bump(event.pk, {f"case:{state}": 1})
    StationVisit.objects.bulk_create(
        StationVisit(case=case, station=s, state=StationVisit.State.WAITING)
        for s in stations
    )
    return case


def finish_stations(case: UnitHandover, *, except_codes=()) -> None:
    StationVisit.objects.filter(case=case).exclude(
        station__code__in=except_codes
    ).update(state=StationVisit.State.DONE, finished_at=timezone.now())


def png_bytes(size=(300, 120)) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGBA", size, (255, 255, 255, 0))
    for x in range(20, 200):
        image.putpixel((x, 60), (0, 0, 0, 255))
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(raw: bytes | None = None) -> str:
    return "data:image/png;base64," + base64.b64encode(raw or png_bytes()).decode()


def sign(case: UnitHandover) -> None:
    case.signature.save(f"case-{case.pk}.png", ContentFile(png_bytes()), save=False)
    UnitHandover.objects.filter(pk=case.pk).update(
        signature=case.signature.name, signed_at=timezone.now()
    )


def ready_to_accept(case: UnitHandover) -> UnitHandover:
    """Every station done, keys handed, signed."""
    finish_stations(case)
    UnitHandover.objects.filter(pk=case.pk).update(
        key_action=UnitHandover.KeyAction.TO_OWNER, key_items={"entrance": 2}
    )
    sign(case)
    case.refresh_from_db()
    return case


def add_defect(case: UnitHandover, by, *, state: str = Defect.State.OPEN) -> Defect:
    trade = DefectCategory.objects.filter(parent__isnull=True).first()
    if trade is None:
        trade = DefectCategory.objects.create(name="门窗", level=1)
        part = DefectCategory.objects.create(name="入户门", level=2, parent=trade)
        leaf = DefectCategory.objects.create(name="门锁不灵", level=3, parent=part)
    else:
        leaf = DefectCategory.objects.filter(level=3).first()
    return Defect.objects.create(
        unit=case.event_unit.unit,
        case=case,
        event=case.event,
        category=leaf,
        state=state,
        room=Defect.Room.HALL,
        severity="P2",
        due_at=timezone.now() + dt.timedelta(days=3),
        reported_by=by,
        description="入户门锁不灵",
    )


BOARD_KEYS = ("case:", "hour:", "fees:", "rating:")


def _ours(figures: dict[str, int]) -> dict[str, int]:
    """The keys the outcomes and captures move (the builders do not bump visits or
    arrivals as check-in and the station services do)."""
    return {
        key: value
        for key, value in figures.items()
        if value and key.startswith(BOARD_KEYS) and not key.endswith(":arrived")
    }


def recount(event: HandoverEvent) -> dict[str, int]:
    """The board's case, outcome-hour, fee and rating figures recounted from the rows
    (counters.recount, the board's own)."""
    return _ours(counters.recount(event.pk))


def board(event: HandoverEvent) -> dict[str, int]:
    return _ours(counters.read(event.pk))
