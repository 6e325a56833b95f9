"""The 入伙 pages: managing events and slots, booking, cancelling, rescheduling and
checking in, through the Django test client and the real database."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from customers.models import ContactLog
from service.handover import services
from service.handover.models import Appointment, HandoverEvent
from tests.factories import CustomerFactory
from tests.handover.builders import slots_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(new_event):
    return new_event(slots_per_day=2, capacity=2)


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(name="林业主", owner=sales_rep)


def book_url(event, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("handover:appointment_book", args=[event.pk]) + (
        f"?{query}" if query else ""
    )


def post_booking(client, event, customer, slot_, **extra):
    data = {
        "customer": customer.pk,
        "slot": slot_.pk,
        "unit": "3栋2单元1502",
        "party_size": 2,
        "channel": "phone",
        **extra,
    }
    return client.post(reverse("handover:appointment_book", args=[event.pk]), data)


# --- booking ----------------------------------------------------------------------------


def test_sales_books_their_customer_and_sees_them_in_the_slot(
    client, sales_rep, event, customer
):
    slot = slots_of(event)[0]
    client.force_login(sales_rep)

    picker = client.get(book_url(event, q="林业主", slot=slot.pk))
    assertContains(picker, "林业主")
    form = client.get(book_url(event, customer=customer.pk, slot=slot.pk))
    assertContains(form, "为 林业主 预约")

    response = post_booking(client, event, customer, slot)
    assert response.status_code == 302
    assert response["Location"] == reverse("handover:slot_detail", args=[slot.pk])
    appointment = Appointment.objects.get()
    assert (appointment.customer, appointment.slot) == (customer, slot)
    assert (appointment.unit, appointment.party_size) == ("3栋2单元1502", 2)
    assert appointment.created_by == sales_rep
    slot.refresh_from_db()
    assert slot.booked_count == 1

    page = client.get(response["Location"])
    assertContains(page, "林业主")
    assertContains(page, "3栋2单元1502")
    assertContains(page, "1 / 2")
    # The reminder for the day before is queued with the booking.
    action = ScheduledAction.objects.get(
        idempotency_key=services.reminder_key(appointment.pk, slot.pk)
    )
    assert timezone.localtime(action.due_at).date() == slot.date - dt.timedelta(days=1)


def test_customer_search_offers_only_customers_the_user_may_see(
    client, sales_rep, outsider, event
):
    CustomerFactory(name="林甲组", owner=sales_rep)
    CustomerFactory(name="林乙组", owner=outsider)
    client.force_login(sales_rep)
    response = client.get(book_url(event, q="林"))
    assertContains(response, "林甲组")
    assertNotContains(response, "林乙组")


def test_booking_another_teams_customer_is_404_and_books_nothing(
    client, outsider, event, customer
):
    client.force_login(outsider)
    assert client.get(book_url(event, customer=customer.pk)).status_code == 404
    response = post_booking(client, event, customer, slots_of(event)[0])
    assert response.status_code == 404
    assert not Appointment.objects.exists()


def test_full_slot_shows_full_and_refuses_a_booking(client, sales_rep, new_event):
    event = new_event(slots_per_day=2, capacity=1)
    full, other = slots_of(event)
    first = CustomerFactory(owner=sales_rep)
    services.appointment_book(slot=full, customer=first, by=sales_rep)
    client.force_login(sales_rep)

    page = client.get(event.get_absolute_url())
    assertContains(page, "已满")

    second = CustomerFactory(name="晚到业主", owner=sales_rep)
    response = post_booking(client, event, second, full)
    assert response.status_code == 400
    assertContains(response, "该时段已满，请选择其他时段。", status_code=400)
    assert not Appointment.objects.filter(customer=second).exists()
    full.refresh_from_db()
    assert full.booked_count == 1


def test_booking_a_customer_twice_in_one_event_is_a_form_error(
    client, sales_rep, event, customer
):
    first, second = slots_of(event)
    services.appointment_book(slot=first, customer=customer, by=sales_rep)
    client.force_login(sales_rep)
    response = post_booking(client, event, customer, second)
    assertContains(response, "该客户在本次入伙活动中已有预约", status_code=400)
    assert Appointment.objects.filter(customer=customer).count() == 1
    second.refresh_from_db()
    assert second.booked_count == 0


def test_a_cancelled_customer_may_book_again(sales_rep, event, customer):
    first, second = slots_of(event)
    old = services.appointment_book(slot=first, customer=customer, by=sales_rep)
    services.appointment_cancel(old, by=sales_rep)
    again = services.appointment_book(slot=second, customer=customer, by=sales_rep)
    assert again.state == Appointment.State.BOOKED


@pytest.mark.parametrize(
    "bad",
    [
        {"party_size": "0"},
        {"party_size": "abc"},
        {"slot": "999999"},
        {"unit": "x" * 51},
    ],
)
def test_bad_booking_input_rerenders_and_writes_nothing(
    client, sales_rep, event, customer, bad
):
    client.force_login(sales_rep)
    response = post_booking(client, event, customer, slots_of(event)[0], **bad)
    assert response.status_code == 400
    assert not Appointment.objects.exists()


def test_draft_and_closed_events_refuse_bookings(
    client, sales_rep, admin_user, new_event, customer
):
    draft = new_event(publish=False)
    with pytest.raises(services.NotBookable):
        services.appointment_book(
            slot=slots_of(draft)[0], customer=customer, by=sales_rep
        )
    closed = new_event()
    services.event_close(by=admin_user, event=closed)
    client.force_login(sales_rep)
    response = post_booking(client, closed, customer, slots_of(closed)[0])
    assertContains(response, "不能预约", status_code=400)
    assert not Appointment.objects.exists()


def test_a_slot_that_has_begun_cannot_be_booked(sales_rep, event, customer):
    slot = slots_of(event)[0]
    with time_machine.travel(slot.starts_at + dt.timedelta(minutes=1)):
        with pytest.raises(services.NotBookable):
            services.appointment_book(slot=slot, customer=customer, by=sales_rep)
    assert not Appointment.objects.exists()


# --- cancel, reschedule, check in --------------------------------------------------------


@pytest.fixture
def booked(sales_rep, event, customer):
    return services.appointment_book(
        slot=slots_of(event)[0], customer=customer, by=sales_rep
    )


def test_cancel_frees_the_seat_and_the_reminder(client, sales_rep, booked):
    client.force_login(sales_rep)
    url = reverse("handover:appointment_cancel", args=[booked.pk])
    response = client.post(url, {"version": booked.version}, follow=True)
    assertContains(response, "已取消 林业主 的预约。")
    booked.refresh_from_db()
    assert booked.state == Appointment.State.CANCELLED
    assert booked.slot.booked_count == 0
    action = ScheduledAction.objects.get(
        idempotency_key=services.reminder_key(booked.pk, booked.slot_id)
    )
    assert action.state == ScheduledAction.State.CANCELLED


def on_slot_day(slot, hour: int = 8):
    """Travel to the slot's day (check-in is only open then), `hour` o'clock local."""
    return time_machine.travel(
        dt.datetime.combine(
            slot.date, dt.time(hour), tzinfo=timezone.get_current_timezone()
        )
    )


def test_cancel_from_a_stale_page_changes_nothing(client, sales_rep, booked):
    stale_version = booked.version
    with on_slot_day(booked.slot):
        services.appointment_check_in(booked, by=sales_rep)
    client.force_login(sales_rep)
    url = reverse("handover:appointment_cancel", args=[booked.pk])
    response = client.post(url, {"version": stale_version}, follow=True)
    assertContains(response, "预约已被他人修改，请刷新页面后再操作。")
    booked.refresh_from_db()
    assert booked.state == Appointment.State.CHECKED_IN
    assert booked.slot.booked_count == 1


def test_reschedule_moves_the_seat(client, sales_rep, event, booked):
    old, new = slots_of(event)
    client.force_login(sales_rep)
    url = reverse("handover:appointment_reschedule", args=[booked.pk])
    assertContains(client.get(url), "为 林业主 改约")
    response = client.post(url, {"slot": new.pk, "version": booked.version})
    assert response.status_code == 302
    booked.refresh_from_db()
    old.refresh_from_db()
    new.refresh_from_db()
    assert booked.slot == new
    assert (old.booked_count, new.booked_count) == (0, 1)
    assert (
        ScheduledAction.objects.get(
            idempotency_key=services.reminder_key(booked.pk, old.pk)
        ).state
        == ScheduledAction.State.CANCELLED
    )
    assert ScheduledAction.objects.filter(
        idempotency_key=services.reminder_key(booked.pk, new.pk),
        state=ScheduledAction.State.PENDING,
    ).exists()


def test_reschedule_into_a_full_slot_keeps_the_old_seat(
    client, sales_rep, event, booked
):
    old, full = slots_of(event)
    for _ in range(full.capacity):
        services.appointment_book(
            slot=full, customer=CustomerFactory(owner=sales_rep), by=sales_rep
        )
    client.force_login(sales_rep)
    url = reverse("handover:appointment_reschedule", args=[booked.pk])
    response = client.post(url, {"slot": full.pk, "version": booked.version})
    assertContains(response, "该时段已满", status_code=400)
    booked.refresh_from_db()
    assert booked.slot == old
    old.refresh_from_db()
    full.refresh_from_db()
    assert (old.booked_count, full.booked_count) == (1, full.capacity)


def test_check_in_once(client, sales_rep, booked):
    client.force_login(sales_rep)
    url = reverse("handover:appointment_check_in", args=[booked.pk])
    with on_slot_day(booked.slot):
        assertContains(client.post(url, follow=True), "林业主 已签到。")
        booked.refresh_from_db()
        assert booked.state == Appointment.State.CHECKED_IN
        assert booked.checked_in_at is not None
        assertContains(client.post(url, follow=True), "当前为“已签到”，不能签到")
    # Checked in still holds the seat.
    assert booked.slot.booked_count == 1


def test_another_team_cannot_touch_the_appointment(client, outsider, booked):
    client.force_login(outsider)
    for name in ("appointment_cancel", "appointment_check_in"):
        url = reverse(f"handover:{name}", args=[booked.pk])
        assert client.post(url).status_code == 404
    url = reverse("handover:appointment_reschedule", args=[booked.pk])
    assert client.get(url).status_code == 404
    booked.refresh_from_db()
    assert booked.state == Appointment.State.BOOKED


def test_slot_page_shows_only_visible_customers_and_counts_the_rest(
    client, outsider, booked
):
    client.force_login(outsider)
    response = client.get(reverse("handover:slot_detail", args=[booked.slot_id]))
    assertNotContains(response, "林业主")
    assertContains(response, "另有 1 位其他团队的客户已预约此时段。")


def test_slot_page_queries_do_not_grow_with_appointments(client, sales_rep, new_event):
    event = new_event(slots_per_day=1, capacity=10)
    slot = slots_of(event)[0]
    client.force_login(sales_rep)
    url = reverse("handover:slot_detail", args=[slot.pk])

    def queries_with(n: int) -> int:
        while slot.appointments.count() < n:
            services.appointment_book(
                slot=slot, customer=CustomerFactory(owner=sales_rep), by=sales_rep
            )
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    assert queries_with(1) == queries_with(6)


# --- the day-before reminder -------------------------------------------------------------


def _deliver_reminders(at: dt.datetime) -> list[int]:
    ids = scheduler.actions_sweep(now=at)
    for action_id in ids:
        scheduler.action_deliver(action_id=action_id, now=at)
    return ids


def test_reminder_is_recorded_on_the_customer_timeline_once(booked):
    slot = booked.slot
    due = services._reminder_due(slot) + dt.timedelta(minutes=1)
    assert _deliver_reminders(due)
    log = ContactLog.objects.get(customer=booked.customer)
    assert log.channel == ContactLog.Channel.SMS
    assert "入伙预约提醒" in log.summary
    assert slot.start_time.strftime("%H:%M") in log.summary
    booked.refresh_from_db()
    assert booked.reminded_at is not None
    # Running the handler again (a redelivery) adds nothing.
    action = ScheduledAction.objects.get(
        idempotency_key=services.reminder_key(booked.pk, slot.pk)
    )
    services.appointment_remind(action)
    assert ContactLog.objects.filter(customer=booked.customer).count() == 1


def test_cancelled_appointment_sends_no_reminder(sales_rep, booked):
    services.appointment_cancel(booked, by=sales_rep)
    _deliver_reminders(services._reminder_due(booked.slot) + dt.timedelta(minutes=1))
    assert not ContactLog.objects.exists()


def test_reminder_kind_is_at_most_once():
    from crm.scheduler import registry

    assert services.APPOINTMENT_REMINDER in registry.at_most_once_kinds()


# --- managing events and slots -----------------------------------------------------------


def test_manager_creates_fills_and_publishes_an_event(client, manager):
    client.force_login(manager)
    start = timezone.localdate() + dt.timedelta(days=10)
    response = client.post(
        reverse("handover:event_create"),
        {
            "name": "滨江一号首批交付",
            "project_name": "滨江一号",
            "venue": "售楼处二楼",
            "start_date": start.isoformat(),
            "end_date": (start + dt.timedelta(days=1)).isoformat(),
        },
    )
    event = HandoverEvent.objects.get()
    assert response["Location"] == event.get_absolute_url()
    assert event.status == HandoverEvent.Status.DRAFT

    publish = reverse("handover:event_publish", args=[event.pk])
    assertContains(client.post(publish, follow=True), "请先添加时段，再发布活动。")

    slots = reverse("handover:slots_add", args=[event.pk])
    data = {
        "date": start.isoformat(),
        "start_time": "09:00",
        "end_time": "12:00",
        "interval_minutes": "30",
        "capacity": "8",
    }
    assertContains(client.post(slots, data, follow=True), "已添加 6 个时段。")
    assertContains(client.post(slots, data, follow=True), "这些时段已经存在")
    assert event.slots.count() == 6

    assertContains(client.post(publish, follow=True), "活动已发布")
    listing = client.get(reverse("handover:event_list"))
    assertContains(listing, "滨江一号首批交付")
    assertContains(listing, "0 / 48")

    close = reverse("handover:event_close", args=[event.pk])
    assertContains(client.post(close, follow=True), "活动已关闭")
    event.refresh_from_db()
    assert event.status == HandoverEvent.Status.CLOSED


def test_event_with_end_before_start_is_refused(client, manager):
    client.force_login(manager)
    response = client.post(
        reverse("handover:event_create"),
        {
            "name": "错日期",
            "project_name": "项目",
            "venue": "会所",
            "start_date": "2030-05-02",
            "end_date": "2030-05-01",
        },
    )
    assertContains(response, "结束日期不能早于开始日期。", status_code=400)
    assert not HandoverEvent.objects.exists()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"end_time": "08:00"}, "结束时间必须晚于开始时间。"),
        ({"date": "2000-01-01"}, "日期必须在活动的起止日期之内。"),
        ({"capacity": "0"}, ""),
        ({"interval_minutes": "240", "end_time": "10:00"}, "时段长度超过了"),
    ],
)
def test_bad_slot_input_rerenders_and_adds_nothing(
    client, manager, new_event, bad, message
):
    event = new_event(publish=False, slots_per_day=1)
    before = event.slots.count()
    client.force_login(manager)
    data = {
        "date": event.start_date.isoformat(),
        "start_time": "09:00",
        "end_time": "17:00",
        "interval_minutes": "60",
        "capacity": "5",
        **bad,
    }
    response = client.post(reverse("handover:slots_add", args=[event.pk]), data)
    assertContains(response, message, status_code=400)
    assert event.slots.count() == before


def test_sales_cannot_see_drafts_or_manage_events(client, sales_rep, new_event):
    draft = new_event(publish=False, name="内部草稿活动")
    client.force_login(sales_rep)
    assertNotContains(client.get(reverse("handover:event_list")), "内部草稿活动")
    assert client.get(draft.get_absolute_url()).status_code == 404
    assert client.get(reverse("handover:event_create")).status_code == 403
    publish = reverse("handover:event_publish", args=[draft.pk])
    assert client.post(publish).status_code == 403
    with pytest.raises(PermissionDenied):
        services.event_publish(by=sales_rep, event=draft)
    draft.refresh_from_db()
    assert draft.status == HandoverEvent.Status.DRAFT


def test_nav_shows_handover_to_staff(client, service_agent):
    client.force_login(service_agent)
    response = client.get(reverse("home"))
    assertContains(response, reverse("handover:event_list"))


def test_seed_demo_handover_is_idempotent(admin_user, sales_rep):
    from service.handover import demo

    customers = [CustomerFactory(owner=sales_rep) for _ in range(8)]
    users = {"admin": admin_user, "sales1": sales_rep}
    first = demo.seed_handover_demo(users, customers)
    second = demo.seed_handover_demo(users, customers)
    assert first > 0 and second == 0
    event = HandoverEvent.objects.get()
    assert event.status == HandoverEvent.Status.PUBLISHED
    for slot in event.slots.all():
        assert (
            slot.booked_count
            == slot.appointments.filter(state__in=Appointment.ACTIVE_STATES).count()
        )
