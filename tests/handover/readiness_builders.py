"""A small property with owners, an event's scope, notices and unit bookings, for the
readiness and call-list tests. Rows the services under test only read are made
directly; bookings go through the booking service."""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from service.handover import services
from service.handover.models import (
    Appointment,
    Batch,
    EventUnit,
    HandoverEvent,
    Notice,
    TimeSlot,
)
from service.property.models import Building, Phase, Project, Unit, UnitOwnership
from tests.factories import CustomerFactory

_serial = itertools.count(1)


def make_units(count: int, *, owner_user, buildings: int = 2) -> list[Unit]:
    """`count` units spread over `buildings` buildings, each with a primary owner
    (a customer owned by `owner_user`) and every third with a co-owner."""
    n = next(_serial)
    project = Project.objects.create(code=f"RD{n}", name=f"翠湖花园{n}")
    phase = Phase.objects.create(project=project, code="1", name="一期")
    blocks = [
        Building.objects.create(phase=phase, code=f"B{b + 1}", name=f"{b + 1}栋")
        for b in range(buildings)
    ]
    units = []
    per_building = -(-count // buildings)
    for i in range(count):
        # Building by building, two rooms a floor: the call list's own order.
        building = blocks[i // per_building]
        j = i % per_building
        floor = j // 2 + 1
        room = f"{floor}0{j % 2 + 1}"
        unit = Unit.objects.create(
            building=building,
            entrance="1",
            floor=floor,
            room=room,
            code=f"RD{n}-1-{building.code}-1-{room}",
        )
        UnitOwnership.objects.create(
            unit=unit, customer=CustomerFactory(owner=owner_user), role="primary"
        )
        if i % 3 == 2:
            UnitOwnership.objects.create(
                unit=unit, customer=CustomerFactory(owner=owner_user), role="co_owner"
            )
        units.append(unit)
    return units


def make_batch(event: HandoverEvent, name: str, *, opens_in_days: int = -7) -> Batch:
    opens = timezone.now() + dt.timedelta(days=opens_in_days)
    return Batch.objects.create(
        event=event,
        name=name,
        booking_opens_at=opens,
        booking_closes_at=opens + dt.timedelta(days=30),
    )


def put_in_scope(
    event: HandoverEvent,
    units: list[Unit],
    *,
    batch: Batch | None = None,
    eligibility: str = EventUnit.Eligibility.ELIGIBLE,
) -> list[EventUnit]:
    return [
        EventUnit.objects.create(
            event=event, unit=unit, batch=batch, eligibility=eligibility
        )
        for unit in units
    ]


def primary_owner(event_unit: EventUnit):
    return event_unit.unit.ownerships.get(role="primary").customer


def notify(
    event_unit: EventUnit,
    *,
    by,
    state: str,
    sent_at: dt.datetime | None = None,
    channel: str = "sms",
    round: int = 1,
) -> Notice:
    """A notice in `state`; sent or delivered ones carry `sent_at` (default now)."""
    if state != Notice.State.QUEUED:
        sent_at = sent_at or timezone.now()
    return Notice.objects.create(
        event_unit=event_unit,
        recipient=primary_owner(event_unit),
        channel=channel,
        round=round,
        state=state,
        sent_at=sent_at if state != Notice.State.QUEUED else None,
        delivered_at=sent_at if state == Notice.State.DELIVERED else None,
        created_by=by,
    )


def book(
    event_unit: EventUnit, *, slot: TimeSlot, by, made_at: dt.datetime | None = None
) -> Appointment:
    """A booking of the unit for its primary owner, through the booking service (the
    staff path, with a reason when the unit is not eligible)."""
    appointment = services.appointment_book(
        slot=slot,
        customer=primary_owner(event_unit),
        by=by,
        unit=event_unit.unit.label,
        event_unit=event_unit,
        override_reason="" if event_unit.is_eligible else "测试例外",
    )
    if made_at is not None:
        Appointment.objects.filter(pk=appointment.pk).update(created_at=made_at)
        appointment.refresh_from_db()
    return appointment
