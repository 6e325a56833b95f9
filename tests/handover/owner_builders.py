"""A unit of the property register in an event's scope, with its owners and their
personal links: what the owner pages and the booking burst need."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.utils import timezone

from service.handover import links
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


@dataclass
class OwnedUnit:
    """A token is made once per holder (signing stamps it with the second)."""

    event_unit: EventUnit
    primary: Any
    co_owner: Any
    proxy: Any
    link: OwnerLink
    co_link: OwnerLink
    proxy_link: OwnerLink

    @cached_property
    def token(self) -> str:
        return links.token_for(self.link)

    @cached_property
    def co_token(self) -> str:
        return links.token_for(self.co_link)

    @cached_property
    def proxy_token(self) -> str:
        return links.token_for(self.proxy_link)


def scoped_event(event: HandoverEvent, *, opens_in_hours: int = -24) -> Batch:
    """Give the event a project and one batch holding all its slots, open for booking
    from `opens_in_hours` from now until the day before the event."""
    project, _ = Project.objects.get_or_create(
        code="CHL", defaults={"name": "翠湖花园"}
    )
    HandoverEvent.objects.filter(pk=event.pk).update(project=project)
    now = timezone.now()
    batch = Batch.objects.create(
        event=event,
        name="第一批（1–2栋）",
        booking_opens_at=now + dt.timedelta(hours=opens_in_hours),
        booking_closes_at=now + dt.timedelta(days=30),
    )
    event.slots.update(batch=batch)
    return batch


def owned_unit(
    event: HandoverEvent, batch: Batch | None, *, room: str = "1502", owner: Any = None
) -> OwnedUnit:
    """Unit 1栋2单元<room> with a primary owner, a co-owner and a proxy, in the event's
    scope (eligible), and each one's live link."""
    project = event.project or Project.objects.get(code="CHL")
    phase, _ = Phase.objects.get_or_create(
        project=project, code="P2", defaults={"name": "二期"}
    )
    building, _ = Building.objects.get_or_create(
        phase=phase, code="B1", defaults={"name": "1栋"}
    )
    unit = Unit.objects.create(
        building=building,
        entrance="2",
        floor=int(room[:-2]),
        room=room,
        code=f"CHL-P2-B1-2-{room}",
    )
    primary = (
        CustomerFactory(name="林晓东", owner=owner)
        if owner
        else CustomerFactory(name="林晓东")
    )
    co_owner = CustomerFactory(name="陈美玲", owner=primary.owner)
    proxy = CustomerFactory(name="王建国", owner=primary.owner)
    UnitOwnership.objects.create(unit=unit, customer=primary, role="primary")
    UnitOwnership.objects.create(unit=unit, customer=co_owner, role="co_owner")
    ProxyAuthorisation.objects.create(unit=unit, owner=primary, proxy=proxy)
    event_unit = EventUnit.objects.create(event=event, unit=unit, batch=batch)
    return OwnedUnit(
        event_unit=event_unit,
        primary=primary,
        co_owner=co_owner,
        proxy=proxy,
        link=links.link_for(event_unit=event_unit, holder=primary),
        co_link=links.link_for(event_unit=event_unit, holder=co_owner),
        proxy_link=links.link_for(event_unit=event_unit, holder=proxy),
    )
