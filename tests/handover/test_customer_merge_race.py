"""A customer merge and a booking of the merged-away customer at the same moment: the
booking is either moved with the others or refused, never left behind on the merged
record (one household, one seat). Each side runs in its own thread and connection;
the test holds one transaction open until the other is seen waiting on its lock."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from customers import services as customer_services
from customers.models import Customer
from service.handover import services
from service.handover.models import Appointment
from tests.factories import CustomerFactory
from tests.handover.builders import slots_of

pytestmark = pytest.mark.django_db(transaction=True)


def _pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _wait_until_blocked(pid: int, timeout: float = 20) -> None:
    """Until backend `pid` waits on a row lock (it reached the contended statement)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
            )
            row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited on a lock")


class Holder(threading.Thread):
    """Runs `first` in a transaction, then keeps it open until `release` is set."""

    def __init__(self, first) -> None:  # noqa: ANN001
        super().__init__()
        self.first, self.release = first, threading.Event()
        self.started_work, self.pid = threading.Event(), 0
        self.result: object = None

    def run(self) -> None:
        try:
            self.pid = _pid()
            with transaction.atomic():
                self.result = self.first()
                self.started_work.set()
                self.release.wait(timeout=30)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            self.result = exc
            self.started_work.set()
        finally:
            connection.close()


class Worker(threading.Thread):
    def __init__(self, job) -> None:  # noqa: ANN001
        super().__init__()
        self.job, self.pid, self.result = job, 0, None
        self.has_pid = threading.Event()

    def run(self) -> None:
        try:
            self.pid = _pid()
            self.has_pid.set()
            self.result = self.job()
        except Exception as exc:  # noqa: BLE001
            self.result = exc
        finally:
            self.has_pid.set()
            connection.close()


@pytest.fixture
def setup(new_event, sales_rep, manager):
    event = new_event(slots_per_day=2, capacity=3)
    survivor = CustomerFactory(name="林业主", owner=sales_rep)
    duplicate = CustomerFactory(name="林业主（重复）", owner=sales_rep)
    return event, survivor, duplicate


def test_a_booking_in_flight_when_the_merge_starts_is_moved_along(
    setup, sales_rep, manager
):
    event, survivor, duplicate = setup
    slot = slots_of(event)[0]
    booking = Holder(
        lambda: services.appointment_book(slot=slot, customer=duplicate, by=sales_rep)
    )
    booking.start()
    assert booking.started_work.wait(timeout=30)
    assert isinstance(booking.result, Appointment), booking.result
    merge = Worker(
        lambda: customer_services.customer_merge(
            by=manager, survivor=survivor, duplicate=duplicate
        )
    )
    merge.start()
    merge.has_pid.wait(timeout=30)
    _wait_until_blocked(merge.pid)
    booking.release.set()
    booking.join(timeout=30)
    merge.join(timeout=30)
    assert isinstance(merge.result, Customer), merge.result
    appointment = Appointment.objects.get()
    assert (appointment.customer_id, appointment.state) == (survivor.pk, "booked")
    assert [s.booked_count for s in slots_of(event)] == [1, 0]


def test_a_booking_that_waits_for_the_merge_is_refused(setup, sales_rep, manager):
    event, survivor, duplicate = setup
    merge = Holder(
        lambda: customer_services.customer_merge(
            by=manager, survivor=survivor, duplicate=duplicate
        )
    )
    merge.start()
    assert merge.started_work.wait(timeout=30)
    assert isinstance(merge.result, Customer), merge.result
    slot = slots_of(event)[0]
    booking = Worker(
        lambda: services.appointment_book(slot=slot, customer=duplicate, by=sales_rep)
    )
    booking.start()
    booking.has_pid.wait(timeout=30)
    _wait_until_blocked(booking.pid)
    merge.release.set()
    merge.join(timeout=30)
    booking.join(timeout=30)
    assert isinstance(booking.result, services.NotBookable), booking.result
    assert not Appointment.objects.exists()
    assert [s.booked_count for s in slots_of(event)] == [0, 0]
