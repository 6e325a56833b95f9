"""Events with booked units for the on-site tests (check-in, stations), built through
the real services; and the recount the board's counters must equal."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.utils import timezone

from service.handover import counters, services
from service.handover.models import (
    Appointment,
    EventUnit,
    HandoverEvent,
    StationVisit,
    TimeSlot,
    UnitHandover,
)
from tests.handover.builders import make_event, slots_of
from tests.handover.scope_builders import (
    buildings_of,
    make_project,
    owned_unit_in_scope,
)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A local (project time zone) moment."""
    return dt.datetime.combine(
        day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone()
    )


def booked_event(
    admin, *, units: int = 3, booked: int | None = None, capacity: int = 10
) -> tuple[HandoverEvent, list[tuple[EventUnit, object, Appointment | None]]]:
    """An event tomorrow (09:00 and 10:00 slots) with `units` owned units in scope, the
    first `booked` of them booked into the 09:00 slot."""
    event = make_event(admin, days_ahead=1, slots_per_day=2, capacity=capacity)
    building = buildings_of(make_project())[0]
    slot = slots_of(event)[0]
    rows = []
    for n in range(units):
        event_unit, owner = owned_unit_in_scope(event, building)
        appointment = None
        if booked is None or n < booked:
            appointment = services.appointment_book(
                slot=slot, customer=owner, by=admin, event_unit=event_unit
            )
        rows.append((event_unit, owner, appointment))
    return event, rows


def day_of(event: HandoverEvent) -> dt.date:
    return TimeSlot.objects.filter(event=event).order_by("date").first().date


def recount(event: HandoverEvent) -> dict[str, int]:
    """The counters' keys this issue's check-in and stations keep, from the rows."""
    expected: Counter[str] = Counter()
    for case in UnitHandover.objects.filter(event=event):
        expected[f"case:{case.state}"] += 1
        if case.checked_in_at is None or case.state == UnitHandover.State.ABSENT:
            continue
        local = timezone.localtime(case.checked_in_at)
        expected[f"hour:{local:%Y%m%d%H}:arrived"] += 1
    for visit in StationVisit.objects.filter(case__event=event):
        key = f"station:{visit.station_id}:"
        expected[key + visit.state] += 1
        if visit.started_at:
            expected[key + "served"] += 1
            expected[key + "wait_s"] += max(
                int((visit.started_at - visit.queued_at).total_seconds()), 0
            )
        if visit.state == StationVisit.State.DONE:
            # station:<id>:done is both the state's key and "visits finished".
            expected[key + "service_s"] += max(
                int((visit.finished_at - visit.started_at).total_seconds()), 0
            )
    return {k: v for k, v in expected.items() if v}


def board(event: HandoverEvent) -> dict[str, int]:
    return {
        k: v
        for k, v in counters.read(event.pk).items()
        if v and (k.startswith(("case:", "station:")) or k.endswith(":arrived"))
    }
