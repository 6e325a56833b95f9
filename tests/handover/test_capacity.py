"""C1 (docs/reliability.md): a slot is never overbooked, under real concurrency.

Threads, each with its own PostgreSQL connection, are released together by a barrier
and book, cancel and reschedule through the real services. PR tier: 50 rounds of 50
bookings into a capacity-5 slot, and 8 threads x 100 mixed operations; the nightly
variants run 200 rounds and 16 threads x 1,000 operations.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
import time_machine
from django.db import OperationalError, connections
from django.db.models import Count, Q, Sum
from django.utils import timezone

from service.handover import services
from service.handover.models import Appointment, TimeSlot
from tests.factories import CustomerFactory
from tests.handover.builders import make_event, slots_of

CAPACITY = 5
CLEAN = {
    services.SlotFull: "full",
    services.AlreadyBooked: "already",
    services.Conflict: "conflict",
    services.NotBookable: "not_bookable",
    services.CheckInRefused: "check_in_refused",
}


def _outcome(call: Callable[[], object]) -> str:
    """'ok', the name of a clean refusal, or the repr of anything else (a defect)."""
    try:
        call()
    except services.BookingError as exc:
        return CLEAN.get(type(exc), repr(exc))
    except Exception as exc:  # noqa: BLE001 - every other exception is what is counted
        return repr(exc)
    return "ok"


def _connect() -> None:
    """Open this thread's connection before the first round, so that a server briefly
    out of connection slots (other test runs on a shared PostgreSQL) delays the start
    instead of showing up as a booking outcome."""
    for _attempt in range(60):
        try:
            connections["default"].ensure_connection()
            return
        except OperationalError:
            time.sleep(0.5)
    connections["default"].ensure_connection()


class Crew:
    """`size` long-lived threads with one database connection each; every round they
    are released together by a barrier, run their part, and meet again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.start = threading.Barrier(size + 1)
        self.done = threading.Barrier(size + 1)
        self.work: Callable[[int], object] | None = None
        self.results: list[object] = [None] * size
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True)
            for n in range(size)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, n: int) -> None:
        try:
            _connect()
            while True:
                self.start.wait(120)
                if self.work is None:
                    return
                try:
                    self.results[n] = self.work(n)
                except BaseException as exc:  # noqa: BLE001 - reported by the round
                    self.results[n] = repr(exc)
                self.done.wait(120)
        except threading.BrokenBarrierError:
            pass
        finally:
            connections.close_all()

    def round(self, work: Callable[[int], object]) -> list[object]:
        self.work = work
        self.start.wait(120)
        self.done.wait(120)
        return list(self.results)

    def stop(self) -> None:
        self.work = None
        try:
            self.start.wait(30)
        except threading.BrokenBarrierError:
            pass
        for thread in self.threads:
            thread.join(30)


def _booking_rounds(admin, rounds: int, bookers: int = 50) -> None:
    customers = [CustomerFactory(name=f"业主{n:02d}") for n in range(bookers)]
    crew = Crew(bookers)
    tallies = []
    try:
        for number in range(rounds):
            event = make_event(
                admin, name=f"第{number}轮", slots_per_day=1, capacity=CAPACITY
            )
            slot = slots_of(event)[0]
            outcomes = crew.round(
                lambda n, slot=slot: _outcome(
                    lambda: services.appointment_book(
                        slot=slot, customer=customers[n], by=admin
                    )
                )
            )
            slot.refresh_from_db()
            active = Appointment.objects.filter(slot=slot).active().count()
            tallies.append((number, Counter(outcomes), slot.booked_count, active))
    finally:
        crew.stop()

    expected = Counter({"ok": CAPACITY, "full": bookers - CAPACITY})
    wrong = [t for t in tallies if (t[1], t[2], t[3]) != (expected, CAPACITY, CAPACITY)]
    assert not wrong, wrong[:5]
    assert len(tallies) == rounds
    assert all(booked == active == CAPACITY for _, _, booked, active in tallies)


@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_bookings_fill_a_slot_of_five_exactly(admin_user):
    """50 rounds: exactly 5 succeed, 45 get a clean "full", never an overbooked slot."""
    _booking_rounds(admin_user, rounds=50)


@pytest.mark.nightly
@pytest.mark.django_db(transaction=True)
def test_two_hundred_rounds_of_fifty_simultaneous_bookings(admin_user):
    _booking_rounds(admin_user, rounds=200)


def _mixed_run(admin, threads: int, ops: int, seed: int = 7) -> None:
    event = make_event(admin, name="混合压测", slots_per_day=3, capacity=CAPACITY)
    slots = slots_of(event)
    # Check-in is only open on the slots' day: run on it, before the first slot begins.
    traveller = time_machine.travel(
        dt.datetime.combine(
            slots[0].date, dt.time(8, 0), tzinfo=timezone.get_current_timezone()
        )
    )
    traveller.start()
    # Fewer customers than seats x 2: AlreadyBooked and SlotFull both happen often.
    customers = [CustomerFactory(name=f"混合{n:02d}") for n in range(24)]
    crew = Crew(threads)

    def work(n: int) -> Counter:
        rng = random.Random(seed * 1000 + n)  # noqa: S311 - test load, not security
        tally: Counter = Counter()
        for _ in range(ops):
            roll = rng.random()
            if roll < 0.45:
                op = "book"
                result = _outcome(
                    lambda: services.appointment_book(
                        slot=rng.choice(slots),
                        customer=rng.choice(customers),
                        by=admin,
                    )
                )
            else:
                target = (
                    Appointment.objects.filter(event=event, state="booked")
                    .order_by("?")
                    .first()
                )
                if target is None:
                    continue
                # Half the calls carry the version the "page" showed, as a form does.
                version = target.version if rng.random() < 0.5 else None
                if roll < 0.75:
                    op = "cancel"
                    result = _outcome(
                        lambda target=target, version=version: (
                            services.appointment_cancel(
                                target, by=admin, version=version
                            )
                        )
                    )
                elif roll < 0.95:
                    op = "reschedule"
                    result = _outcome(
                        lambda target=target, version=version: (
                            services.appointment_reschedule(
                                target,
                                new_slot=rng.choice(slots),
                                by=admin,
                                version=version,
                            )
                        )
                    )
                else:
                    op = "check_in"
                    result = _outcome(
                        lambda target=target: services.appointment_check_in(
                            target, by=admin
                        )
                    )
            tally[(op, result)] += 1
        return tally

    try:
        tallies = crew.round(work)
    finally:
        crew.stop()
        traveller.stop()

    totals: Counter = Counter()
    for tally in tallies:
        assert isinstance(tally, Counter), tally
        totals.update(tally)
    unclean = {
        key: n for key, n in totals.items() if key[1] not in {"ok", *CLEAN.values()}
    }
    assert not unclean, unclean
    # Every kind of operation really happened, and the refusals were exercised.
    for key in [
        ("book", "ok"),
        ("book", "full"),
        ("book", "already"),
        ("cancel", "ok"),
        ("reschedule", "ok"),
        ("check_in", "ok"),
    ]:
        assert totals[key] > 0, (key, totals)

    per_slot = TimeSlot.objects.filter(event=event).annotate(
        active=Count(
            "appointments", filter=Q(appointments__state__in=["booked", "checked_in"])
        )
    )
    for slot in per_slot:
        assert slot.booked_count == slot.active <= slot.capacity, slot
    booked = per_slot.aggregate(total=Sum("booked_count"))["total"]
    active = Appointment.objects.filter(event=event).active().count()
    assert booked == active == totals[("book", "ok")] - totals[("cancel", "ok")]
    # One active appointment per customer per event, whatever the interleaving.
    per_customer = Counter(
        Appointment.objects.filter(event=event)
        .active()
        .values_list("customer", flat=True)
    )
    assert max(per_customer.values(), default=0) <= 1


@pytest.mark.django_db(transaction=True)
def test_mixed_book_cancel_reschedule_keeps_the_seat_count_exact(admin_user):
    _mixed_run(admin_user, threads=8, ops=100)


@pytest.mark.nightly
@pytest.mark.django_db(transaction=True)
def test_mixed_load_sixteen_threads_thousand_operations_each(admin_user):
    _mixed_run(admin_user, threads=16, ops=1000)
