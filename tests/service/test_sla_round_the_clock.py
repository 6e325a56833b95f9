"""Round-the-clock SLAs: a policy counts business hours (the default) or 24×7.

Sunday 2026-03-08 22:00 Asia/Shanghai, no holiday near it. An urgent repair
(电梯困人) under a 24×7 policy of 15/240 minutes with a 5-minute warning is warned at
22:10, breaches at 22:15 and reaches the managers 45 minutes later, through the real
scheduled-action pipeline (sweep, then the Celery task's body). The same ticket under
business hours would wait for Monday 09:15.
"""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from pytest_django.asserts import assertContains

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import calendar_data, services
from service.models import SLAPolicy, Ticket
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    SLAPolicyFactory,
    TeamFactory,
    UserFactory,
)

SH = ZoneInfo("Asia/Shanghai")
SUN, MON = date(2026, 3, 8), date(2026, 3, 9)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SH)


@pytest.fixture
def desk(service_agent: Any, admin_user: Any, settings: Any) -> SimpleNamespace:
    settings.KEHU_ESCALATION_MANAGER_MINUTES = 45
    calendar_data.calendar_seed(years=[2026])
    team = service_agent.team
    lead = UserFactory(username="night_lead", team=team, role=Role.SERVICE)
    boss = UserFactory(
        username="desk_boss",
        team=TeamFactory(name="客服管理组", department=team.department),
        role=Role.MANAGER,
    )
    team.lead = lead
    team.save()
    SLAPolicyFactory(
        name="报修·紧急",
        ticket_type="repair",
        priority="urgent",
        first_response_minutes=15,
        resolution_minutes=240,
        warn_before_minutes=5,
        calendar=SLAPolicy.Calendar.ROUND_THE_CLOCK,
    )
    SLAPolicyFactory(
        name="投诉·紧急",
        ticket_type="complaint",
        priority="urgent",
        first_response_minutes=15,
        resolution_minutes=240,
        warn_before_minutes=5,
    )
    return SimpleNamespace(
        agent=service_agent,
        lead=lead,
        boss=boss,
        admin=admin_user,
        category=CategoryFactory(name="电梯", team=team),
    )


def open_ticket(desk: SimpleNamespace, ticket_type: str, when: datetime) -> Ticket:
    with time_machine.travel(when, tick=False):
        return services.ticket_create(
            by=desk.admin,
            customer=CustomerFactory(name="赵先生"),
            ticket_type=ticket_type,
            channel="hotline",
            priority="urgent",
            subject="电梯困人",
            description="3号楼电梯停在8楼与9楼之间，有人被困。",
            category=desk.category,
        )


def run(when: datetime) -> list[tuple[str, str]]:
    """One beat: the sweep claims what is due, a worker delivers each action."""
    done = []
    with time_machine.travel(when, tick=False):
        for action_id in scheduler.actions_sweep(now=when):
            assert scheduler.action_deliver(action_id=action_id, now=when)
            key = ScheduledAction.objects.get(pk=action_id).idempotency_key
            done.append(tuple(key.split(":")[2:4]))
    return sorted(done)


def titles(user: Any) -> list[str]:
    return list(
        Notification.objects.filter(recipient=user)
        .order_by("pk")
        .values_list("title", flat=True)
    )


def test_new_policies_count_business_hours_by_default(db: None) -> None:
    assert SLAPolicyFactory().calendar == SLAPolicy.Calendar.BUSINESS


def test_a_24x7_ticket_breaches_on_sunday_night_and_escalates(
    desk: SimpleNamespace,
) -> None:
    ticket = open_ticket(desk, "repair", at(SUN, 22))
    assert ticket.first_response_due_at == at(SUN, 22, 15)
    assert ticket.resolution_due_at == at(MON, 2)
    ref = ticket.reference

    assert run(at(SUN, 22, 9)) == []
    assert run(at(SUN, 22, 10)) == [("first_response", "warning")]
    assert run(at(SUN, 22, 15)) == [("first_response", "breach")]
    ticket.refresh_from_db()
    assert (ticket.first_response_breached, ticket.escalation_level) == (True, 1)
    assert titles(desk.lead) == [f"已超时（首次响应），升级到组长：{ref}"]

    assert run(at(SUN, 23)) == [("first_response", "manager")]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 2
    assert titles(desk.boss) == [f"超时未处理，升级到经理：{ref}"]
    # Delivering again sends nothing twice.
    assert run(at(SUN, 23, 1)) == []
    assert len(titles(desk.lead)) == 1


def test_a_business_hours_ticket_opened_sunday_night_waits_for_monday(
    desk: SimpleNamespace,
) -> None:
    ticket = open_ticket(desk, "complaint", at(SUN, 22))
    assert ticket.first_response_due_at == at(MON, 9, 15)
    assert run(at(SUN, 23, 59)) == []
    ticket.refresh_from_db()
    assert ticket.escalation_level == 0


def test_waiting_on_the_customer_pauses_a_24x7_clock_in_plain_minutes(
    desk: SimpleNamespace,
) -> None:
    ticket = open_ticket(desk, "repair", at(SUN, 22))
    ticket = services.ticket_transition(
        by=desk.agent, ticket=ticket, to_status="in_progress", now=at(SUN, 22, 1)
    )
    ticket = services.ticket_transition(
        by=desk.agent, ticket=ticket, to_status="waiting", now=at(SUN, 22, 5)
    )
    assert ticket.first_response_left == 10
    ticket = services.ticket_transition(
        by=desk.agent, ticket=ticket, to_status="in_progress", now=at(MON, 3)
    )
    # Resumed at 03:00 on Monday: 10 minutes left, not 10 business minutes (09:10).
    assert ticket.first_response_due_at == at(MON, 3, 10)


def test_raising_a_complaint_to_an_urgent_repair_switches_to_24x7(
    desk: SimpleNamespace,
) -> None:
    SLAPolicyFactory(
        ticket_type="repair",
        priority="normal",
        first_response_minutes=60,
        resolution_minutes=480,
    )
    with time_machine.travel(at(SUN, 21), tick=False):
        ticket = services.ticket_create(
            by=desk.admin,
            customer=CustomerFactory(),
            ticket_type="repair",
            channel="hotline",
            priority="normal",
            subject="电梯异响",
            description="电梯运行有异响。",
            category=desk.category,
        )
        # Business hours: 60 minutes from Monday 09:00.
        assert ticket.first_response_due_at == at(MON, 10)
    with time_machine.travel(at(SUN, 22), tick=False):
        ticket = services.ticket_update(
            by=desk.agent,
            ticket=ticket,
            version=ticket.version,
            data={"priority": "urgent"},
        )
    # 60 business minutes were left; the urgent 24×7 policy takes 45 off them, and
    # counts the rest round the clock from now.
    assert ticket.sla_policy.is_round_the_clock
    assert ticket.first_response_due_at == at(SUN, 22, 15)


def test_the_ticket_page_and_queue_show_the_24x7_calendar(
    desk: SimpleNamespace, login: Any
) -> None:
    ticket = open_ticket(desk, "repair", at(SUN, 22))
    business = open_ticket(desk, "complaint", at(SUN, 22))
    client = login(desk.agent)
    with time_machine.travel(at(SUN, 22, 5), tick=False):
        page = client.get(ticket.get_absolute_url())
        assertContains(page, "全天候计时")
        # 10 minutes of the clock are left, not the business minutes to Monday.
        assertContains(page, "剩 10分")
        other = client.get(business.get_absolute_url())
        assertContains(other, "按工作时间计算")
        queue = client.get("/service/?queue=breaching")
    # Due in 10 minutes of the clock: breaching soon, marked as counted 24×7.
    assertContains(queue, ticket.reference)
    assertContains(queue, "24×7")
