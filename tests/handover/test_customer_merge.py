"""A customer merge takes the duplicate's 入伙 appointments along: one household, one
seat per event. The handover app does it through the merge-hook registry
(customers.hooks), registered in its AppConfig; customers never imports handover."""

from __future__ import annotations

import pathlib

import pghistory.models
import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains

from crm.scheduler.models import ScheduledAction
from customers import hooks
from customers import services as customer_services
from customers.models import Customer
from service.handover import services
from service.handover.models import Appointment
from tests.factories import CustomerFactory
from tests.handover.builders import slots_of

pytestmark = pytest.mark.django_db

State = Appointment.State


@pytest.fixture
def event(new_event):
    return new_event(slots_per_day=2, capacity=3)


@pytest.fixture
def pair(sales_rep) -> tuple[Customer, Customer]:
    survivor = CustomerFactory(name="林业主", owner=sales_rep)
    duplicate = CustomerFactory(name="林业主（重复）", owner=sales_rep)
    return survivor, duplicate


def book(by, slot, customer, unit: str = "") -> Appointment:  # noqa: ANN001
    return services.appointment_book(slot=slot, customer=customer, by=by, unit=unit)


def merge(by, survivor: Customer, duplicate: Customer) -> None:  # noqa: ANN001
    customer_services.customer_merge(by=by, survivor=survivor, duplicate=duplicate)


def check_in(by, appointment: Appointment) -> None:  # noqa: ANN001
    day = timezone.localtime(appointment.slot.starts_at).replace(hour=8)
    with time_machine.travel(day, tick=False):
        services.appointment_check_in(appointment, by=by)


def booked_counts(event) -> list[int]:  # noqa: ANN001
    return [slot.booked_count for slot in slots_of(event)]


def test_the_duplicates_booking_moves_to_the_survivor(
    client, sales_rep, manager, event, pair
):
    survivor, duplicate = pair
    slot = slots_of(event)[0]
    appointment = book(sales_rep, slot, duplicate, unit="3栋1502")
    merge(manager, survivor, duplicate)
    appointment.refresh_from_db()
    assert (appointment.customer, appointment.state) == (survivor, State.BOOKED)
    assert booked_counts(event) == [1, 0]
    # The household holds its one seat: a second booking is refused.
    with pytest.raises(services.AlreadyBooked):
        book(sales_rep, slots_of(event)[1], survivor)
    client.force_login(sales_rep)
    page = client.get(reverse("handover:slot_detail", args=[slot.pk]))
    assertContains(page, "林业主")
    assert "林业主（重复）" not in page.content.decode()


def test_two_bookings_in_one_event_keep_the_survivors_and_free_the_others_seat(
    sales_rep, manager, event, pair
):
    survivor, duplicate = pair
    first, second = slots_of(event)
    kept = book(sales_rep, first, survivor)
    dropped = book(sales_rep, second, duplicate, unit="3栋1502")
    reminder = ScheduledAction.objects.get(
        idempotency_key=services.reminder_key(dropped.pk, second.pk)
    )
    merge(manager, survivor, duplicate)

    kept.refresh_from_db()
    dropped.refresh_from_db()
    assert (kept.customer, kept.state) == (survivor, State.BOOKED)
    # The unit typed on the dropped booking is carried over, not lost.
    assert kept.unit == "3栋1502"
    assert (dropped.customer, dropped.state) == (survivor, State.CANCELLED)
    assert dropped.cancelled_at is not None
    assert booked_counts(event) == [1, 0]
    reminder.refresh_from_db()
    assert reminder.state == ScheduledAction.State.CANCELLED
    # The audit keeps the cancelled booking and who merged.
    [cancelled] = [
        e
        for e in pghistory.models.Events.objects.tracks(dropped)
        if (e.pgh_diff or {}).get("state") == [State.BOOKED, State.CANCELLED]
    ]
    assert cancelled.pgh_context["user"] == manager.pk
    # The household can book again only by rescheduling the kept booking.
    with pytest.raises(services.AlreadyBooked):
        book(sales_rep, second, survivor)


def test_a_checked_in_booking_is_kept_over_a_booked_one(
    sales_rep, manager, new_event, pair
):
    event = new_event(days=2, slots_per_day=1, capacity=3)
    day_one, day_two = slots_of(event)
    survivor, duplicate = pair
    came = book(sales_rep, day_one, duplicate)
    later = book(sales_rep, day_two, survivor)
    check_in(sales_rep, came)
    merge(manager, survivor, duplicate)
    came.refresh_from_db()
    later.refresh_from_db()
    assert (came.customer, came.state) == (survivor, State.CHECKED_IN)
    assert (later.customer, later.state) == (survivor, State.CANCELLED)
    assert booked_counts(event) == [1, 0]


def test_two_check_ins_are_both_kept(sales_rep, manager, event, pair):
    survivor, duplicate = pair
    first, second = slots_of(event)
    mine = book(sales_rep, first, survivor)
    theirs = book(sales_rep, second, duplicate)
    check_in(sales_rep, mine)
    check_in(sales_rep, theirs)
    merge(manager, survivor, duplicate)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.customer, mine.state) == (survivor, State.CHECKED_IN)
    # Both came: the duplicate's check-in stays on the merged record, seats as used.
    assert (theirs.customer, theirs.state) == (duplicate, State.CHECKED_IN)
    assert booked_counts(event) == [1, 1]


def test_bookings_in_different_events_all_move(sales_rep, manager, new_event, pair):
    survivor, duplicate = pair
    one = new_event(name="一期交付")
    two = new_event(name="二期交付")
    book(sales_rep, slots_of(one)[0], survivor)
    theirs = book(sales_rep, slots_of(two)[0], duplicate)
    cancelled = book(sales_rep, slots_of(one)[1], duplicate)
    services.appointment_cancel(cancelled, by=sales_rep)
    merge(manager, survivor, duplicate)
    assert set(Appointment.objects.values_list("customer", "state")) == {
        (survivor.pk, State.BOOKED),
        (survivor.pk, State.CANCELLED),
    }
    assert Appointment.objects.get(pk=theirs.pk).state == State.BOOKED
    assert not Appointment.objects.filter(customer=duplicate).exists()


def test_the_merge_page_says_which_booking_is_kept_before_merging(
    client, sales_rep, manager, event, pair
):
    survivor, duplicate = pair
    first, second = slots_of(event)
    book(sales_rep, first, survivor)
    book(sales_rep, second, duplicate)
    client.force_login(manager)
    url = reverse("customers:customer_merge", args=[survivor.pk])
    page = client.get(url, {"other": duplicate.pk})
    note = (
        f"两位客户都预约了入伙活动“{event.name}”：保留“林业主”的预约（{first}，已预约），"
        f"取消“林业主（重复）”的预约（{second}）并释放名额"
    )
    assertContains(page, note)
    assert not Appointment.objects.filter(state=State.CANCELLED).exists()
    client.post(url, {"other": duplicate.pk})
    assert booked_counts(event) == [1, 0]


def test_the_merge_page_counts_the_bookings_that_move(
    client, sales_rep, manager, event, pair
):
    survivor, duplicate = pair
    book(sales_rep, slots_of(event)[0], duplicate)
    client.force_login(manager)
    page = client.get(
        reverse("customers:customer_merge", args=[survivor.pk]),
        {"other": duplicate.pk},
    )
    assertContains(page, "“林业主（重复）”的 1 个入伙预约将移到“林业主”。")


def test_a_merged_away_customer_cannot_be_booked(sales_rep, manager, event, pair):
    survivor, duplicate = pair
    merge(manager, survivor, duplicate)
    with pytest.raises(services.NotBookable):
        book(sales_rep, slots_of(event)[0], duplicate)
    assert not Appointment.objects.exists()
    assert booked_counts(event) == [0, 0]


def test_handover_plugs_in_through_the_registry_and_customers_does_not_import_it():
    assert services.appointments_follow_customer_merge in hooks.merge_hooks
    assert services.customer_merge_notes in hooks.merge_notes
    customers_dir = pathlib.Path(hooks.__file__).parent
    sources = [
        path.read_text(encoding="utf-8")
        for path in customers_dir.rglob("*.py")
        if "migrations" not in path.parts
    ]
    assert not [s for s in sources if "service.handover" in s or "from service" in s]
