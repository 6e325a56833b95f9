"""入伙 demo data (`seed_demo`) and scale data (`seed_scale`, `make bench`).

Registered with crm.core.seeding at the end of this module, which the platform's commands
import through `autodiscover_modules("demo")`.

Demo: one published event over three days with some appointments; the project's
1,000-unit event before the day (demo_before.py), then on its second day, today
(demo_day.py). Idempotent: nothing is added once the demo events exist. Scale: a 5,000-unit event (service/handover/scale.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from crm.core import seeding
from customers.models import Customer
from service.handover import demo_before, demo_day, scale, scale_onsite, services
from service.handover.models import HandoverEvent
from service.property import demo as property_demo

DEMO_EVENT = "翠湖花园二期 集中交付"
UNITS = ["1栋1单元", "2栋1单元", "3栋2单元", "5栋1单元"]


def seed_demo(run: seeding.DemoRun) -> str:
    """The demo event for owners among the first 60 demo customers (no summary)."""
    customers = Customer.objects.filter(merged_into__isnull=True).order_by("pk")
    seed_handover_demo(run.users, list(customers[:60]))
    before = demo_before.seed_before_the_day(
        run.users, project_code=property_demo.DEMO_PROJECT, seed=run.seed
    )
    # Then the same event on its second day (demo_day.py): the board's, the stations'
    # and the defects' demo.
    event = HandoverEvent.objects.filter(name=demo_before.DEMO_EVENT).first()
    day = demo_day.seed_the_day(run.users, event, seed=run.seed) if event else ""
    return "; ".join(part for part in (before, day) if part)


def seed_handover_demo(users: dict[str, Any], customers: list[Any]) -> int:
    """Create the demo event and book some owners into it; returns appointments made."""
    if HandoverEvent.objects.filter(name=DEMO_EVENT).exists() or not customers:
        return 0
    admin = users["admin"]
    start = timezone.localdate() + dt.timedelta(days=7)
    event = services.event_save(
        by=admin,
        data={
            "name": DEMO_EVENT,
            "project_name": "翠湖花园二期",
            "venue": "翠湖花园会所一楼大厅",
            "start_date": start,
            "end_date": start + dt.timedelta(days=2),
        },
    )
    for offset in range(3):
        services.slots_add_day(
            by=admin,
            event=event,
            date=start + dt.timedelta(days=offset),
            start_time=dt.time(9, 0),
            end_time=dt.time(17, 0),
            interval_minutes=60,
            capacity=6,
        )
    services.event_publish(by=admin, event=event)
    # Day 1 is the busy day (handover.md §1.2): its first slot is full (已满), the
    # next ones fill up in turn.
    slots = list(event.slots.order_by("date", "start_time"))
    owners = [c for c in customers if not c.is_organization][:30]
    for n, customer in enumerate(owners):
        services.appointment_book(
            slot=slots[0] if n < 6 else slots[1 + (n - 6) // 4],
            customer=customer,
            by=admin,
            unit=f"{UNITS[n % len(UNITS)]}{(n % 20 + 1) * 100 + n % 4 + 1}",
            party_size=1 + n % 3,
            channel=("phone", "staff", "app")[n % 3],
        )
    return len(owners)


# Before the day (the booking burst's event), then on the day (the live board's event).
seeding.register(
    __name__,
    demo=seed_demo,
    scale=seeding.Scale(datasets=[*scale.DATASETS, *scale_onsite.DATASETS]),
)
