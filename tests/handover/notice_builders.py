"""Units in an event's scope with their owners, for the notice tests (made with the
ORM until the property register has builders of its own)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from customers.models import Customer
from service.handover.models import Batch, EventUnit, HandoverEvent
from service.property.models import (
    Building,
    Phase,
    Project,
    ProxyAuthorisation,
    Unit,
    UnitOwnership,
)

_serial = itertools.count(1)


def make_project(code: str = "") -> Project:
    n = next(_serial)
    project = Project.objects.create(code=code or f"CH{n}", name="翠湖花园")
    Phase.objects.create(project=project, code="P2", name="二期")
    return project


def make_batch(event: HandoverEvent, name: str = "第一批") -> Batch:
    now = timezone.now()
    return Batch.objects.create(
        event=event,
        name=name,
        booking_opens_at=now - dt.timedelta(days=1),
        booking_closes_at=now + dt.timedelta(days=10),
    )


def make_units(
    event: HandoverEvent,
    *,
    count: int,
    batch: Batch | None = None,
    building: str = "3",
    owner=None,
    co_owners: int = 0,
    phone: bool = True,
    eligibility: str = EventUnit.Eligibility.ELIGIBLE,
    email: bool = False,
) -> list[EventUnit]:
    """`count` units of one building in the event's scope, each with a primary owner
    (a mobile number unless phone=False) and `co_owners` co-owners."""
    if event.project is None:
        event.project = make_project()
        event.save(update_fields=["project"])
    phase = event.project.phases.first()
    place, _ = Building.objects.get_or_create(
        phase=phase, code=building, defaults={"name": f"{building}栋"}
    )
    made = []
    for _i in range(count):
        n = next(_serial)
        unit = Unit.objects.create(
            building=place,
            entrance="1",
            floor=1 + n % 30,
            room=f"{n:04d}",
            code=f"{event.project.code}-{building}-{n}",
        )
        for k in range(1 + co_owners):
            customer = Customer.objects.create(
                name=f"业主{n}-{k}",
                phone=f"139{n:04d}{k:04d}" if phone else "",
                email=f"owner{n}-{k}@example.com" if email else "",
                owner=owner,
                team=getattr(owner, "team", None),
            )
            UnitOwnership.objects.create(
                unit=unit,
                customer=customer,
                role=UnitOwnership.Role.PRIMARY
                if k == 0
                else UnitOwnership.Role.CO_OWNER,
            )
        made.append(
            EventUnit.objects.create(
                event=event, unit=unit, batch=batch, eligibility=eligibility
            )
        )
    return made


def add_proxy(event_unit: EventUnit, *, phone: str = "13700000001") -> Customer:
    unit = event_unit.unit
    owner = unit.ownerships.get(role=UnitOwnership.Role.PRIMARY).customer
    proxy = Customer.objects.create(name="受托人", phone=phone)
    ProxyAuthorisation.objects.create(unit=unit, owner=owner, proxy=proxy)
    return proxy


@pytest.fixture(autouse=True)
def notice_pdf_folder(settings, tmp_path):
    """Letter runs print into DATA_DIR: a temporary one, not the checkout's var/."""
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR
