"""Reads for the scope and batch pages: each page in a fixed number of queries,
whatever the number of units (5,000 in scope reads like 50)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Count,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers import search
from customers.models import Customer
from service.handover.models import Appointment, Batch, EventUnit, HandoverEvent
from service.property.models import Building, ProxyAuthorisation, UnitOwnership

SCOPE_PAGE_SIZE = 50
PICKER_SIZE = 20
BOOKED = "booked"
NOT_BOOKED = "not_booked"
NO_BATCH = "none"


@dataclass
class ScopeFilters:
    building: int | None = None
    batch: str = ""  # a batch id, NO_BATCH, or "" for any
    eligibility: str = ""
    booked: str = ""
    query: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _active_booking() -> Exists:
    return Exists(Appointment.objects.active().filter(event_unit=OuterRef("pk")))


def _search(units: QuerySet, query: str) -> QuerySet:
    """A room (1502) or a unit code, exactly, or an owner's phone (all of it)."""
    text = search.normalise(query)
    digits = "".join(c for c in text if c.isdigit())
    if search.is_sensitive(text) and len(digits) >= 7:
        owners = UnitOwnership.objects.filter(is_active=True).filter(
            Q(customer__phone=digits) | Q(customer__phones__number=digits)
        )
        return units.filter(unit__in=owners.values("unit_id"))
    # Exact: "101" is room 101 of every building, not 1101 or 2101 too.
    return units.filter(Q(unit__room__iexact=text) | Q(unit__code__iexact=text))


def scope_units(event: HandoverEvent, filters: ScopeFilters) -> QuerySet:
    units = EventUnit.objects.filter(event=event)
    if filters.building:
        units = units.filter(unit__building_id=filters.building)
    if filters.batch == NO_BATCH:
        units = units.filter(batch__isnull=True)
    elif filters.batch:
        units = units.filter(batch_id=int(filters.batch))
    if filters.eligibility:
        units = units.filter(eligibility=filters.eligibility)
    if filters.booked == BOOKED:
        units = units.filter(_active_booking())
    elif filters.booked == NOT_BOOKED:
        units = units.exclude(_active_booking())
    if filters.query:
        units = _search(units, filters.query)
    return units


def with_rows(units: QuerySet) -> QuerySet:
    """What a row shows: place, batch, the active owners, the active booking."""
    return units.select_related("unit__building", "batch").prefetch_related(
        Prefetch(
            "unit__ownerships",
            queryset=UnitOwnership.objects.filter(is_active=True)
            .select_related("customer")
            .order_by("role", "id"),
            to_attr="owners",
        ),
        Prefetch(
            "appointments",
            # The unfinished booking first (a re-inspection after a finished visit).
            queryset=Appointment.objects.active()
            .select_related("slot")
            .current_first(),
            to_attr="active_bookings",
        ),
    )


def scope_page(
    event: HandoverEvent, filters: ScopeFilters, *, after: int | None
) -> tuple[list[EventUnit], int | None]:
    """One keyset page of the filtered units in scope (id order, which is place order
    as scope_add inserts them), and the id to continue after, if any."""
    units = scope_units(event, filters)
    if after:
        units = units.filter(pk__gt=after)
    rows = list(with_rows(units).order_by("pk")[: SCOPE_PAGE_SIZE + 1])
    if len(rows) <= SCOPE_PAGE_SIZE:
        return rows, None
    rows = rows[:SCOPE_PAGE_SIZE]
    return rows, rows[-1].pk


def scope_totals(event: HandoverEvent) -> dict[str, int]:
    """In scope, eligible, in a batch and booked: one query."""
    return EventUnit.objects.filter(event=event).aggregate(
        total=Count("id"),
        eligible=Count("id", filter=Q(eligibility=EventUnit.Eligibility.ELIGIBLE)),
        batched=Count("id", filter=Q(batch__isnull=False)),
        booked=Count("id", filter=Q(_active_booking())),
    )


def event_buildings(event: HandoverEvent) -> list[Building]:
    if event.project_id is None:
        return []
    return list(
        Building.objects.filter(phase__project_id=event.project_id)
        .select_related("phase")
        .order_by("phase__code", "code")
    )


def event_batches(event: HandoverEvent) -> list[Batch]:
    """The event's batches with their units, slots and seats (one query; the unit
    count is a subquery so that it does not multiply the slot sums)."""
    units = (
        EventUnit.objects.filter(batch=OuterRef("pk"))
        .order_by()
        .values("batch")
        .annotate(n=Count("id"))
        .values("n")
    )
    return list(
        Batch.objects.filter(event=event)
        .annotate(
            unit_count=Coalesce(Subquery(units), 0),
            slot_count=Count("slots"),
            seats=Sum("slots__capacity", default=0),
            booked=Sum("slots__booked_count", default=0),
        )
        .order_by("booking_opens_at", "id")
    )


def has_scope(event: HandoverEvent) -> bool:
    return EventUnit.objects.filter(event=event).exists()


def unit_picker(event: HandoverEvent, query: str) -> list[EventUnit]:
    """Units in scope matching a room or an owner's phone, for the booking page."""
    if not query:
        return []
    units = _search(EventUnit.objects.filter(event=event), query)
    return list(units.order_by("pk")[:PICKER_SIZE])


def with_parties(units: list[EventUnit]) -> list[EventUnit]:
    """The units with their active owners (`unit.owners`, as with_rows) and valid
    handover proxies (`unit.handover_proxies`): two queries for the whole list."""
    if not units:
        return []
    today = timezone.localdate()
    ids = [u.pk for u in units]
    proxies = (
        ProxyAuthorisation.objects.filter(
            scope=ProxyAuthorisation.Scope.HANDOVER, revoked_at__isnull=True
        )
        .exclude(valid_until__lt=today)
        .select_related("proxy", "owner")
        .order_by("id")
    )
    return list(
        EventUnit.objects.filter(pk__in=ids)
        .select_related("unit__building", "batch")
        .prefetch_related(
            Prefetch(
                "unit__ownerships",
                queryset=UnitOwnership.objects.filter(is_active=True)
                .select_related("customer")
                .order_by("role", "id"),
                to_attr="owners",
            ),
            Prefetch("unit__proxies", queryset=proxies, to_attr="handover_proxies"),
        )
        .order_by("pk")
    )


def visible_party_ids(user: Any, units: list[EventUnit]) -> set[int]:
    """Which of the units' owners and proxies the user may book for (one query)."""
    ids = {o.customer_id for u in units for o in u.unit.owners}
    ids |= {p.proxy_id for u in units for p in u.unit.handover_proxies}
    if not ids:
        return set()
    return set(
        Customer.objects.visible_to(user)
        .filter(pk__in=ids, merged_into__isnull=True)
        .values_list("pk", flat=True)
    )
