"""C6 (reliability §3.2): C1 + C3 + C5 at once for a few minutes, then count what the
database had to break and what reached a user.

* C1, mixed: 16 threads book, cancel and reschedule in one 入伙 event's four
  capacity-5 slots through the services; a salesperson does the same over HTTP
  (gunicorn) in a second event.
* C3: 8 threads edit and reassign 3 tickets with their versions; a conflict is
  answered by reloading and trying again.
* C5: follow-ups fall due every second while two beats sweep and the worker delivers.

PostgreSQL runs with `log_lock_waits = on` and `deadlock_timeout = 200ms` (the harness
sets them), so the server log counts deadlocks and long lock waits. Deadlock victims
and serialization failures are retried by crm.core.db.retry_transient, which logs each
retry; the run counts them in its own process and in the worker's and gunicorn's logs.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.chaos.harness import Stack, Ticker, log
from bench.chaos.web import HttpLog, WebUser

BOOKING_THREADS = 16
TICKET_THREADS = 8
TICKETS = 3
SLOTS = 4
CAPACITY = 5


class LogTail:
    """Lines appended to a log file after this object was made."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.offset = path.stat().st_size if path and path.exists() else 0

    def lines(self) -> list[str]:
        if not self.path or not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode(errors="replace").splitlines()


def _event(by: Any, name: str) -> tuple[Any, list[Any]]:
    from django.utils import timezone

    from service.handover.models import HandoverEvent, TimeSlot

    day = timezone.localdate() + timedelta(days=40)
    event = HandoverEvent.objects.create(
        name=name,
        project_name="C6 演练项目",
        venue="演练售楼处",
        start_date=day,
        end_date=day,
        status=HandoverEvent.Status.PUBLISHED,
        created_by=by,
    )
    slots = [
        TimeSlot.objects.create(
            event=event,
            date=day,
            start_time=datetime.strptime(f"{9 + i}:00", "%H:%M").time(),
            end_time=datetime.strptime(f"{9 + i}:30", "%H:%M").time(),
            capacity=CAPACITY,
        )
        for i in range(SLOTS)
    ]
    return event, slots


def _service_agents(password_hash: str) -> list[Any]:
    from django.contrib.auth.models import Group

    from crm.accounts.models import User

    group = Group.objects.get(name="service")
    agents = []
    for i in range(2):
        agent = User.objects.create(
            username=f"chaos_service{i}",
            email=f"chaos_service{i}@example.com",
            display_name=f"演练客服{i}",
            password=password_hash,
        )
        agent.groups.add(group)
        agents.append(User.objects.get(pk=agent.pk))
    return agents


class Tally:
    """What the threads saw, by outcome; `surfaced` is every answer that is not a
    success or a clean refusal a user would understand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.surfaced: Counter[str] = Counter()

    def add(self, outcome: str) -> None:
        with self.lock:
            self.counts[outcome] += 1

    def error(self, error: BaseException) -> None:
        with self.lock:
            self.surfaced[f"{type(error).__name__}: {error}"[:200]] += 1


def _booking_thread(
    index: int,
    customers: list[Any],
    slots: list[Any],
    by: Any,
    until: float,
    tally: Tally,
) -> None:
    from django.db import connection

    from service.handover import services

    mine: dict[int, Any] = {}  # customer id -> appointment this thread booked
    rng = random.Random(index)  # noqa: S311 - a load pattern, not a secret
    try:
        while time.time() < until:
            free = [c for c in customers if c.pk not in mine]
            roll = rng.random()
            try:
                if free and (roll < 0.5 or not mine):
                    customer = rng.choice(free)
                    mine[customer.pk] = services.appointment_book(
                        slot=rng.choice(slots), customer=customer, by=by
                    )
                    tally.add("booked")
                elif roll < 0.8:
                    pk = rng.choice(list(mine))
                    appointment = mine[pk]
                    others = [s for s in slots if s.pk != appointment.slot_id]
                    mine[pk] = services.appointment_reschedule(
                        appointment, new_slot=rng.choice(others), by=by
                    )
                    tally.add("rescheduled")
                else:
                    pk = rng.choice(list(mine))
                    services.appointment_cancel(mine.pop(pk), by=by)
                    tally.add("cancelled")
            except services.BookingError as refusal:
                tally.add(f"refused: {type(refusal).__name__}")
            except Exception as error:  # noqa: BLE001 - every other answer is a finding
                tally.error(error)
                connection.close()
    finally:
        connection.close()


def _ticket_thread(
    index: int, tickets: list[Any], agents: list[Any], until: float, tally: Tally
) -> None:
    from django.db import connection

    from service import services
    from service.models import Ticket

    rng = random.Random(1000 + index)  # noqa: S311 - a load pattern, not a secret
    n = 0
    try:
        while time.time() < until:
            n += 1
            ticket = Ticket.objects.get(pk=rng.choice(tickets).pk)
            agent = agents[n % len(agents)]
            try:
                if rng.random() < 0.7:
                    services.ticket_update(
                        by=agent,
                        ticket=ticket,
                        version=ticket.version,
                        data={"subject": f"C6 并发编辑 {index}-{n}"},
                    )
                else:
                    services.ticket_assign(
                        by=agent,
                        ticket=ticket,
                        assignee=rng.choice(agents),
                        version=ticket.version,
                    )
                tally.add(f"saved {ticket.pk}")
            except services.EditConflict:
                tally.add("conflict (reloaded)")
            except Exception as error:  # noqa: BLE001 - every other answer is a finding
                tally.error(error)
                connection.close()
    finally:
        connection.close()


class HttpBooker(Ticker):
    """A salesperson booking and cancelling her customers over HTTP, every 0.3 s."""

    def __init__(
        self, user: WebUser, event: Any, slots: list[Any], customers: list[Any]
    ) -> None:
        super().__init__("http-booker", 0.3, self.step)
        self.user = user
        self.event = event
        self.slots = slots
        self.customers = customers
        self.count = 0

    def step(self) -> None:
        from service.handover.models import Appointment

        self.count += 1
        customer = self.customers[self.count % len(self.customers)]
        active = (
            Appointment.objects.filter(
                event=self.event,
                customer=customer,
                state__in=Appointment.ACTIVE_STATES,
            )
            .values_list("pk", "version")
            .first()
        )
        if active:
            self.user.post_form(
                f"/handover/appointments/{active[0]}/cancel/", {"version": active[1]}
            )
        else:
            self.user.post_form(
                f"/handover/events/{self.event.pk}/book/",
                {
                    "customer": customer.pk,
                    "slot": random.choice(self.slots).pk,  # noqa: S311
                    "unit": "",
                    "party_size": 1,
                    "channel": "staff",
                },
            )


def scenario_c6(
    stack: Stack,
    seeded: dict[str, Any],
    http_log: HttpLog,
    minutes: float,
    password: str,
    password_hash: str,
) -> dict[str, Any]:
    from bench.chaos import run as chaos
    from crm.core import db as core_db
    from service import services as service_services
    from service.handover.models import Appointment, TimeSlot
    from service.models import Ticket

    sup = stack.supervisor
    assert sup is not None
    booker = seeded["owners"][0]
    customers = seeded["customers"]
    event, slots = _event(booker, "C6 线程入伙")
    http_event, http_slots = _event(booker, "C6 网页入伙")
    agents = _service_agents(password_hash)
    tickets = [
        service_services.ticket_create(
            by=agents[0],
            customer=customers[i],
            ticket_type="repair",
            channel="hotline",
            subject=f"C6 工单 {i}",
            description="并发编辑演练",
        )
        for i in range(TICKETS)
    ]
    versions_before = {t.pk: Ticket.objects.get(pk=t.pk).version for t in tickets}

    http_user_name = "chaos_sales3"
    http_customers = [c for c in customers if c.owner.username == http_user_name]
    user = WebUser(stack.base_url, http_log)
    user.login(http_user_name, password)
    user.form_token(
        f"/handover/events/{http_event.pk}/book/?customer={http_customers[0].pk}"
    )
    http_booker = HttpBooker(user, http_event, http_slots, http_customers)
    creator = chaos.ServiceCreator(seeded, per_tick=2, label="C6")

    pg_tail = LogTail(stack.backing.pg_log)
    app_tails = {path.name: LogTail(path) for path in stack.folder.glob("*.log")}
    retried_before = core_db.retry_counts["retried"]
    gave_up_before = core_db.retry_counts["gave_up"]

    began = time.time()
    until = began + minutes * 60
    booking_tally, ticket_tally = Tally(), Tally()
    threads = [
        threading.Thread(
            target=_booking_thread,
            args=(
                i,
                customers[i::BOOKING_THREADS],
                slots,
                booker,
                until,
                booking_tally,
            ),
            daemon=True,
        )
        for i in range(BOOKING_THREADS)
    ] + [
        threading.Thread(
            target=_ticket_thread,
            args=(i, tickets, agents, until, ticket_tally),
            daemon=True,
        )
        for i in range(TICKET_THREADS)
    ]
    stack.add_second_beat()  # C5: two dispatchers sweep the same rows
    log(
        f"C6: {minutes:g} min of {BOOKING_THREADS} booking threads, {TICKET_THREADS} "
        "ticket editors, HTTP bookings, follow-ups and two beats"
    )
    for ticker in (http_booker, creator):
        ticker.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=minutes * 60 + 120)
    for ticker in (http_booker, creator):
        ticker.stop()
    sup.remove("beat2")
    ended = time.time()

    pg_lines = pg_tail.lines()
    app_lines = [line for tail in app_tails.values() for line in tail.lines()]
    # Files the run started after the tails were taken (beat2's log) count from zero.
    for path in stack.folder.glob("*.log"):
        if path.name not in app_tails:
            app_lines += path.read_text(errors="replace").splitlines()
    http = [a for a in http_log.snapshot() if began <= a.at <= ended]
    saved = Counter(
        {
            int(outcome.split()[1]): times
            for outcome, times in ticket_tally.counts.items()
            if outcome.startswith("saved ")
        }
    )
    version_mismatches = [
        {
            "ticket": pk,
            "before": versions_before[pk],
            "saves": saved[pk],
            "after": Ticket.objects.get(pk=pk).version,
        }
        for pk in versions_before
        if Ticket.objects.get(pk=pk).version != versions_before[pk] + saved[pk]
    ]
    seats = sum(
        TimeSlot.objects.filter(event=event).values_list("booked_count", flat=True)
    )
    active = Appointment.objects.filter(
        event=event, state__in=Appointment.ACTIVE_STATES
    ).count()
    counts = booking_tally.counts
    return {
        "minutes": minutes,
        "seconds": round(ended - began, 1),
        "booking_outcomes": dict(counts),
        "booking_surfaced": dict(booking_tally.surfaced),
        "seats_booked": seats,
        "active_appointments": active,
        "books_minus_cancels": counts["booked"] - counts["cancelled"],
        "ticket_outcomes": dict(ticket_tally.counts),
        "ticket_surfaced": dict(ticket_tally.surfaced),
        "ticket_saves": sum(saved.values()),
        "ticket_version_mismatches": version_mismatches,
        "http_requests": len(http),
        "http_5xx": sum(1 for a in http if a.status >= 500),
        "http_unanswered": sum(1 for a in http if a.status == 0),
        "http_status": dict(Counter(str(a.status) for a in http)),
        "http_bookings_posted": http_booker.count,
        "followups_created": creator.count,
        "followup_create_failures": creator.failed,
        "pg_log_checked": stack.backing.pg_log is not None,
        "pg_deadlocks": sum("deadlock detected" in line for line in pg_lines),
        "pg_lock_waits": sum("still waiting for" in line for line in pg_lines),
        "pg_serialization_failures": sum(
            "could not serialize access" in line for line in pg_lines
        ),
        "retries_in_driver": core_db.retry_counts["retried"] - retried_before,
        "retries_in_app_logs": sum("kehu.db retrying" in line for line in app_lines),
        "gave_up": core_db.retry_counts["gave_up"]
        - gave_up_before
        + sum("kehu.db gave up" in line for line in app_lines),
    }
