"""交付准备 at 5,000 units: the timing and the plans of the readiness reads.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kehu_x \
    .venv/bin/python -m bench.handover_readiness [units]

Builds one event of `units` units (default 5,000) in 10 buildings with an owner each,
two batches, 90 % of the units notified (80 % delivered, some failed), half of them
booked and a tenth of those checked in, all in one transaction that is rolled back at
the end: the database is left as it was. Prints the best of 20 runs of each read and the
EXPLAIN ANALYZE of its statements (docs/benchmarks.md, Issue 15).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time

import django

RUNS = 20


def say(text: str) -> None:
    sys.stdout.write(text + "\n")


def build(units: int) -> object:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from customers.models import Customer
    from service.handover.models import (
        Appointment,
        Batch,
        EventUnit,
        HandoverEvent,
        Notice,
        TimeSlot,
    )
    from service.property.models import Building, Phase, Project, Unit, UnitOwnership

    user = get_user_model().objects.create(username="bench_readiness")
    # The call centre's role: sees every owner under the default visibility.
    user.groups.add(Group.objects.get(name="service"))
    now = timezone.now()
    start = timezone.localdate() + dt.timedelta(days=20)
    event = HandoverEvent.objects.create(
        name="基准 5000 户",
        project_name="基准",
        venue="会所",
        start_date=start,
        end_date=start + dt.timedelta(days=4),
        status="published",
        created_by=user,
    )
    batches = [
        Batch.objects.create(
            event=event,
            name=f"第{n + 1}批",
            booking_opens_at=now - dt.timedelta(days=10),
            booking_closes_at=now + dt.timedelta(days=15),
        )
        for n in range(2)
    ]
    slots = TimeSlot.objects.bulk_create(
        TimeSlot(
            event=event,
            batch=batches[day % 2],
            date=start + dt.timedelta(days=day),
            start_time=dt.time(9 + hour),
            end_time=dt.time(10 + hour),
            capacity=500,
        )
        for day in range(5)
        for hour in range(8)
    )
    project = Project.objects.create(code="BENCH-RD", name="基准楼盘")
    phase = Phase.objects.create(project=project, code="1", name="一期")
    buildings = [
        Building.objects.create(phase=phase, code=f"B{b:02d}", name=f"{b}栋")
        for b in range(1, 11)
    ]
    per = units // len(buildings)
    unit_rows = Unit.objects.bulk_create(
        Unit(
            building=buildings[i // per],
            entrance="1",
            floor=i % per // 4 + 1,
            room=f"{i % per // 4 + 1}{i % 4 + 1:02d}",
            code=f"BENCH-RD-{i:05d}",
        )
        for i in range(units)
    )
    owners = Customer.objects.bulk_create(
        Customer(name=f"业主{i}", phone=f"139{i:08d}") for i in range(units)
    )
    UnitOwnership.objects.bulk_create(
        UnitOwnership(unit=unit, customer=owner)
        for unit, owner in zip(unit_rows, owners, strict=True)
    )
    scope = EventUnit.objects.bulk_create(
        EventUnit(
            event=event,
            unit=unit,
            batch=batches[0] if i < units // 2 else batches[1],
            eligibility="eligible" if i % 25 else "arrears",
        )
        for i, unit in enumerate(unit_rows)
    )
    notices = []
    for i, eu in enumerate(scope):
        if i % 10 == 9:
            continue  # not notified
        state = "delivered" if i % 10 < 8 else ("failed" if i % 2 else "sent")
        sent_at = now - dt.timedelta(days=i % 7, hours=i % 24)
        notices.append(
            Notice(
                event_unit=eu,
                recipient=owners[i],
                channel="sms",
                state=state,
                sent_at=sent_at,
                delivered_at=sent_at if state == "delivered" else None,
                created_by=user,
            )
        )
    Notice.objects.bulk_create(notices)
    Appointment.objects.bulk_create(
        Appointment(
            event=event,
            slot=slots[i % len(slots)],
            customer=owners[i],
            event_unit=eu,
            state="checked_in" if i % 20 == 0 else "booked",
            created_by=user,
        )
        for i, eu in enumerate(scope)
        if i % 2 == 0
    )
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "handover_eventunit",
            "handover_notice",
            "handover_appointment",
            "property_unit",
            "property_unitownership",
            "customers_customer",
        ):
            cursor.execute(f"ANALYZE {table}")  # nosec B608 # fixed table names
    return event, user


def best_of(label: str, read) -> float:
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        read()
        times.append((time.perf_counter() - began) * 1000)
    best = min(times)
    say(f"{label}: best {best:.1f} ms, median {sorted(times)[RUNS // 2]:.1f} ms")
    return best


def main(units: int) -> None:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from service.handover import readiness

    with transaction.atomic():
        began = time.perf_counter()
        event, caller = build(units)
        say(f"built {units} units in {time.perf_counter() - began:.1f} s")

        def call_page() -> list:
            rows = list(readiness.call_list(event)[:25])
            return readiness.call_rows(event, rows, user=caller)

        with CaptureQueriesContext(connection) as queries:
            rows, total = readiness.batch_numbers(event)
            readiness.day_numbers(event)
        say(f"numbers: {len(queries)} queries; total {total}")
        best_of(
            "batch_numbers (per batch and total)",
            lambda: readiness.batch_numbers(event),
        )
        best_of("day_numbers (per day)", lambda: readiness.day_numbers(event))
        best_of("event_readiness (both)", lambda: readiness.event_readiness(event))
        best_of(
            "call list: count",
            lambda: readiness.call_list(event).order_by()[:1001].count(),
        )
        best_of("call list: page 1 with owners and calls", call_page)
        with CaptureQueriesContext(connection) as queries:
            readiness.event_readiness(event)
            call_page()
        for query in queries.captured_queries:
            with connection.cursor() as cursor:
                sql = f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}"  # nosec B608 # captured
                cursor.execute(sql)
                say("\n--- " + query["sql"][:160])
                say("\n".join(row[0] for row in cursor.fetchall()))
        transaction.set_rollback(True)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.dev")
    django.setup()
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
