"""S19: fields a form does not show cannot be set by adding them to the POST.

Each form is submitted valid, plus owner, team, is_staff, is_superuser, version,
created_by, id, merged_into, pool, author, assignee, status ... pointing somewhere
else; the saved record keeps the values the server chose.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers import services as customer_services
from customers.models import ContactLog, Customer, CustomerProfile, FollowUp
from service import services as service_services
from service.models import Asset, Ticket, TicketMessage, WorkOrder

FOREIGN_ID = 987654


@pytest.fixture
def setup(sales_rep, outsider, team_b, service_agent, admin_user):
    mine = customer_services.customer_create(
        by=sales_rep, data={"name": "赋值测试甲"}, phone_numbers=["13911112222"]
    )
    theirs = customer_services.customer_create(
        by=outsider, data={"name": "赋值测试乙"}, phone_numbers=["13911113333"]
    )
    extras = {
        "owner": outsider.pk,
        "owner_id": outsider.pk,
        "team": team_b.pk,
        "team_id": team_b.pk,
        "is_staff": "on",
        "is_superuser": "on",
        "created_by": outsider.pk,
        "created_by_id": outsider.pk,
        "author": outsider.pk,
        "uploaded_by": outsider.pk,
        "assignee": outsider.pk,
        "id": FOREIGN_ID,
        "pk": FOREIGN_ID,
        "merged_into": theirs.pk,
        "pool": "on",
        "status": "closed",
        "reference": "9999999999",
        "rating": "5",
        "is_overdue": "on",
        "name_grams": "x",
        "groups": "1",
    }
    return {"mine": mine, "theirs": theirs, "extras": extras}


def _client(user) -> Client:  # noqa: ANN001
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _assert_people_unchanged(*users) -> None:  # noqa: ANN002
    for user in users:
        user.refresh_from_db()
        assert not user.is_superuser
        assert user.groups.count() == 1


def test_customer_create_keeps_owner_team_and_id(setup, sales_rep, team_a):
    data = {"name": "赋值新客户", **setup["extras"], "version": "99"}
    response = _client(sales_rep).post(reverse("customers:customer_create"), data)
    assert response.status_code == 302, response.content.decode()[:500]
    customer = Customer.objects.get(name="赋值新客户")
    assert customer.pk != FOREIGN_ID
    assert (customer.owner, customer.team) == (sales_rep, team_a)
    assert customer.merged_into is None
    assert customer.version == 1
    sales_rep.refresh_from_db()
    assert not (sales_rep.is_staff or sales_rep.is_superuser)


def test_customer_edit_keeps_owner_team_and_merge(setup, sales_rep, team_a):
    mine = setup["mine"]
    extras = {k: v for k, v in setup["extras"].items() if k != "version"}
    data = {"name": "赋值改名", "version": mine.version, **extras}
    url = reverse("customers:customer_edit", args=[mine.pk])
    response = _client(sales_rep).post(url, data)
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.name == "赋值改名"
    assert (mine.owner, mine.team, mine.merged_into) == (sales_rep, team_a, None)
    assert Customer.objects.filter(pk=FOREIGN_ID).count() == 0
    setup["theirs"].refresh_from_db()
    assert setup["theirs"].name == "赋值测试乙"


def test_profile_edit_touches_only_this_customers_profile(setup, sales_rep):
    mine = setup["mine"]
    data = {
        "notes": "喜欢上午联系",
        "preferred_time": CustomerProfile.TimeOfDay.ANY,
        "customer": setup["theirs"].pk,
        **setup["extras"],
    }
    url = reverse("customers:customer_profile_edit", args=[mine.pk])
    assert _client(sales_rep).post(url, data).status_code == 302
    assert CustomerProfile.objects.get(customer=mine).notes == "喜欢上午联系"
    theirs = CustomerProfile.objects.filter(customer=setup["theirs"]).first()
    assert theirs is None or theirs.notes == ""


def test_contact_log_is_written_by_the_user_on_this_customer(setup, sales_rep):
    mine = setup["mine"]
    data = {
        "channel": "phone",
        "summary": "赋值测试通话",
        "customer": setup["theirs"].pk,
        **setup["extras"],
    }
    url = reverse("customers:contact_create", args=[mine.pk])
    assert _client(sales_rep).post(url, data).status_code == 302
    log = ContactLog.objects.get(summary="赋值测试通话")
    assert (log.customer, log.author) == (mine, sales_rep)
    assert log.pk != FOREIGN_ID


def test_followup_is_created_by_and_for_the_owner(setup, sales_rep):
    mine = setup["mine"]
    due = timezone.localtime() + dt.timedelta(days=2)
    data = {
        "note": "赋值回访",
        "due_at": due.strftime("%Y-%m-%dT%H:%M"),
        **setup["extras"],
    }
    url = reverse("customers:followup_create", args=[mine.pk])
    assert _client(sales_rep).post(url, data).status_code == 302
    followup = FollowUp.objects.get(note="赋值回访")
    assert (followup.customer, followup.assignee) == (mine, sales_rep)
    assert followup.created_by == sales_rep
    assert followup.status == FollowUp.Status.OPEN


def _ticket(setup, service_agent) -> Ticket:  # noqa: ANN001
    return service_services.ticket_create(
        by=service_agent,
        customer=setup["mine"],
        ticket_type="repair",
        channel="hotline",
        subject="赋值测试工单",
        description="门锁坏了",
    )


def test_ticket_create_keeps_status_reference_and_people(setup, service_agent):
    url = reverse("service:ticket_create") + f"?customer={setup['mine'].pk}"
    data = {
        "ticket_type": "repair",
        "channel": "hotline",
        "priority": "normal",
        "subject": "赋值新工单",
        "description": "空调不制冷",
        "customer_id": setup["theirs"].pk,
        **setup["extras"],
    }
    response = _client(service_agent).post(url, data)
    assert response.status_code == 302, response.content.decode()[:300]
    ticket = Ticket.objects.get(subject="赋值新工单")
    assert ticket.customer == setup["mine"]
    assert ticket.status == Ticket.Status.NEW
    assert ticket.reference != "9999999999"
    assert ticket.pk != FOREIGN_ID
    assert ticket.assignee_id != setup["extras"]["assignee"]
    assert ticket.merged_into_id is None


def test_reply_is_authored_by_the_agent(setup, service_agent):
    ticket = _ticket(setup, service_agent)
    data = {
        "kind": "reply",
        "body": "赋值回复",
        "version": ticket.version,
        "ticket": FOREIGN_ID,
        **{k: v for k, v in setup["extras"].items() if k != "status"},
    }
    url = reverse("service:ticket_reply", args=[ticket.reference])
    assert _client(service_agent).post(url, data).status_code == 302
    message = TicketMessage.objects.get(body="赋值回复")
    assert (message.ticket, message.author) == (ticket, service_agent)


def test_workorder_keeps_status_creator_and_rating(setup, service_agent):
    ticket = _ticket(setup, service_agent)
    due = timezone.localtime() + dt.timedelta(days=1)
    data = {
        "department": service_agent.team.department_id,
        "title": "赋值后台工单",
        "due_at": due.strftime("%Y-%m-%dT%H:%M"),
        "version": ticket.version,
        "ticket": FOREIGN_ID,
        **{k: v for k, v in setup["extras"].items() if k != "version"},
    }
    url = reverse("service:workorder_create", args=[ticket.reference])
    assert _client(service_agent).post(url, data).status_code == 302
    order = WorkOrder.objects.get(title="赋值后台工单")
    assert order.ticket == ticket
    assert order.status == WorkOrder.Status.OPEN
    assert order.created_by == service_agent
    assert order.rating is None and not order.is_overdue

    update = {"status": "in_progress", "result": "", "department": 1, "title": "改"}
    url = reverse("service:workorder_detail", args=[order.pk])
    response = _client(service_agent).post(url, update | setup["extras"] | update)
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.title == "赋值后台工单"
    assert (order.ticket, order.created_by, order.rating) == (
        ticket,
        service_agent,
        None,
    )


def test_asset_belongs_to_the_customer_in_the_address(setup, service_agent):
    url = reverse("service:asset_create") + f"?customer={setup['mine'].pk}"
    data = {"kind": "unit", "name": "赋值资产", **setup["extras"]}
    assert _client(service_agent).post(url, data).status_code == 302
    asset = Asset.objects.get(name="赋值资产")
    assert asset.customer == setup["mine"]
    assert asset.pk != FOREIGN_ID


def test_intake_cannot_choose_status_priority_or_assignee(db, setup):
    data = {
        "name": "张先生",
        "phone": "13700001111",
        "ticket_type": "repair",
        "description": "热水器漏水",
        "priority": "urgent",
        "customer": setup["theirs"].pk,
        **setup["extras"],
    }
    response = Client().post(reverse("intake"), data)
    assert response.status_code == 302, response.content.decode()[:300]
    ticket = Ticket.objects.get(description="热水器漏水")
    assert ticket.status == Ticket.Status.NEW
    assert ticket.priority != "urgent" or ticket.ticket_type == "complaint"
    assert ticket.assignee_id is None
    assert ticket.customer != setup["theirs"]


def test_no_submission_above_changed_anyones_rights(
    setup, sales_rep, outsider, service_agent
):
    data = {"name": "赋值权限", **setup["extras"]}
    _client(sales_rep).post(reverse("customers:customer_create"), data)
    _assert_people_unchanged(sales_rep, outsider, service_agent)


def test_handover_booking_keeps_state_seats_and_creator(
    setup, service_agent, admin_user
):
    from service.handover.models import Appointment
    from tests.handover.builders import make_event

    event = make_event(admin_user, slots_per_day=1, capacity=5)
    slot = event.slots.get()
    url = reverse("handover:appointment_book", args=[event.pk])
    data = {
        "customer": setup["mine"].pk,
        "slot": slot.pk,
        "unit": "3栋2单元1502",
        "party_size": "2",
        "channel": "staff",
        **{k: v for k, v in setup["extras"].items() if k != "status"},
        "state": "checked_in",
        "booked_count": "0",
        "checked_in_at": "2026-01-01T00:00",
        "event": FOREIGN_ID,
    }
    response = _client(service_agent).post(url, data)
    assert response.status_code == 302, response.content.decode()[:300]
    appointment = Appointment.objects.get(unit="3栋2单元1502")
    assert appointment.customer == setup["mine"]
    assert (appointment.event, appointment.slot) == (event, slot)
    assert appointment.state == Appointment.State.BOOKED
    assert appointment.checked_in_at is None
    assert appointment.created_by == service_agent
    slot.refresh_from_db()
    assert slot.booked_count == 1
