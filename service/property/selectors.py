"""Reads for the property pages and the customer page's 房产 panel, each a fixed
number of queries whatever the size of the project."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from customers import masking
from customers.models import Customer
from service.property.models import (
    Building,
    Phase,
    Project,
    ProxyAuthorisation,
    Unit,
    UnitOwnership,
)


def mask_name(name: str) -> str:
    """王** : the surname stays, as on a courier's label."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


class Person:
    """An owner or proxy as this viewer may see them."""

    def __init__(self, customer: Customer, *, pii: bool, visible: set[int]) -> None:
        self.pk = customer.pk
        self.name = customer.name if pii else mask_name(customer.name)
        phone = customer.phone or ""
        self.phone = phone if pii else masking.mask_phone(phone)
        # Already masked where it is stored; shown only to roles that see PII.
        self.id_number = customer.id_number_masked if pii else ""
        self.url = customer.get_absolute_url() if customer.pk in visible else ""


def _visible_ids(user: Any, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    return set(
        Customer.objects.visible_to(user)
        .filter(pk__in=ids)
        .values_list("pk", flat=True)
    )


def project_list() -> QuerySet:
    return Project.objects.annotate(
        building_count=Count("phases__buildings", distinct=True),
        unit_count=Count("phases__buildings__units", distinct=True),
    ).order_by("code")


def project_page(*, project: Project) -> dict[str, Any]:
    buildings = Building.objects.annotate(
        unit_count=Count("units", distinct=True),
        owned_count=Count(
            "units",
            filter=Q(
                units__ownerships__is_active=True, units__ownerships__role="primary"
            ),
            distinct=True,
        ),
    ).order_by("code")
    phases = list(
        Phase.objects.filter(project=project)
        .order_by("code")
        .prefetch_related(Prefetch("buildings", queryset=buildings))
    )
    return {
        "project": project,
        "phases": phases,
        "unit_total": sum(b.unit_count for p in phases for b in p.buildings.all()),
    }


def _owners_by_unit(
    unit_ids: list[int], *, user: Any, active_only: bool = True
) -> dict[int, list[tuple[UnitOwnership, Person]]]:
    ownerships = UnitOwnership.objects.filter(unit_id__in=unit_ids).select_related(
        "customer"
    )
    if active_only:
        ownerships = ownerships.filter(is_active=True)
    ownerships = list(ownerships.order_by("-is_active", "role", "pk"))
    pii = masking.can_see_pii(user)
    visible = _visible_ids(user, {o.customer_id for o in ownerships})
    found: dict[int, list] = defaultdict(list)
    for ownership in ownerships:
        found[ownership.unit_id].append(
            (ownership, Person(ownership.customer, pii=pii, visible=visible))
        )
    return found


def building_page(*, building: Building, user: Any) -> dict[str, Any]:
    """The floor × room grid: floors from the top down, rooms across, per entrance."""
    units = list(building.units.order_by("entrance", "-floor", "room"))
    owners = _owners_by_unit([u.pk for u in units], user=user)
    entrances: dict[str, dict[int, list]] = {}
    for unit in units:
        unit.owner_names = "、".join(
            p.name for o, p in owners.get(unit.pk, []) if o.role == "primary"
        )
        unit.co_owner_count = sum(
            1 for o, _p in owners.get(unit.pk, []) if o.role != "primary"
        )
        entrances.setdefault(unit.entrance, {}).setdefault(unit.floor, []).append(unit)
    grid = [
        {"entrance": entrance, "floors": sorted(floors.items(), reverse=True)}
        for entrance, floors in entrances.items()
    ]
    return {"building": building, "grid": grid, "unit_count": len(units)}


def unit_page(*, unit: Unit, user: Any) -> dict[str, Any]:
    from service.handover.models import Appointment, EventUnit

    owners = _owners_by_unit([unit.pk], user=user, active_only=False).get(unit.pk, [])
    proxies = list(
        ProxyAuthorisation.objects.filter(unit=unit)
        .select_related("owner", "proxy", "verified_by")
        .order_by("revoked_at", "-created_at")
    )
    pii = masking.can_see_pii(user)
    visible = _visible_ids(
        user, {p.proxy_id for p in proxies} | {p.owner_id for p in proxies}
    )
    for proxy in proxies:
        proxy.proxy_person = Person(proxy.proxy, pii=pii, visible=visible)
        proxy.owner_person = Person(proxy.owner, pii=pii, visible=visible)
    # The unit's 入伙: read only, from the handover app's own rows.
    event_units = list(
        EventUnit.objects.filter(unit=unit)
        .select_related("event", "batch")
        .order_by("-event__start_date")[:20]
    )
    booked = {
        a.event_unit_id: a
        for a in Appointment.objects.filter(event_unit__in=event_units)
        .active()
        .select_related("slot")
    }
    for event_unit in event_units:
        event_unit.appointment = booked.get(event_unit.pk)
    return {
        "unit": unit,
        "owners": owners,
        "proxies": proxies,
        "event_units": event_units,
        "can_see_pii": pii,
    }


def customer_panel(*, user: Any, customer: Customer) -> dict[str, Any]:
    """The units a customer owns (or owned) and those they may act for as a proxy."""
    ownerships = list(
        UnitOwnership.objects.filter(customer=customer)
        .select_related("unit__building__phase__project")
        .order_by("-is_active", "-created_at")[:20]
    )
    proxies = list(
        ProxyAuthorisation.objects.filter(proxy=customer, revoked_at__isnull=True)
        .select_related("unit__building__phase__project", "owner")
        .order_by("-created_at")[:20]
    )
    pii = masking.can_see_pii(user)
    for proxy in proxies:
        proxy.owner_name = proxy.owner.name if pii else mask_name(proxy.owner.name)
    return {"customer": customer, "ownerships": ownerships, "proxies": proxies}
