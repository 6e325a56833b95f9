"""Check-in (签到) is for an active appointment of an open event, on the day of its slot
in the project's time zone (Asia/Shanghai); a refusal changes nothing. Also the
refusals of booking and rescheduling into a closed event or a slot that has begun."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.scheduler.models import ScheduledAction
from service.handover import services
from service.handover.models import Appointment
from tests.factories import CustomerFactory
from tests.handover.builders import make_event, slots_of

pytestmark = pytest.mark.django_db


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A local (project time zone) moment."""
    return dt.datetime.combine(
        day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone()
    )


@pytest.fixture
def event(new_event):
    # Two days of two 1-hour slots (09:00, 10:00), three days from today.
    return new_event(days=2, slots_per_day=2, capacity=2)


@pytest.fixture
def booked(event, sales_rep):
    customer = CustomerFactory(name="周业主", owner=sales_rep)
    return services.appointment_book(
        slot=slots_of(event)[0], customer=customer, by=sales_rep, unit="5栋802"
    )


def reminder(appointment: Appointment) -> ScheduledAction:
    return ScheduledAction.objects.get(
        idempotency_key=services.reminder_key(appointment.pk, appointment.slot_id)
    )


def assert_unchanged(appointment: Appointment) -> None:
    """Still booked, same version, no check-in time, reminder still due, seat kept."""
    version = appointment.version
    appointment.refresh_from_db()
    assert appointment.state == Appointment.State.BOOKED
    assert appointment.checked_in_at is None
    assert appointment.version == version
    assert reminder(appointment).state == ScheduledAction.State.PENDING
    assert appointment.slot.booked_count == 1


# --- the service -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute"),
    [(0, 5), (7, 30), (9, 30), (16, 0), (23, 55)],
    ids=["just-after-midnight", "early", "during-the-slot", "after-the-slot", "late"],
)
def test_any_time_on_the_slots_day_checks_in(booked, sales_rep, hour, minute):
    with time_machine.travel(at(booked.slot.date, hour, minute)):
        services.appointment_check_in(booked, by=sales_rep)
    booked.refresh_from_db()
    assert booked.state == Appointment.State.CHECKED_IN
    assert timezone.localtime(booked.checked_in_at).date() == booked.slot.date
    assert reminder(booked).state == ScheduledAction.State.CANCELLED
    assert booked.slot.booked_count == 1


def test_the_day_is_the_projects_not_utcs(booked, sales_rep):
    # Check-in opens at local midnight: 23:30 the evening before is refused, and 00:30
    # on the day (still the previous date in UTC) is accepted.
    with time_machine.travel(at(booked.slot.date - dt.timedelta(days=1), 23, 30)):
        with pytest.raises(services.CheckInRefused):
            services.appointment_check_in(booked, by=sales_rep)
    with time_machine.travel(at(booked.slot.date, 0, 30)):
        assert timezone.now().astimezone(dt.UTC).date() < booked.slot.date
        services.appointment_check_in(booked, by=sales_rep)
    booked.refresh_from_db()
    assert booked.state == Appointment.State.CHECKED_IN


def test_an_earlier_day_of_the_event_is_refused_and_changes_nothing(event, sales_rep):
    customer = CustomerFactory(name="钱业主", owner=sales_rep)
    day_two = slots_of(event)[2]
    appointment = services.appointment_book(
        slot=day_two, customer=customer, by=sales_rep
    )
    with time_machine.travel(at(event.start_date, 9, 30)):
        with pytest.raises(services.CheckInRefused) as refused:
            services.appointment_check_in(appointment, by=sales_rep)
    assert "只能在预约当天签到" in refused.value.message
    assert day_two.date.isoformat() in refused.value.message
    assert "改约" in refused.value.message
    assert_unchanged(appointment)


def test_a_day_before_the_event_is_refused(booked, sales_rep):
    with time_machine.travel(at(booked.slot.date - dt.timedelta(days=2), 10)):
        with pytest.raises(services.CheckInRefused, match="只能在预约当天签到"):
            services.appointment_check_in(booked, by=sales_rep)
    assert_unchanged(booked)


def test_after_the_slots_day_is_refused(booked, sales_rep):
    with time_machine.travel(at(booked.slot.date + dt.timedelta(days=1), 9)):
        with pytest.raises(services.CheckInRefused, match="已过预约日期"):
            services.appointment_check_in(booked, by=sales_rep)
    assert_unchanged(booked)


def test_a_closed_event_refuses_check_in(event, booked, admin_user, sales_rep):
    services.event_close(by=admin_user, event=event)
    with time_machine.travel(at(booked.slot.date, 9)):
        with pytest.raises(services.CheckInRefused, match="已关闭.*不能签到"):
            services.appointment_check_in(booked, by=sales_rep)
    assert_unchanged(booked)


def test_a_cancelled_appointment_is_not_checked_in(booked, sales_rep):
    services.appointment_cancel(booked, by=sales_rep)
    with time_machine.travel(at(booked.slot.date, 9)):
        with pytest.raises(services.Conflict, match="已取消"):
            services.appointment_check_in(booked, by=sales_rep)
    booked.refresh_from_db()
    assert (booked.state, booked.checked_in_at) == (Appointment.State.CANCELLED, None)


def test_the_wrong_day_owner_is_rescheduled_to_today_then_checked_in(event, sales_rep):
    """How the desk handles an owner who turns up a day early: a seat today first."""
    customer = CustomerFactory(name="孙业主", owner=sales_rep)
    day_one_late, day_two = slots_of(event)[1], slots_of(event)[2]
    appointment = services.appointment_book(
        slot=day_two, customer=customer, by=sales_rep
    )
    with time_machine.travel(at(event.start_date, 9, 15)):
        with pytest.raises(services.CheckInRefused):
            services.appointment_check_in(appointment, by=sales_rep)
        services.appointment_reschedule(
            appointment, new_slot=day_one_late, by=sales_rep
        )
        services.appointment_check_in(appointment, by=sales_rep)
    appointment.refresh_from_db()
    assert (appointment.slot, appointment.state) == (
        day_one_late,
        Appointment.State.CHECKED_IN,
    )


@pytest.mark.django_db(transaction=True)
def test_two_staff_checking_in_at_once_check_in_once(admin_user):
    event = make_event(admin_user, name="同时签到", slots_per_day=1, capacity=6)
    slot = slots_of(event)[0]
    appointments = [
        services.appointment_book(
            slot=slot, customer=CustomerFactory(name=f"并发{n}"), by=admin_user
        )
        for n in range(6)
    ]
    outcomes: list[tuple[int, str]] = []
    lock = threading.Lock()

    def desk(barrier: threading.Barrier, appointment: Appointment) -> None:
        try:
            barrier.wait(30)
            try:
                services.appointment_check_in(appointment, by=admin_user)
                result = "ok"
            except services.Conflict:
                result = "conflict"
            except Exception as exc:  # noqa: BLE001 - anything else is the defect
                result = repr(exc)
            with lock:
                outcomes.append((appointment.pk, result))
        finally:
            connections.close_all()

    with time_machine.travel(at(slot.date, 8)):
        for appointment in appointments:
            barrier = threading.Barrier(2)
            pair = [
                threading.Thread(target=desk, args=(barrier, appointment))
                for _ in range(2)
            ]
            for thread in pair:
                thread.start()
            for thread in pair:
                thread.join(60)

    for appointment in appointments:
        results = sorted(r for pk, r in outcomes if pk == appointment.pk)
        assert results == ["conflict", "ok"], results
        appointment.refresh_from_db()
        assert appointment.state == Appointment.State.CHECKED_IN
        assert appointment.version == 2
    slot.refresh_from_db()
    assert slot.booked_count == len(appointments)


# --- through the pages -------------------------------------------------------------------


def check_in_url(appointment: Appointment) -> str:
    return reverse("handover:appointment_check_in", args=[appointment.pk])


def slot_url(appointment: Appointment) -> str:
    return reverse("handover:slot_detail", args=[appointment.slot_id])


def test_slot_page_offers_check_in_only_on_the_day(client, sales_rep, booked):
    client.force_login(sales_rep)
    before = client.get(slot_url(booked))
    assertNotContains(before, check_in_url(booked))
    assertContains(before, "只能在预约当天")
    with time_machine.travel(at(booked.slot.date, 8)):
        client.force_login(sales_rep)
        on_the_day = client.get(slot_url(booked))
    assertContains(on_the_day, check_in_url(booked))
    assertNotContains(on_the_day, 'data-testid="check-in-hint"')


def test_check_in_on_another_day_shows_why_and_changes_nothing(
    client, sales_rep, booked
):
    client.force_login(sales_rep)
    response = client.post(check_in_url(booked), follow=True)
    assert response.redirect_chain[-1][0] == slot_url(booked)
    assertContains(response, "只能在预约当天签到")
    assertNotContains(response, "已签到。")
    assert_unchanged(booked)


def test_check_in_on_the_day_through_the_page(client, sales_rep, booked):
    with time_machine.travel(at(booked.slot.date, 7, 45)):
        client.force_login(sales_rep)
        response = client.post(check_in_url(booked), follow=True)
    assertContains(response, "周业主 已签到。")
    booked.refresh_from_db()
    assert booked.state == Appointment.State.CHECKED_IN


def test_check_in_on_a_closed_event_through_the_page_is_refused(
    client, sales_rep, admin_user, event, booked
):
    services.event_close(by=admin_user, event=event)
    with time_machine.travel(at(booked.slot.date, 9)):
        client.force_login(sales_rep)
        page = client.get(slot_url(booked))
        response = client.post(check_in_url(booked), follow=True)
    assertNotContains(page, check_in_url(booked))
    assertContains(response, "不能签到")
    assert_unchanged(booked)


def test_rescheduling_into_a_closed_event_is_refused(
    client, sales_rep, admin_user, event, booked
):
    services.event_close(by=admin_user, event=event)
    client.force_login(sales_rep)
    url = reverse("handover:appointment_reschedule", args=[booked.pk])
    other = slots_of(event)[1]
    response = client.post(url, {"slot": other.pk, "version": booked.version})
    assertContains(response, "已关闭", status_code=400)
    booked.refresh_from_db()
    assert booked.slot_id == slots_of(event)[0].pk
    other.refresh_from_db()
    assert other.booked_count == 0


def test_rescheduling_into_a_slot_that_has_begun_is_refused(
    client, sales_rep, event, booked
):
    first, second = slots_of(event)[:2]
    services.appointment_reschedule(booked, new_slot=second, by=sales_rep)
    booked.refresh_from_db()
    with time_machine.travel(at(first.date, 9, 30)):
        client.force_login(sales_rep)
        url = reverse("handover:appointment_reschedule", args=[booked.pk])
        response = client.post(url, {"slot": first.pk, "version": booked.version})
    assertContains(response, "该时段已开始或已过去", status_code=400)
    booked.refresh_from_db()
    first.refresh_from_db()
    assert (booked.slot_id, first.booked_count) == (second.pk, 0)


def test_booking_a_slot_that_has_begun_through_the_page_is_refused(
    client, sales_rep, event
):
    customer = CustomerFactory(name="吴业主", owner=sales_rep)
    first = slots_of(event)[0]
    with time_machine.travel(at(first.date, 9, 1)):
        client.force_login(sales_rep)
        response = client.post(
            reverse("handover:appointment_book", args=[event.pk]),
            {
                "customer": customer.pk,
                "slot": first.pk,
                "unit": "",
                "party_size": 1,
                "channel": "phone",
            },
        )
    assertContains(response, "该时段已开始或已过去", status_code=400)
    assert not Appointment.objects.filter(customer=customer).exists()
