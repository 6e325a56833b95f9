"""Reads for the handover pages: each page's rows in a fixed number of queries."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from crm.accounts.roles import Role
from service.handover.models import Appointment, HandoverEvent, TimeSlot

EVENT_ROLES = (Role.MANAGER, Role.ADMIN)
CANCELLED_SHOWN = 20


def events_for(user: Any) -> QuerySet:
    """Every staff role sees published and closed events; drafts only their planners."""
    events = HandoverEvent.objects.all()
    if user.role not in EVENT_ROLES:
        events = events.exclude(status=HandoverEvent.Status.DRAFT)
    return events


def event_list(*, user: Any, status: str = "") -> QuerySet:
    events = events_for(user)
    if status in HandoverEvent.Status.values:
        events = events.filter(status=status)
    return events.annotate(
        slot_count=Count("slots"),
        seats=Sum("slots__capacity", default=0),
        booked=Sum("slots__booked_count", default=0),
    ).order_by("-start_date", "-id")


def fill_rate(booked: int, seats: int) -> int:
    return round(100 * booked / seats) if seats else 0


def event_days(event: HandoverEvent) -> list[tuple[Any, list[TimeSlot]]]:
    """The event's slots grouped by day, in time order."""
    slots = event.slots.select_related("batch").order_by("date", "start_time")
    return [(day, list(rows)) for day, rows in groupby(slots, key=lambda s: s.date)]


def event_totals(event: HandoverEvent) -> dict[str, int]:
    totals = event.slots.aggregate(
        seats=Sum("capacity", default=0), booked=Sum("booked_count", default=0)
    )
    totals["fill_rate"] = fill_rate(totals["booked"], totals["seats"])
    return totals


def slot_appointments(*, user: Any, slot: TimeSlot) -> dict[str, Any]:
    """The slot's active appointments the user may see (at most `capacity` rows), the
    latest cancelled ones, and how many active ones of other teams are not shown."""
    visible = (
        Appointment.objects.visible_to(user)
        .filter(slot=slot)
        .select_related("customer", "created_by")
    )
    active = list(visible.active().order_by("state", "created_at", "id"))
    cancelled = list(
        visible.filter(state=Appointment.State.CANCELLED).order_by(
            "-cancelled_at", "-id"
        )[:CANCELLED_SHOWN]
    )
    return {
        "appointments": active + cancelled,
        "hidden_count": max(slot.booked_count - len(active), 0),
    }


def appointment_for_page(user: Any) -> QuerySet:
    return Appointment.objects.visible_to(user).select_related(
        "slot", "event", "customer"
    )


def open_slots(event: HandoverEvent) -> QuerySet:
    """The slots a booking may choose from: from today on (full ones are shown,
    marked 已满, and refused by the form)."""
    return (
        event.slots.filter(date__gte=timezone.localdate())
        .select_related("batch")
        .order_by("date", "start_time")
    )


def active_counts(event: HandoverEvent) -> dict[str, int]:
    return Appointment.objects.filter(event=event).aggregate(
        booked=Count("id", filter=Q(state=Appointment.State.BOOKED)),
        checked_in=Count("id", filter=Q(state=Appointment.State.CHECKED_IN)),
    )
