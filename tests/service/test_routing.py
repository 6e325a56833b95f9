"""Which team a new ticket goes to (service/routing.py): the category's team (or its
parent's), else the creator's desk team, else KEHU_TICKET_DEFAULT_TEAM, else the only
desk team; a ticket routed without a category waits unassigned in that team's queue."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from service import calendar_data, services
from service.models import Ticket
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    DepartmentFactory,
    SLAPolicyFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
MON = date(2026, 3, 2)
QUEUE_URL = reverse("service:ticket_queue")
NEW_URL = reverse("service:ticket_create")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(MON.year, MON.month, MON.day, hour, minute, tzinfo=SH)


@pytest.fixture
def desk(service_agent: Any) -> Any:
    """The desk team (客服组, one agent) handles 报修; no setting is configured."""
    calendar_data.calendar_seed(years=[2026])
    SLAPolicyFactory(
        ticket_type="complaint",
        priority="normal",
        first_response_minutes=60,
        resolution_minutes=480,
        warn_before_minutes=30,
    )
    CategoryFactory(name="报修", team=service_agent.team)
    return service_agent.team


@pytest.fixture
def second_desk(desk: Any) -> Any:
    """Another desk team, for a project of its own."""
    team = TeamFactory(name="江景客服组", department=desk.department)
    UserFactory(username="service_j", team=team, role=Role.SERVICE)
    CategoryFactory(name="江景报修", team=team)
    return team


def open_ticket(by: Any, category: Any = None, **changes: Any) -> Ticket:
    arguments = {
        "customer": CustomerFactory(name="王业主"),
        "ticket_type": "complaint",
        "channel": Ticket.Channel.HOTLINE,
        "subject": "门禁卡失灵",
        "description": "业主来电：门禁卡刷不开单元门。",
        "category": category,
        **changes,
    }
    with time_machine.travel(at(10), tick=False):
        return services.ticket_create(by=by, now=at(10), **arguments)


def test_an_agents_uncategorised_ticket_waits_unassigned_in_the_agents_team_queue(
    client, desk, second_desk, service_agent
):
    ticket = open_ticket(service_agent)
    assert ticket.team == desk
    assert (ticket.assignee, ticket.status) == (None, Ticket.Status.NEW)
    client.force_login(service_agent)
    assertContains(client.get(QUEUE_URL + "?queue=team"), ticket.reference)
    assertContains(client.get(QUEUE_URL + "?queue=unassigned"), ticket.reference)
    assertNotContains(client.get(QUEUE_URL + "?queue=mine"), ticket.reference)


def test_a_sales_reps_uncategorised_ticket_goes_to_the_only_desk_team(
    client, desk, sales_rep, service_agent
):
    customer = CustomerFactory(name="李业主", owner=sales_rep)
    client.force_login(sales_rep)
    response = client.post(
        NEW_URL,
        {
            "customer": customer.pk,
            "ticket_type": "complaint",
            "channel": Ticket.Channel.HOTLINE,
            "priority": "normal",
            "subject": "电梯经常停运",
            "description": "客户反映 3 栋电梯一周停了两次。",
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    # Not the sales team (no category routes there): the desk's.
    assert (ticket.category, ticket.team, ticket.assignee) == (None, desk, None)
    client.force_login(service_agent)
    assertContains(client.get(QUEUE_URL + "?queue=team"), ticket.reference)


def test_a_back_office_creator_is_not_a_desk(desk, settings):
    engineering = TeamFactory(
        name="维修班", department=DepartmentFactory(name="工程部")
    )
    engineer = UserFactory(username="eng", team=engineering, role=Role.SERVICE)
    assert open_ticket(engineer).team == desk


def test_the_setting_picks_the_team_when_the_creator_is_not_on_a_desk(
    desk, second_desk, sales_rep, admin_user, settings
):
    # Two desks and no setting: nothing to choose by, so no team (as before).
    assert open_ticket(sales_rep).team is None
    settings.KEHU_TICKET_DEFAULT_TEAM = second_desk.name
    assert open_ticket(sales_rep).team == second_desk
    assert open_ticket(admin_user).team == second_desk


def test_the_agents_own_desk_comes_before_the_setting(
    desk, second_desk, service_agent, settings
):
    settings.KEHU_TICKET_DEFAULT_TEAM = second_desk.name
    assert open_ticket(service_agent).team == desk


def test_a_setting_naming_no_team_is_logged_and_falls_back(
    desk, sales_rep, settings, caplog
):
    settings.KEHU_TICKET_DEFAULT_TEAM = "不存在的组"
    with caplog.at_level(logging.WARNING, logger="kehu.service"):
        assert open_ticket(sales_rep).team == desk
    assert "不存在的组" in caplog.text


def test_a_public_form_ticket_without_a_category_reaches_the_desk(desk):
    # The intake form looks for the 投诉 category; there is none here.
    with time_machine.travel(at(10), tick=False):
        ticket = services.intake_submit(
            ip="203.0.113.9",
            phone="13912345678",
            name="赵先生",
            ticket_type="complaint",
            description="小区大门的道闸坏了三天。",
            now=at(10),
        )
    assert (ticket.category, ticket.team, ticket.assignee) == (None, desk, None)


def test_a_subcategory_without_a_team_goes_where_its_parent_goes(
    desk, service_agent, sales_rep
):
    parent = CategoryFactory(name="维修", team=desk)
    leak = CategoryFactory(
        name="漏水", parent=CategoryFactory(name="水电", parent=parent)
    )
    ticket = open_ticket(sales_rep, category=leak)
    # Routed by the category tree, so dealt round-robin like any categorised ticket.
    assert (ticket.team, ticket.assignee) == (desk, service_agent)
    assert ticket.status == Ticket.Status.ASSIGNED


def test_a_category_of_its_own_team_is_unchanged(desk, second_desk, service_agent):
    ticket = open_ticket(service_agent, category=CategoryFactory(team=second_desk))
    assert ticket.team == second_desk
    assert ticket.assignee.username == "service_j"


def test_the_team_lead_hears_of_an_uncategorised_tickets_sla_warning(desk, sales_rep):
    lead = UserFactory(username="desk_lead", team=desk, role=Role.SERVICE)
    desk.lead = lead
    desk.save()
    ticket = open_ticket(sales_rep)
    with time_machine.travel(at(10, 30), tick=False):
        [warning] = scheduler.actions_sweep(now=at(10, 30))
        assert scheduler.action_deliver(action_id=warning, now=at(10, 30))
    titles = Notification.objects.filter(recipient=lead).values_list("title", flat=True)
    assert list(titles) == [f"即将超时（首次响应）：{ticket.reference}"]
