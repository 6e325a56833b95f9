"""Handover events with slots a few days ahead, built through the real services
(also used by the access matrix)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from service.handover import services
from service.handover.models import HandoverEvent, TimeSlot


def make_event(
    by,
    *,
    name: str = "翠湖花园二期集中交付",
    days_ahead: int = 3,
    days: int = 1,
    slots_per_day: int = 2,
    capacity: int = 5,
    publish: bool = True,
) -> HandoverEvent:
    """A published event starting `days_ahead` days from today, 09:00 slots of 1 h."""
    start = timezone.localdate() + dt.timedelta(days=days_ahead)
    event = services.event_save(
        by=by,
        data={
            "name": name,
            "project_name": "翠湖花园",
            "venue": "翠湖花园会所一楼",
            "start_date": start,
            "end_date": start + dt.timedelta(days=days - 1),
        },
    )
    for offset in range(days):
        services.slots_add_day(
            by=by,
            event=event,
            date=start + dt.timedelta(days=offset),
            start_time=dt.time(9, 0),
            end_time=dt.time(9 + slots_per_day, 0),
            interval_minutes=60,
            capacity=capacity,
        )
    if publish:
        services.event_publish(by=by, event=event)
    return event


def slots_of(event: HandoverEvent) -> list[TimeSlot]:
    return list(event.slots.order_by("date", "start_time"))
