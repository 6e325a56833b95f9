"""The booking services' refusals and their audit trail, directly against PostgreSQL."""

from __future__ import annotations

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied

from service.handover import services
from service.handover.models import Appointment
from tests.factories import CustomerFactory
from tests.handover.builders import slots_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(new_event):
    return new_event(slots_per_day=2, capacity=3)


@pytest.fixture
def booked(event, sales_rep):
    customer = CustomerFactory(name="许业主", owner=sales_rep)
    return services.appointment_book(
        slot=slots_of(event)[0], customer=customer, by=sales_rep, unit="1栋101"
    )


def test_nobody_books_a_customer_they_cannot_see(event, sales_rep, outsider):
    customer = CustomerFactory(owner=sales_rep)
    with pytest.raises(PermissionDenied):
        services.appointment_book(
            slot=slots_of(event)[0], customer=customer, by=outsider
        )
    assert not Appointment.objects.exists()


def test_a_user_without_a_role_books_nothing(event, readonly_user, admin_user):
    with pytest.raises(PermissionDenied):
        services.appointment_book(
            slot=slots_of(event)[0], customer=CustomerFactory(), by=readonly_user
        )


def test_only_planners_create_events(sales_rep):
    with pytest.raises(PermissionDenied):
        services.event_save(
            by=sales_rep,
            data={
                "name": "x",
                "project_name": "x",
                "venue": "x",
                "start_date": None,
                "end_date": None,
            },
        )


def test_reschedule_stays_within_the_event(new_event, admin_user, booked):
    elsewhere = slots_of(new_event(name="另一活动"))[0]
    with pytest.raises(services.NotBookable, match="同一入伙活动"):
        services.appointment_reschedule(booked, new_slot=elsewhere, by=admin_user)
    with pytest.raises(services.NotBookable, match="相同"):
        services.appointment_reschedule(booked, new_slot=booked.slot, by=admin_user)
    booked.refresh_from_db()
    assert booked.slot.booked_count == 1


def test_stale_version_is_a_conflict_and_changes_nothing(event, sales_rep, booked):
    old, new = slots_of(event)
    version = booked.version
    services.appointment_reschedule(booked, new_slot=new, by=sales_rep, version=version)
    with pytest.raises(services.Conflict, match="已被他人修改"):
        services.appointment_reschedule(
            booked, new_slot=old, by=sales_rep, version=version
        )
    with pytest.raises(services.Conflict):
        services.appointment_cancel(booked, by=sales_rep, version=version)
    booked.refresh_from_db()
    old.refresh_from_db()
    new.refresh_from_db()
    assert (booked.slot, booked.state) == (new, Appointment.State.BOOKED)
    assert (old.booked_count, new.booked_count) == (0, 1)


def test_closed_event_freezes_its_appointments(event, admin_user, sales_rep, booked):
    services.event_close(by=admin_user, event=event)
    with pytest.raises(services.NotBookable):
        services.appointment_cancel(booked, by=sales_rep)
    booked.refresh_from_db()
    assert booked.state == Appointment.State.BOOKED


def test_every_change_is_audited_with_the_acting_user(event, sales_rep, booked):
    services.appointment_cancel(booked, by=sales_rep)
    events = pghistory.models.Events.objects.tracks(booked).order_by("pgh_id")
    labels = [(e.pgh_label, e.pgh_data["state"]) for e in events]
    assert labels == [("insert", "booked"), ("update", "cancelled")]
    assert {e.pgh_context["user"] for e in events} == {sales_rep.pk}


def test_booking_errors_are_value_errors_with_a_chinese_message():
    error = services.SlotFull()
    assert isinstance(error, ValueError)
    assert error.message == str(error) == "该时段已满，请选择其他时段。"
