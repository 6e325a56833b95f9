"""Reads for the owner's booking pages behind their personal link: a fixed handful of
queries whatever the event's size (the unit's owners, its active booking, the batch's
slots)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from service.handover import services
from service.handover.models import (
    Appointment,
    EventUnit,
    HandoverEvent,
    OwnerLink,
    TimeSlot,
)

# last_used_at is written at most this often per link: an owner reloading the page
# should not turn every view into a row update.
TOUCH_EVERY = dt.timedelta(minutes=5)


def mask_name(name: str) -> str:
    """张** for 张三丰: the other owners of a unit are named only by their surname."""
    name = (name or "").strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def owner_seats_left(slot: TimeSlot, now: dt.datetime) -> int:
    """Seats an owner may still take: capacity less the walk-in hold (until its
    release hour) less every booking. Only a hint for the page: the service's
    conditional UPDATE decides."""
    return services.seats_open(slot, Appointment.Channel.OWNER_LINK, now)


def cutoff_at(slot: TimeSlot) -> dt.datetime:
    """Until this moment the owner books, changes or cancels online."""
    return services.owner_deadline(slot)


def touch(link: OwnerLink, now: dt.datetime) -> None:
    """Record that the link was used, cheaply: one conditional UPDATE at most every
    TOUCH_EVERY per link (the row just read says whether it is due)."""
    if link.last_used_at is not None and now - link.last_used_at < TOUCH_EVERY:
        return
    OwnerLink.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_EVERY),
        pk=link.pk,
    ).update(last_used_at=now)


@dataclass
class SlotChoice:
    slot: TimeSlot
    seats_left: int
    is_bookable: bool
    is_current: bool


def unit_booking(event_unit: EventUnit) -> Appointment | None:
    """The unit's active booking in the event: the unfinished one (at most one: a
    unique index), else the visit finished with its case's outcome."""
    return (
        Appointment.objects.active()
        .filter(event_unit=event_unit)
        .select_related("slot", "customer")
        .current_first()
        .first()
    )


def slot_queryset(event_unit: EventUnit) -> Any:
    """The slots an owner of the unit may book: their batch's, and the event's slots
    that belong to no batch, from today on."""
    slots = TimeSlot.objects.filter(
        event_id=event_unit.event_id, date__gte=timezone.localdate()
    )
    if event_unit.batch_id:
        slots = slots.filter(Q(batch_id=event_unit.batch_id) | Q(batch__isnull=True))
    return slots.order_by("date", "start_time")


def slot_days(
    event_unit: EventUnit,
    *,
    now: dt.datetime,
    current: Appointment | None = None,
) -> list[tuple[dt.date, list[SlotChoice]]]:
    """The bookable slots grouped by day, each with the seats an owner may still take."""
    event = event_unit.event
    choices = []
    for slot in slot_queryset(event_unit):
        slot.event = event  # the rules read it: no query per slot
        if slot.starts_at <= now:
            continue
        left = owner_seats_left(slot, now)
        is_current = current is not None and current.slot_id == slot.pk
        choices.append(
            SlotChoice(
                slot=slot,
                seats_left=left,
                is_bookable=left > 0 and cutoff_at(slot) > now and not is_current,
                is_current=is_current,
            )
        )
    return [
        (day, list(rows)) for day, rows in groupby(choices, key=lambda c: c.slot.date)
    ]


def window_state(event_unit: EventUnit, now: dt.datetime) -> str:
    """open, not_yet or closed: the batch's booking window (no batch: always open)."""
    batch = event_unit.batch
    if batch is None:
        return "open"
    if now < batch.booking_opens_at:
        return "not_yet"
    if now >= batch.booking_closes_at:
        return "closed"
    return "open"


def other_holders(event_unit: EventUnit, holder_id: int) -> list[str]:
    """The unit's other owners, masked (the link's holder sees only their own name)."""
    from service.property.models import UnitOwnership

    names = (
        UnitOwnership.objects.filter(unit_id=event_unit.unit_id, is_active=True)
        .exclude(customer_id=holder_id)
        .order_by("role", "id")
        .values_list("customer__name", flat=True)
    )
    return [mask_name(name) for name in names]


def owner_page(
    link: OwnerLink, *, now: dt.datetime, with_slots: bool
) -> dict[str, Any]:
    """Everything the owner's page shows."""
    event_unit = link.event_unit
    event = event_unit.event
    appointment = unit_booking(event_unit)
    context: dict[str, Any] = {
        "link": link,
        "event": event,
        "event_unit": event_unit,
        "unit": event_unit.unit,
        "batch": event_unit.batch,
        "holder": link.holder,
        # Read when the template shows it: a booking that succeeds redirects first.
        "other_holders": functools.cache(
            functools.partial(other_holders, event_unit, link.holder_id)
        ),
        "appointment": appointment,
        "window": window_state(event_unit, now),
        "desk_phone": settings.KEHU_HANDOVER_DESK_PHONE,
        "is_published": event.status == HandoverEvent.Status.PUBLISHED,
    }
    if appointment is not None:
        appointment.slot.event = event
        deadline = cutoff_at(appointment.slot)
        context["cutoff_at"] = deadline
        context["can_change"] = (
            appointment.state == Appointment.State.BOOKED
            and context["is_published"]
            and now < deadline
        )
    if with_slots:
        context["days"] = slot_days(event_unit, now=now, current=appointment)
    return context
