"""An unknown caller at the desk: registered as an unverified contact with the ticket,
in one submit and one transaction; unverified contacts (the desk's callers and the
public /report/ form) stay out of the sales pool until an agent verifies them."""

from __future__ import annotations

import datetime as dt
import re

import pghistory.models
import pytest
import time_machine
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from customers.models import Customer, CustomerPhone, PoolEvent
from service import calendar_data, services
from service.models import Asset, Category, Priority, SLAPolicy, Ticket, TicketType
from tests.factories import CustomerFactory

WEDNESDAY_10AM = dt.datetime(
    2026, 3, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))
)
NEW_URL = reverse("service:ticket_create")
CALLER_URL = NEW_URL + "?caller=new"
POOL_URL = reverse("customers:pool_list")
LIST_URL = reverse("customers:customer_list")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(WEDNESDAY_10AM, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CRISPY_FAIL_SILENTLY = False


@pytest.fixture
def desk(service_agent):
    calendar_data.calendar_seed(years=[])
    SLAPolicy.objects.bulk_create(
        SLAPolicy(
            name=f"{ticket_type}-{priority}",
            ticket_type=ticket_type,
            priority=priority,
            first_response_minutes=60,
            resolution_minutes=480,
        )
        for ticket_type in TicketType.values
        for priority in Priority.values
    )
    return Category.objects.create(name="报修", team=service_agent.team)


def caller_post(desk: Category, **changes: str) -> dict[str, str]:
    data = {
        "caller": "new",
        "caller-name": "李女士",
        "caller-phone": "139 0000 1234",
        "caller-asset_kind": "unit",
        "caller-asset_name": "3栋2单元1801",
        "ticket_type": "repair",
        "channel": "hotline",
        "priority": "normal",
        "category": str(desk.pk),
        "subject": "厨房漏水",
        "description": "水槽下面一直滴水",
    }
    data.update(changes)
    return data


def counts() -> tuple[int, int, int]:
    return (Customer.objects.count(), Ticket.objects.count(), Asset.objects.count())


def test_the_desk_finds_nobody_and_is_offered_to_register_the_caller(
    login, desk, service_agent
):
    client = login(service_agent)
    response = client.post(NEW_URL, {"q": "13900001234"}, follow=True)

    assertContains(response, "没有找到")
    link = re.search(r'href="([^"]*caller=new[^"]*)"', response.content.decode())
    assert link, "no link to register the caller"
    # The number travels as a session token, never as digits in the address.
    assert "13900001234" not in link.group(1)
    form = client.get(link.group(1).replace("&amp;", "&"))
    assertContains(form, 'value="13900001234"')
    assertContains(form, "新来电客户")


def test_one_submit_registers_the_caller_their_unit_and_the_ticket(
    login, desk, service_agent
):
    response = login(service_agent).post(CALLER_URL, caller_post(desk))

    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == ticket.get_absolute_url()
    customer = ticket.customer
    assert (customer.name, customer.phone, customer.source) == (
        "李女士",
        "13900001234",
        Customer.Source.PHONE,
    )
    # The desk's unverified contact: nobody's, not in the pool.
    assert (customer.is_verified, customer.owner, customer.pool_entered_at) == (
        False,
        None,
        None,
    )
    assert (ticket.asset.name, ticket.asset.kind, ticket.asset.customer) == (
        "3栋2单元1801",
        "unit",
        customer,
    )
    assert (ticket.created_by, ticket.assignee) == (service_agent, service_agent)
    # The customer's creation is in its history, by the agent.
    event = pghistory.models.Events.objects.references(customer).get(
        pgh_model="customers.CustomerEvent", pgh_label="insert"
    )
    assert event.pgh_context["user"] == service_agent.pk
    page = login(service_agent).get(ticket.get_absolute_url())
    assertContains(page, "待核实")
    assertContains(page, "核实客户")


def test_the_unit_is_optional(login, desk, service_agent):
    login(service_agent).post(
        CALLER_URL, caller_post(desk, **{"caller-asset_name": ""})
    )

    ticket = Ticket.objects.get()
    assert ticket.asset is None
    assert Asset.objects.count() == 0


def test_a_phone_of_an_existing_customer_is_refused_and_nothing_is_written(
    login, desk, service_agent, sales_rep
):
    known = CustomerFactory(name="王建国", phone="13900001234", owner=sales_rep)
    CustomerPhone.objects.create(customer=known, number="13900001234", is_primary=True)
    before = counts()

    response = login(service_agent).post(CALLER_URL, caller_post(desk))

    assert response.status_code == 400
    assertContains(response, "电话 13900001234 已属于客户“王建国”。", status_code=400)
    assert counts() == before


def test_a_bad_ticket_leaves_no_customer_behind(login, desk, service_agent):
    response = login(service_agent).post(
        CALLER_URL, caller_post(desk, subject=" ", **{"caller-phone": "12"})
    )

    assert response.status_code == 400
    assertContains(response, "这个字段是必填项。", status_code=400)
    assertContains(response, "不是有效的电话号码", status_code=400)
    assert counts() == (0, 0, 0)


def test_a_failure_after_the_customer_is_written_rolls_everything_back(
    desk, service_agent
):
    """The ticket refused by the model (a subject too long for the column) after the
    customer and asset rows were inserted: the transaction leaves nothing."""
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal will do
        services.caller_ticket_create(
            by=service_agent,
            name="李女士",
            phone="13900001234",
            asset={"kind": "unit", "name": "1801"},
            ticket={
                "ticket_type": "repair",
                "channel": "hotline",
                "subject": "长" * 500,
                "description": "漏水",
            },
        )
    assert counts() == (0, 0, 0)


def test_sales_may_not_register_callers(login, desk, sales_rep):
    assert login(sales_rep).post(CALLER_URL, caller_post(desk)).status_code == 403
    assert counts() == (0, 0, 0)


def test_the_desk_still_cannot_use_the_customer_form(login, service_agent):
    client = login(service_agent)
    assert client.get(reverse("customers:customer_create")).status_code == 403


# --- unverified contacts and the pool ---------------------------------------------------


@pytest.fixture
def reported(desk):
    """A customer that came in through the public /report/ form."""
    return services.intake_submit(
        ip="203.0.113.9",
        phone="13700007777",
        name="可疑来客",
        ticket_type="repair",
        description="测试测试",
    ).customer


def test_unverified_contacts_are_out_of_the_pool_and_sales_lists(
    login, reported, sales_rep, manager
):
    for person in (sales_rep, manager):
        client = login(person)
        assertNotContains(client.get(POOL_URL), "可疑来客")
        assertNotContains(client.get(LIST_URL + "?pool=on"), "可疑来客")
        assert client.get(reported.get_absolute_url()).status_code == 404
    claim = login(sales_rep).post(reverse("customers:pool_claim", args=[reported.pk]))
    assert claim.status_code == 302
    reported.refresh_from_db()
    assert reported.owner is None


def test_the_desk_sees_them_and_filters_on_them(login, reported, service_agent):
    CustomerFactory(name="老客户", owner=None, team=None)
    response = login(service_agent).get(LIST_URL + "?unverified=on")

    assertContains(response, "可疑来客")
    assertContains(response, "待核实")
    assertNotContains(response, "老客户")


def test_verifying_sends_the_contact_to_the_pool_audited(
    login, reported, service_agent, sales_rep
):
    ticket = Ticket.objects.get(customer=reported)
    response = login(service_agent).post(
        reverse("customers:customer_verify", args=[reported.pk]),
        {"next": ticket.get_absolute_url()},
    )

    assert response.status_code == 302
    assert response["Location"] == ticket.get_absolute_url()
    reported.refresh_from_db()
    assert reported.is_verified
    assert reported.pool_entered_at == WEDNESDAY_10AM
    event = PoolEvent.objects.get(customer=reported)
    assert (event.action, event.actor) == (PoolEvent.Action.VERIFY, service_agent)
    change = pghistory.models.Events.objects.references(reported).get(
        pgh_model="customers.CustomerEvent", pgh_label="update"
    )
    assert change.pgh_context["user"] == service_agent.pk
    assert change.pgh_diff["is_verified"] == [False, True]
    # Now sales find it in the pool and may claim it.
    assertContains(login(sales_rep).get(POOL_URL), "可疑来客")
    login(sales_rep).post(reverse("customers:pool_claim", args=[reported.pk]))
    reported.refresh_from_db()
    assert reported.owner == sales_rep


def test_verifying_twice_says_so(login, reported, service_agent):
    url = reverse("customers:customer_verify", args=[reported.pk])
    login(service_agent).post(url)
    response = login(service_agent).post(url, follow=True)

    assertContains(response, "该客户已核实")
    assert PoolEvent.objects.filter(customer=reported).count() == 1
