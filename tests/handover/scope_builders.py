"""Units, owners, scope and batches for the handover tests, made with the ORM (the
property register's own builders live with its app)."""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from customers.models import Customer
from service.handover.models import Batch, EventUnit, HandoverEvent, OwnerLink
from service.property.models import (
    Building,
    Phase,
    Project,
    ProxyAuthorisation,
    Unit,
    UnitOwnership,
)
from tests.factories import CustomerFactory

_serial = itertools.count(1)


def make_project(*, buildings: int = 1, name: str = "翠湖花园") -> Project:
    n = next(_serial)
    project = Project.objects.create(code=f"P{n}", name=f"{name}{n}")
    phase = Phase.objects.create(project=project, code="1", name="一期")
    for number in range(1, buildings + 1):
        Building.objects.create(phase=phase, code=str(number), name=f"{number}栋")
    return project


def buildings_of(project: Project) -> list[Building]:
    return list(Building.objects.filter(phase__project=project).order_by("code"))


def make_unit(
    building: Building, *, floor: int = 15, room: str = "1502", entrance: str = "2"
) -> Unit:
    return Unit.objects.create(
        building=building,
        entrance=entrance,
        floor=floor,
        room=room,
        code=f"{building.pk}-{entrance}-{room}-{next(_serial)}",
    )


def make_units(
    building: Building, *, floors: int, per_floor: int, entrance: str = "1"
) -> list[Unit]:
    units = [
        Unit(
            building=building,
            entrance=entrance,
            floor=floor,
            room=f"{floor}{n:02d}",
            code=f"{building.pk}-{entrance}-{floor}{n:02d}-{next(_serial)}",
        )
        for floor in range(1, floors + 1)
        for n in range(1, per_floor + 1)
    ]
    return Unit.objects.bulk_create(units)


def add_owner(
    unit: Unit, customer: Customer | None = None, *, role: str = "primary"
) -> Customer:
    customer = customer or CustomerFactory()
    UnitOwnership.objects.create(unit=unit, customer=customer, role=role)
    return customer


def add_proxy(
    unit: Unit,
    owner: Customer,
    proxy: Customer | None = None,
    *,
    valid_until: dt.date | None = None,
    scope: str = "handover",
) -> Customer:
    proxy = proxy or CustomerFactory()
    ProxyAuthorisation.objects.create(
        unit=unit, owner=owner, proxy=proxy, scope=scope, valid_until=valid_until
    )
    return proxy


def make_batch(
    event: HandoverEvent,
    name: str = "第一批",
    *,
    opens_in_days: int = -1,
    closes_in_days: int = 30,
) -> Batch:
    now = timezone.now()
    return Batch.objects.create(
        event=event,
        name=name,
        booking_opens_at=now + dt.timedelta(days=opens_in_days),
        booking_closes_at=now + dt.timedelta(days=closes_in_days),
    )


def put_in_scope(
    event: HandoverEvent, unit: Unit, *, batch: Batch | None = None, **fields
) -> EventUnit:
    return EventUnit.objects.create(event=event, unit=unit, batch=batch, **fields)


def owned_unit_in_scope(
    event: HandoverEvent, building: Building, *, batch: Batch | None = None, **fields
) -> tuple[EventUnit, Customer]:
    """A unit with one primary owner, in the event's scope."""
    unit = make_unit(building, room=f"{next(_serial):04d}")
    owner = add_owner(unit)
    return put_in_scope(event, unit, batch=batch, **fields), owner


def link_of(event_unit: EventUnit, holder: Customer, *, days: int = 30) -> OwnerLink:
    """The holder's link to the unit (one live link per holder: an earlier one is
    revoked)."""
    OwnerLink.objects.filter(
        event_unit=event_unit, holder=holder, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    return OwnerLink.objects.create(
        event_unit=event_unit,
        holder=holder,
        nonce=f"n{next(_serial)}",
        expires_at=timezone.now() + dt.timedelta(days=days),
    )
