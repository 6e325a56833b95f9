"""Booking a unit in an event's scope: who may book it, eligibility, batches and their
windows, the staff override, the walk-in hold and its release hour, the owners' cut-off,
one active booking per unit, and the capacity rule for owner bookings under threads."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from service.handover import services
from service.handover.models import Appointment, EventUnit, TimeSlot
from tests.factories import CustomerFactory
from tests.handover.builders import make_event, slots_of
from tests.handover.scope_builders import (
    add_owner,
    add_proxy,
    buildings_of,
    link_of,
    make_batch,
    make_project,
    make_unit,
    owned_unit_in_scope,
    put_in_scope,
)
from tests.handover.test_capacity import Crew, _outcome

pytestmark = pytest.mark.django_db
OWNER = Appointment.Channel.OWNER_LINK


@pytest.fixture
def building():
    return buildings_of(make_project())[0]


@pytest.fixture
def event(admin_user):
    return make_event(admin_user, slots_per_day=2, capacity=5)


def _owner_book(slot, event_unit, holder, **kwargs):
    return services.appointment_book(
        slot=slot,
        customer=holder,
        by=None,
        channel=OWNER,
        via_link=kwargs.pop("link", None) or link_of(event_unit, holder),
        **kwargs,
    )


def _local(date: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(date, time, tzinfo=timezone.get_current_timezone())


# --- who may book the unit ---------------------------------------------------------------


def test_staff_booking_names_the_unit_and_fills_its_label(admin_user, event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    slot = slots_of(event)[0]
    appointment = services.appointment_book(
        slot=slot, customer=owner, by=admin_user, event_unit=event_unit
    )
    assert appointment.event_unit == event_unit
    assert appointment.unit == event_unit.unit.label
    assert appointment.unit.startswith("1栋")
    slot.refresh_from_db()
    assert slot.booked_count == 1


def test_owner_books_through_the_link_without_a_user(event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    link = link_of(event_unit, owner)
    appointment = services.appointment_book(
        slot=slots_of(event)[0],
        customer=owner,
        by=None,
        channel=OWNER,
        via_link=link,
    )
    assert appointment.created_by is None
    assert appointment.booked_via == link
    assert appointment.channel == OWNER
    assert appointment.event_unit == event_unit


def test_co_owner_and_handover_proxy_may_book(event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    co_owner = add_owner(event_unit.unit, role="co_owner")
    proxy = add_proxy(
        event_unit.unit, owner, valid_until=timezone.localdate() + dt.timedelta(days=3)
    )
    first, second = slots_of(event)
    booked = _owner_book(first, event_unit, co_owner)
    assert booked.customer == co_owner
    services.appointment_cancel(booked, by=None, via_link=booked.booked_via)
    assert _owner_book(second, event_unit, proxy).customer == proxy


@pytest.mark.parametrize(
    "case", ["stranger", "expired_proxy", "other_scope", "revoked"]
)
def test_someone_not_owner_or_valid_proxy_is_refused(admin_user, event, building, case):
    event_unit, owner = owned_unit_in_scope(event, building)
    if case == "stranger":
        other = CustomerFactory()
    elif case == "expired_proxy":
        other = add_proxy(
            event_unit.unit,
            owner,
            valid_until=timezone.localdate() - dt.timedelta(days=1),
        )
    elif case == "other_scope":
        other = add_proxy(event_unit.unit, owner, scope="title")
    else:
        other = add_proxy(event_unit.unit, owner)
        event_unit.unit.proxies.update(revoked_at=timezone.now())
    with pytest.raises(services.NotUnitParty) as refused:
        services.appointment_book(
            slot=slots_of(event)[0],
            customer=other,
            by=admin_user,
            event_unit=event_unit,
        )
    assert "不是房间" in refused.value.message
    assert not Appointment.objects.exists()


def test_former_owner_is_refused(admin_user, event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    event_unit.unit.ownerships.update(is_active=False)
    with pytest.raises(services.NotUnitParty):
        services.appointment_book(
            slot=slots_of(event)[0],
            customer=owner,
            by=admin_user,
            event_unit=event_unit,
        )


def test_owner_needs_a_live_link_for_their_own_unit(event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    other_unit, other_owner = owned_unit_in_scope(event, building)
    slot = slots_of(event)[0]
    with pytest.raises(PermissionDenied):  # no link at all
        services.appointment_book(slot=slot, customer=owner, by=None, channel=OWNER)
    with pytest.raises(PermissionDenied):  # someone else's link
        services.appointment_book(
            slot=slot,
            customer=owner,
            by=None,
            channel=OWNER,
            via_link=link_of(other_unit, other_owner),
        )
    expired = link_of(event_unit, owner, days=-1)
    with pytest.raises(PermissionDenied):
        services.appointment_book(
            slot=slot, customer=owner, by=None, channel=OWNER, via_link=expired
        )
    assert not Appointment.objects.exists()


def test_unit_of_another_event_is_refused(admin_user, event, building):
    other_event = make_event(admin_user, name="另一活动")
    event_unit, owner = owned_unit_in_scope(other_event, building)
    with pytest.raises(services.NotBookable):
        services.appointment_book(
            slot=slots_of(event)[0],
            customer=owner,
            by=admin_user,
            event_unit=event_unit,
        )


def test_event_with_scope_needs_a_unit_for_staff_bookings(admin_user, event, building):
    owned_unit_in_scope(event, building)
    with pytest.raises(services.UnitRequired) as refused:
        services.appointment_book(
            slot=slots_of(event)[0], customer=CustomerFactory(), by=admin_user
        )
    assert "请选择要预约的房间" in refused.value.message


def test_event_without_scope_books_by_customer_as_before(admin_user, event):
    appointment = services.appointment_book(
        slot=slots_of(event)[0], customer=CustomerFactory(), by=admin_user, unit="3栋"
    )
    assert appointment.event_unit is None
    assert appointment.unit == "3栋"


# --- one active booking per unit ---------------------------------------------------------


def test_one_active_booking_per_unit_whoever_books(admin_user, event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    co_owner = add_owner(event_unit.unit, role="co_owner")
    first, second = slots_of(event)
    _owner_book(first, event_unit, owner)
    with pytest.raises(services.AlreadyBooked) as refused:
        services.appointment_book(
            slot=second, customer=co_owner, by=admin_user, event_unit=event_unit
        )
    assert event_unit.unit.label in refused.value.message
    second.refresh_from_db()
    assert second.booked_count == 0


def test_investor_with_two_units_books_both(admin_user, event, building):
    first_unit, investor = owned_unit_in_scope(event, building)
    second_unit = put_in_scope(event, make_unit(building, room="0901"))
    add_owner(second_unit.unit, investor)
    slot = slots_of(event)[0]
    for event_unit in (first_unit, second_unit):
        services.appointment_book(
            slot=slot, customer=investor, by=admin_user, event_unit=event_unit
        )
    assert Appointment.objects.filter(customer=investor).active().count() == 2


# --- eligibility and the override --------------------------------------------------------


def test_owner_of_ineligible_unit_is_refused_with_the_reason(event, building):
    event_unit, owner = owned_unit_in_scope(
        event, building, eligibility="arrears", eligibility_note="尾款未结清"
    )
    with pytest.raises(services.NotEligible) as refused:
        _owner_book(slots_of(event)[0], event_unit, owner)
    assert "业主欠款" in refused.value.message
    assert "尾款未结清" in refused.value.message


def test_staff_needs_a_reason_to_book_an_ineligible_unit(admin_user, event, building):
    event_unit, owner = owned_unit_in_scope(event, building, eligibility="not_ready")
    slot = slots_of(event)[0]
    with pytest.raises(services.OverrideNeeded) as refused:
        services.appointment_book(
            slot=slot,
            customer=owner,
            by=admin_user,
            event_unit=event_unit,
            override_reason="   ",
        )
    assert "例外原因" in refused.value.message
    appointment = services.appointment_book(
        slot=slot,
        customer=owner,
        by=admin_user,
        event_unit=event_unit,
        override_reason="工程部确认已整改",
    )
    assert appointment.override_reason == "工程部确认已整改"


def test_reason_is_not_stored_when_no_rule_was_bent(admin_user, event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    appointment = services.appointment_book(
        slot=slots_of(event)[0],
        customer=owner,
        by=admin_user,
        event_unit=event_unit,
        override_reason="随便写的",
    )
    assert appointment.override_reason == ""


# --- batches and their windows -----------------------------------------------------------


@pytest.fixture
def two_batches(event):
    first, second = make_batch(event, "第一批"), make_batch(event, "第二批")
    slot_a, slot_b = slots_of(event)
    TimeSlot.objects.filter(pk=slot_a.pk).update(batch=first)
    TimeSlot.objects.filter(pk=slot_b.pk).update(batch=second)
    return first, second


def test_owner_books_only_their_batch_slots(event, building, two_batches):
    first, _second = two_batches
    event_unit, owner = owned_unit_in_scope(event, building, batch=first)
    slot_a, slot_b = slots_of(event)
    with pytest.raises(services.OutsideBatch) as refused:
        _owner_book(slot_b, event_unit, owner)
    assert "第一批" in refused.value.message
    assert _owner_book(slot_a, event_unit, owner).slot == slot_a


def test_slot_without_batch_is_open_to_every_unit(event, building, two_batches):
    first, _second = two_batches
    event_unit, owner = owned_unit_in_scope(event, building, batch=first)
    slot_b = slots_of(event)[1]
    TimeSlot.objects.filter(pk=slot_b.pk).update(batch=None)
    assert _owner_book(slot_b, event_unit, owner).slot == slot_b


def test_staff_override_batch_with_a_reason(admin_user, event, building, two_batches):
    first, _second = two_batches
    event_unit, owner = owned_unit_in_scope(event, building, batch=first)
    slot_b = slots_of(event)[1]
    book = {
        "slot": slot_b,
        "customer": owner,
        "by": admin_user,
        "event_unit": event_unit,
    }
    with pytest.raises(services.OverrideNeeded) as refused:
        services.appointment_book(**book)
    assert "第一批" in refused.value.message
    appointment = services.appointment_book(**book, override_reason="业主只有周六有空")
    assert appointment.override_reason == "业主只有周六有空"


def test_owner_books_only_while_the_batch_window_is_open(admin_user, event, building):
    batch = make_batch(event, opens_in_days=1, closes_in_days=2)
    event_unit, owner = owned_unit_in_scope(event, building, batch=batch)
    slot = slots_of(event)[0]
    link = link_of(event_unit, owner)
    with pytest.raises(services.OutsideBatch) as refused:
        _owner_book(slot, event_unit, owner, link=link)
    assert "现在不能自助预约" in refused.value.message
    with time_machine.travel(batch.booking_closes_at, tick=False):
        with pytest.raises(services.OutsideBatch):
            _owner_book(slot, event_unit, owner, link=link)
    with time_machine.travel(batch.booking_opens_at, tick=False):
        assert _owner_book(slot, event_unit, owner, link=link).pk
    # Staff are not bound by the window.
    services.appointment_cancel(Appointment.objects.get(), by=admin_user)
    services.appointment_book(
        slot=slot, customer=owner, by=admin_user, event_unit=event_unit
    )


# --- walk-in hold -----------------------------------------------------------------------


def _held_slot(event, *, hold: int = 2) -> TimeSlot:
    slot = slots_of(event)[0]
    TimeSlot.objects.filter(pk=slot.pk).update(walk_in_hold=hold)
    slot.refresh_from_db()
    return slot


def _units(event, building, n: int):
    return [owned_unit_in_scope(event, building) for _ in range(n)]


def test_hold_keeps_seats_for_walk_ins(admin_user, event, building):
    slot = _held_slot(event)  # capacity 5, hold 2
    units = _units(event, building, 6)
    for event_unit, owner in units[:3]:
        _owner_book(slot, event_unit, owner)
    event_unit, owner = units[3]
    with pytest.raises(services.SlotFull) as refused:
        _owner_book(slot, event_unit, owner)
    assert "现场预留" in refused.value.message
    with pytest.raises(services.SlotFull):
        services.appointment_book(
            slot=slot, customer=owner, by=admin_user, event_unit=event_unit
        )
    for event_unit, owner in units[3:5]:
        services.appointment_book(
            slot=slot,
            customer=owner,
            by=admin_user,
            event_unit=event_unit,
            channel=Appointment.Channel.WALK_IN,
        )
    slot.refresh_from_db()
    assert slot.booked_count == slot.capacity == 5
    event_unit, owner = units[5]
    with pytest.raises(services.SlotFull):
        services.appointment_book(
            slot=slot,
            customer=owner,
            by=admin_user,
            event_unit=event_unit,
            channel=Appointment.Channel.WALK_IN,
        )


def test_hold_is_released_at_the_event_release_hour(event, building):
    event.walk_in_release_time = dt.time(8, 30)
    # Owners may book up to the slot's start here, so the released seats reach them.
    event.owner_cutoff_hours = 0
    event.save(update_fields=["walk_in_release_time", "owner_cutoff_hours"])
    slot = _held_slot(event, hold=5)
    (eu1, owner1), (eu2, owner2) = _units(event, building, 2)
    link1, link2 = link_of(eu1, owner1, days=10), link_of(eu2, owner2, days=10)
    assert services.seats_open(slot, OWNER) == 0
    with time_machine.travel(_local(slot.date, dt.time(8, 29)), tick=False):
        with pytest.raises(services.SlotFull):
            _owner_book(slot, eu1, owner1, link=link1)
    with time_machine.travel(_local(slot.date, dt.time(8, 30)), tick=False):
        slot.refresh_from_db()
        assert services.seats_open(slot, OWNER) == 5
        _owner_book(slot, eu1, owner1, link=link1)
        _owner_book(slot, eu2, owner2, link=link2)
    slot.refresh_from_db()
    assert slot.booked_count == 2


# --- owners' cut-off ---------------------------------------------------------------------


def test_owner_cancels_before_the_cutoff_not_after(admin_user, event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    slot = slots_of(event)[0]
    link = link_of(event_unit, owner, days=10)
    appointment = _owner_book(slot, event_unit, owner, link=link)
    deadline = slot.starts_at - dt.timedelta(hours=event.owner_cutoff_hours)
    with time_machine.travel(deadline, tick=False):
        with pytest.raises(services.PastCutoff) as refused:
            services.appointment_cancel(appointment, by=None, via_link=link)
    assert f"{timezone.localtime(deadline):%Y-%m-%d %H:%M}" in refused.value.message
    appointment.refresh_from_db()
    assert appointment.state == Appointment.State.BOOKED
    with time_machine.travel(deadline - dt.timedelta(minutes=1), tick=False):
        cancelled = services.appointment_cancel(appointment, by=None, via_link=link)
    assert cancelled.state == Appointment.State.CANCELLED
    slot.refresh_from_db()
    assert slot.booked_count == 0


def test_staff_may_cancel_after_the_owners_cutoff(admin_user, event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    slot = slots_of(event)[0]
    appointment = _owner_book(slot, event_unit, owner)
    with time_machine.travel(slot.starts_at - dt.timedelta(hours=1), tick=False):
        services.appointment_cancel(appointment, by=admin_user)


def test_owner_cannot_touch_another_units_booking(event, building):
    event_unit, owner = owned_unit_in_scope(event, building)
    other_unit, other_owner = owned_unit_in_scope(event, building)
    appointment = _owner_book(slots_of(event)[0], event_unit, owner)
    with pytest.raises(PermissionDenied):
        services.appointment_cancel(
            appointment, by=None, via_link=link_of(other_unit, other_owner)
        )
    with pytest.raises(PermissionDenied):
        services.appointment_cancel(appointment, by=None)


def test_owner_reschedules_within_batch_and_before_cutoff(event, building, two_batches):
    first, _second = two_batches
    slot_a, slot_b = slots_of(event)
    extra = TimeSlot.objects.create(
        event=event,
        batch=first,
        date=slot_a.date,
        start_time=dt.time(14, 0),
        end_time=dt.time(15, 0),
        capacity=5,
    )
    event_unit, owner = owned_unit_in_scope(event, building, batch=first)
    link = link_of(event_unit, owner, days=10)
    appointment = _owner_book(slot_a, event_unit, owner, link=link)
    with pytest.raises(services.OutsideBatch):
        services.appointment_reschedule(
            appointment, new_slot=slot_b, by=None, via_link=link
        )
    moved = services.appointment_reschedule(
        appointment, new_slot=extra, by=None, via_link=link
    )
    assert moved.slot == extra
    deadline = services.owner_deadline(extra)
    with time_machine.travel(deadline + dt.timedelta(minutes=1), tick=False):
        with pytest.raises(services.PastCutoff):
            services.appointment_reschedule(
                moved, new_slot=slot_a, by=None, via_link=link
            )


def test_owner_reschedule_respects_the_hold(event, building):
    slot_a, slot_b = slots_of(event)
    TimeSlot.objects.filter(pk=slot_b.pk).update(walk_in_hold=5)
    event_unit, owner = owned_unit_in_scope(event, building)
    link = link_of(event_unit, owner)
    appointment = _owner_book(slot_a, event_unit, owner, link=link)
    with pytest.raises(services.SlotFull):
        services.appointment_reschedule(
            appointment, new_slot=slot_b, by=None, via_link=link
        )
    appointment.refresh_from_db()
    assert appointment.slot == slot_a


def test_staff_reschedule_outside_batch_needs_a_reason(
    admin_user, event, building, two_batches
):
    first, _second = two_batches
    slot_a, slot_b = slots_of(event)
    event_unit, owner = owned_unit_in_scope(event, building, batch=first)
    appointment = services.appointment_book(
        slot=slot_a, customer=owner, by=admin_user, event_unit=event_unit
    )
    with pytest.raises(services.OverrideNeeded):
        services.appointment_reschedule(appointment, new_slot=slot_b, by=admin_user)
    moved = services.appointment_reschedule(
        appointment, new_slot=slot_b, by=admin_user, override_reason="业主改期"
    )
    assert (moved.slot, moved.override_reason) == (slot_b, "业主改期")


# --- the capacity rule for owner bookings, with real threads -----------------------------


@pytest.mark.django_db(transaction=True)
def test_owner_and_walk_in_bookings_never_overbook_nor_eat_the_hold(admin_user):
    """10 rounds: 45 owners through their links and 5 walk-ins at once into a slot of
    5 seats with 2 held: never more than 3 owners, exactly 5 seats taken, only clean
    refusals, booked_count = active appointments."""
    building = buildings_of(make_project())[0]
    crew = Crew(50)
    wrong = []
    try:
        for number in range(10):
            event = make_event(admin_user, name=f"第{number}轮", slots_per_day=1)
            slot = _held_slot(event, hold=2)
            parties = [owned_unit_in_scope(event, building) for _ in range(50)]
            links = [link_of(eu, owner) for eu, owner in parties[:45]]

            def work(n, slot=slot, parties=parties, links=links):
                event_unit, owner = parties[n]
                if n < 45:
                    return _outcome(
                        lambda: services.appointment_book(
                            slot=slot,
                            customer=owner,
                            by=None,
                            channel=OWNER,
                            via_link=links[n],
                        )
                    )
                return "walk_" + _outcome(
                    lambda: services.appointment_book(
                        slot=slot,
                        customer=owner,
                        by=admin_user,
                        event_unit=event_unit,
                        channel=Appointment.Channel.WALK_IN,
                    )
                )

            outcomes = Counter(crew.round(work))
            slot.refresh_from_db()
            active = Appointment.objects.filter(slot=slot).active().count()
            clean = set(outcomes) <= {"ok", "full", "walk_ok", "walk_full"}
            if not (
                clean
                and outcomes["ok"] <= 3
                and outcomes["ok"] + outcomes["walk_ok"] == 5
                and slot.booked_count == active == 5
            ):
                wrong.append((number, outcomes, slot.booked_count, active))
    finally:
        crew.stop()
    assert not wrong, wrong
    assert EventUnit.objects.count() == 500


def test_customer_merge_keeps_both_owners_unit_bookings(manager, event, building):
    from customers import services as customer_services

    first_unit, survivor = owned_unit_in_scope(event, building)
    second_unit, duplicate = owned_unit_in_scope(event, building)
    slot = slots_of(event)[0]
    for event_unit, owner in ((first_unit, survivor), (second_unit, duplicate)):
        _owner_book(slot, event_unit, owner)
    customer_services.customer_merge(by=manager, survivor=survivor, duplicate=duplicate)
    active = Appointment.objects.filter(slot=slot).active()
    assert sorted(active.values_list("customer_id", flat=True)) == [survivor.pk] * 2
    slot.refresh_from_db()
    assert slot.booked_count == 2


# --- the day-before reminder through the channel layer -----------------------------------


def _deliver_due(at: dt.datetime) -> None:
    from crm.scheduler import services as scheduler

    # Two rounds: the reminder queues its SMS, whose delivery is an action of its own.
    for _round in range(2):
        for action_id in scheduler.actions_sweep(now=at):
            scheduler.action_deliver(action_id=action_id, now=at)


def test_owner_booking_reminder_is_an_sms_with_their_link(
    event, building, settings, tmp_path
):
    from crm.channels.backends import RecordingSmsBackend
    from customers.models import ContactLog
    from service.handover import links

    settings.KEHU_SMS_FILE_PATH = str(tmp_path)
    event_unit, owner = owned_unit_in_scope(event, building)
    slot = slots_of(event)[0]
    appointment = _owner_book(slot, event_unit, owner)
    _deliver_due(services._reminder_due(slot) + dt.timedelta(minutes=1))

    sent = RecordingSmsBackend(tmp_path).recorded()
    assert len(sent) == 1
    assert sent[0]["to"] == owner.phone
    assert "入伙预约提醒" in sent[0]["body"]
    assert slot.start_time.strftime("%H:%M") in sent[0]["body"]
    # The link in the SMS opens this owner's unit (the same live link as their notice).
    token = sent[0]["body"].split("/o/")[1].split("/")[0]
    assert links.open_link(token).event_unit == event_unit
    log = ContactLog.objects.get(customer=owner)
    assert log.author == event.created_by  # an owner's own booking has no staff author
    assert "短信" in log.outcome
    appointment.refresh_from_db()
    assert appointment.reminded_at is not None

    # A redelivery of the same reminder sends nothing more.
    _deliver_due(services._reminder_due(slot) + dt.timedelta(minutes=5))
    assert len(RecordingSmsBackend(tmp_path).recorded()) == 1


def test_reminder_without_a_mobile_is_only_written_down(
    admin_user, event, building, settings, tmp_path
):
    from crm.channels.backends import RecordingSmsBackend
    from customers.models import ContactLog

    settings.KEHU_SMS_FILE_PATH = str(tmp_path)
    event_unit, owner = owned_unit_in_scope(event, building)
    type(owner).objects.filter(pk=owner.pk).update(phone="0571-88886666")
    slot = slots_of(event)[0]
    services.appointment_book(
        slot=slot, customer=owner, by=admin_user, event_unit=event_unit
    )
    _deliver_due(services._reminder_due(slot) + dt.timedelta(minutes=1))
    assert RecordingSmsBackend(tmp_path).recorded() == []
    log = ContactLog.objects.get(customer=owner)
    assert "没有手机号" in log.outcome


def test_two_batches_may_start_at_the_same_minute_but_one_batch_only_once(
    admin_user, event
):
    first, second = make_batch(event, "一至五栋"), make_batch(event, "六至十栋")
    day = dict(
        by=admin_user,
        event=event,
        date=event.end_date,
        start_time=dt.time(9),
        end_time=dt.time(11),
        interval_minutes=60,
        capacity=4,
    )
    assert services.slots_add_day(**day, batch=first) == 2
    assert services.slots_add_day(**day, batch=second) == 2
    # Adding the same day again to a batch, or twice without a batch, adds nothing.
    assert services.slots_add_day(**day, batch=first) == 0
    without_batch = dict(day, start_time=dt.time(14), end_time=dt.time(15))
    assert services.slots_add_day(**without_batch) == 1
    assert services.slots_add_day(**without_batch) == 0


def test_owner_cannot_book_a_slot_past_the_cutoff_but_staff_can(
    admin_user, event, building
):
    event_unit, owner = owned_unit_in_scope(event, building)
    slot = slots_of(event)[0]
    deadline = services.owner_deadline(slot)
    with time_machine.travel(deadline + dt.timedelta(minutes=1), tick=False):
        with pytest.raises(services.PastCutoff) as refused:
            _owner_book(slot, event_unit, owner)
        assert "截止" in refused.value.message
        assert not Appointment.objects.exists()
        booked = services.appointment_book(
            slot=slot, customer=owner, by=admin_user, event_unit=event_unit
        )
    assert booked.is_active
