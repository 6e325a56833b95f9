"""Tickets through service/services.py against PostgreSQL: creation, references, SLA
policies and clocks, round-robin, the workflow rules, pauses, replies, concurrent edits,
merge and link, the resolve hook and attachments. Clocks are fixed with time-machine in
Asia/Shanghai; 2026-03-02 is a Monday with no holiday near it."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler.models import ScheduledAction
from service import calendar_data, events, services
from service.models import (
    Ticket,
    TicketAttachment,
    TicketLink,
    TicketMessage,
    TicketTransition,
)
from service.sla import BusinessCalendar
from tests.channels.delivery import deliver_messages
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    SLAPolicyFactory,
    TeamFactory,
    TicketFactory,
    TicketMessageFactory,
    UserFactory,
)

SH = ZoneInfo("Asia/Shanghai")
Status = Ticket.Status
MON, TUE, WED, THU = (date(2026, 3, d) for d in (2, 3, 4, 5))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SH)


@pytest.fixture
def business_hours(db: None) -> None:
    calendar_data.calendar_seed(years=[2026])


@pytest.fixture
def repairs(service_agent: Any) -> Any:
    """The repair category, routed to the service desk team (service_agent alone)."""
    return CategoryFactory(name="报修", team=service_agent.team)


@pytest.fixture
def policy(business_hours: None) -> Any:
    return SLAPolicyFactory(
        ticket_type="repair",
        priority="normal",
        first_response_minutes=60,
        resolution_minutes=480,
        warn_before_minutes=30,
    )


@pytest.fixture
def urgent_policy(business_hours: None) -> Any:
    return SLAPolicyFactory(
        ticket_type="repair",
        priority="urgent",
        first_response_minutes=30,
        resolution_minutes=120,
        warn_before_minutes=30,
    )


@pytest.fixture
def customer(sales_rep: Any) -> Any:
    return CustomerFactory(owner=sales_rep, name="王建国")


def open_ticket(
    by: Any,
    customer: Any,
    *,
    category: Any = None,
    when: datetime | None = None,
    **fields: Any,
) -> Ticket:
    fields = {
        "ticket_type": "repair",
        "channel": "hotline",
        "subject": "客厅空调漏水",
        "description": "客厅空调外机漏水，已持续两天。",
        **fields,
    }
    with time_machine.travel(when or at(MON, 10), tick=False):
        return services.ticket_create(
            by=by, customer=customer, category=category, **fields
        )


def transition(
    by: Any, ticket: Ticket, to_status: str, when: datetime, **kw: Any
) -> Ticket:
    with time_machine.travel(when, tick=False):
        return services.ticket_transition(
            by=by, ticket=ticket, to_status=to_status, now=when, **kw
        )


def reply(by: Any, ticket: Ticket, when: datetime, kind: str = "reply") -> None:
    """A reply (sent at once by the development SMS backend) or another message."""
    with time_machine.travel(when, tick=False):
        services.ticket_message_add(
            by=by, ticket=ticket, body="您好，师傅今天下午上门。", kind=kind, now=when
        )
        deliver_messages(when)


def pending_clocks(ticket: Ticket) -> list[tuple[str, str, datetime]]:
    """(metric, stage, due) of every pending SLA action of the ticket."""
    rows = ScheduledAction.objects.filter(
        target_id=ticket.pk,
        kind__in=services.SLA_KINDS,
        state=ScheduledAction.State.PENDING,
    )
    return sorted(
        (*row.idempotency_key.split(":")[2:4], row.due_at.astimezone(SH))
        for row in rows
    )


def armed(metric: str, warning: datetime, due: datetime) -> list:
    """The actions of one running clock: a warning, the breach at the deadline and the
    managers' escalation KEHU_ESCALATION_MANAGER_MINUTES (60) after it."""
    return [
        (metric, "breach", due),
        (metric, "manager", due + timedelta(minutes=60)),
        (metric, "warning", warning),
    ]


# A repair ticket opened on Monday at 10:00 under the 60/480-minute policy.
AT_CREATION = sorted(
    armed("first_response", at(MON, 10, 30), at(MON, 11))
    + armed("resolution", at(TUE, 10), at(TUE, 10, 30))
)


def run_together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run each job in its own thread and DB connection, released at the same moment."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def work(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = job()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=pair) for pair in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# --- creation, reference, policy, due times -------------------------------------------


def test_create_sets_reference_policy_due_times_and_schedules_the_clocks(
    service_agent: Any, customer: Any, repairs: Any, policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)

    ticket.refresh_from_db()
    assert re.fullmatch(r"2026\d{6}", ticket.reference)
    assert ticket.sla_policy == policy
    assert ticket.first_response_due_at == at(MON, 11)
    # 480 business minutes: 120 + 270 on Monday, 90 on Tuesday morning.
    assert ticket.resolution_due_at == at(TUE, 10, 30)
    assert ticket.next_due_at == at(MON, 11)
    assert (
        pending_clocks(ticket)
        == AT_CREATION
        == [
            ("first_response", "breach", at(MON, 11)),
            ("first_response", "manager", at(MON, 12)),
            ("first_response", "warning", at(MON, 10, 30)),
            ("resolution", "breach", at(TUE, 10, 30)),
            ("resolution", "manager", at(TUE, 11, 30)),
            ("resolution", "warning", at(TUE, 10)),
        ]
    )
    assert list(
        ticket.transitions.order_by("pk").values_list("from_status", "to_status")
    ) == [("", "new"), ("new", "assigned")]


def test_references_differ_and_are_read_aloud_as_year_and_six_digits(
    service_agent: Any, customer: Any
) -> None:
    tickets = [open_ticket(service_agent, customer) for _ in range(3)]

    references = [t.reference for t in tickets]
    assert all(re.fullmatch(r"2026\d{6}", r) for r in references)
    assert len(set(references)) == 3


@pytest.mark.parametrize(
    ("is_key_account", "tier", "expected"),
    [
        pytest.param(False, "C", "standard", id="ordinary"),
        pytest.param(True, "C", "key", id="flagged-key-account"),
        pytest.param(False, "A", "key", id="tier-a"),
    ],
)
def test_key_accounts_get_the_key_account_policy(
    service_agent: Any,
    business_hours: None,
    is_key_account: bool,
    tier: str,
    expected: str,
) -> None:
    policies = {
        "standard": SLAPolicyFactory(ticket_type="complaint", priority="high"),
        "key": SLAPolicyFactory(
            ticket_type="complaint",
            priority="high",
            for_key_accounts=True,
            first_response_minutes=15,
            resolution_minutes=120,
        ),
    }
    customer = CustomerFactory(is_key_account=is_key_account, tier=tier)

    ticket = open_ticket(
        service_agent, customer, ticket_type="complaint", priority="high"
    )

    assert ticket.sla_policy == policies[expected]
    minutes = policies[expected].first_response_minutes
    assert ticket.first_response_due_at == BusinessCalendar.load().add_minutes(
        at(MON, 10), minutes
    )


def test_key_account_without_a_key_policy_falls_back_to_the_standard_one(
    service_agent: Any, policy: Any
) -> None:
    customer = CustomerFactory(is_key_account=True, tier="A")

    assert open_ticket(service_agent, customer).sla_policy == policy


def test_without_a_policy_there_are_no_due_times_and_no_actions(
    service_agent: Any, customer: Any
) -> None:
    ticket = open_ticket(service_agent, customer)

    assert ticket.sla_policy is None
    assert ticket.first_response_due_at is None
    assert ticket.resolution_due_at is None
    assert pending_clocks(ticket) == []


def test_round_robin_skips_away_and_inactive_people_and_wraps_around(
    admin_user: Any, customer: Any
) -> None:
    team = TeamFactory(name="售后一组")
    first = UserFactory(team=team, role=Role.SERVICE)
    away = UserFactory(team=team, role=Role.SERVICE, is_away=True)
    third = UserFactory(team=team, role=Role.SERVICE)
    UserFactory(team=team, role=Role.SERVICE, is_active=False)
    UserFactory(team=TeamFactory(name="售后二组"), role=Role.SERVICE)
    category = CategoryFactory(name="安装", team=team)

    tickets = [open_ticket(admin_user, customer, category=category) for _ in range(4)]

    assert [t.assignee for t in tickets] == [first, third, first, third]
    assert all(t.status == Status.ASSIGNED and t.team == team for t in tickets)
    assert Ticket.objects.filter(assignee=away).count() == 0
    assert Notification.objects.filter(recipient=first).count() == 2


def test_a_team_with_nobody_available_leaves_the_ticket_new(
    admin_user: Any, customer: Any
) -> None:
    team = TeamFactory(name="夜班组")
    UserFactory(team=team, role=Role.SERVICE, is_away=True)

    ticket = open_ticket(
        admin_user, customer, category=CategoryFactory(name="夜间", team=team)
    )

    assert (ticket.status, ticket.assignee, ticket.team) == (Status.NEW, None, team)


@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_gives_unique_references_and_fair_turns(
    admin_user: Any,
) -> None:
    team = TeamFactory(name="并发组")
    agents = [UserFactory(team=team, role=Role.SERVICE) for _ in range(2)]
    category = CategoryFactory(name="并发", team=team)
    customer = CustomerFactory()

    def create_five() -> list[str]:
        return [
            services.ticket_create(
                by=admin_user,
                customer=customer,
                ticket_type="repair",
                channel="hotline",
                subject="并发测试",
                description="同时提交。",
                category=category,
            ).reference
            for _ in range(5)
        ]

    results = run_together(*[create_five] * 6)

    assert all(isinstance(batch, list) for batch in results), results
    references = [ref for batch in results for ref in batch]
    assert len(references) == 30
    assert len(set(references)) == 30
    assert all(re.fullmatch(r"\d{4}\d{6}", ref) for ref in references)
    assert sorted(Ticket.objects.filter(assignee=a).count() for a in agents) == [15, 15]


# --- the workflow ---------------------------------------------------------------------

# The rules as the issue states them: new → assigned → in progress → waiting on the
# customer → resolved → closed, with reopen (back to in progress).
EXPECTED_RULES = {
    "new": {"assigned", "in_progress", "resolved", "closed"},
    "assigned": {"in_progress", "waiting", "resolved"},
    "in_progress": {"waiting", "resolved"},
    "waiting": {"in_progress", "resolved"},
    "resolved": {"closed", "in_progress"},
    "closed": {"in_progress"},
}
ALL_PAIRS = [(a, b) for a in Status.values for b in Status.values]


def test_the_rule_table_is_the_documented_workflow() -> None:
    assert {k: set(v) for k, v in services.TRANSITIONS.items()} == EXPECTED_RULES


@pytest.mark.parametrize(
    ("from_status", "to_status"), ALL_PAIRS, ids=[f"{a}-{b}" for a, b in ALL_PAIRS]
)
def test_every_transition_follows_the_rules(
    service_agent: Any, from_status: str, to_status: str
) -> None:
    ticket = TicketFactory(status=from_status)

    if to_status in EXPECTED_RULES[from_status]:
        moved = services.ticket_transition(
            by=service_agent,
            ticket=ticket,
            to_status=to_status,
            resolution_summary="更换密封圈后不再漏水。",
        )
        assert moved.status == to_status
        assert moved.version == 2
        assert list(
            TicketTransition.objects.filter(ticket=ticket).values_list(
                "from_status", "to_status", "by"
            )
        ) == [(from_status, to_status, service_agent.pk)]
    else:
        with pytest.raises(ValidationError) as refused:
            services.ticket_transition(
                by=service_agent,
                ticket=ticket,
                to_status=to_status,
                resolution_summary="更换密封圈后不再漏水。",
            )
        assert refused.value.messages == [
            f"工单不能从“{Status(from_status).label}”变为“{Status(to_status).label}”。"
        ]
        ticket.refresh_from_db()
        assert (ticket.status, ticket.version) == (from_status, 1)
        assert not TicketTransition.objects.filter(ticket=ticket).exists()


def test_an_unknown_status_is_refused_with_a_message(service_agent: Any) -> None:
    ticket = TicketFactory(status="in_progress")

    with pytest.raises(ValidationError):
        services.ticket_transition(by=service_agent, ticket=ticket, to_status="deleted")


@pytest.mark.parametrize("summary", ["", "   \n"])
def test_resolving_without_a_summary_is_refused(
    service_agent: Any, summary: str
) -> None:
    ticket = TicketFactory(status="in_progress")

    with pytest.raises(ValidationError) as refused:
        services.ticket_transition(
            by=service_agent,
            ticket=ticket,
            to_status="resolved",
            resolution_summary=summary,
        )

    assert refused.value.message_dict == {
        "resolution_summary": ["解决工单需要填写解决说明。"]
    }
    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolved_at) == ("in_progress", None)


def test_resolve_cancels_the_clocks_and_reopen_gives_a_new_resolution_deadline(
    service_agent: Any, customer: Any, repairs: Any, policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)
    reply(service_agent, ticket, at(MON, 10, 20))
    ticket = transition(
        service_agent,
        ticket,
        "resolved",
        at(MON, 11),
        resolution_summary="  更换密封圈。 ",
    )
    assert (ticket.resolved_at, ticket.resolution_summary) == (
        at(MON, 11),
        "更换密封圈。",
    )
    assert pending_clocks(ticket) == []

    ticket = transition(service_agent, ticket, "in_progress", at(WED, 10))

    ticket.refresh_from_db()
    assert ticket.resolved_at is None
    # 480 business minutes from Wednesday 10:00: 390 that day, 90 on Thursday.
    assert ticket.resolution_due_at == at(THU, 10, 30)
    assert pending_clocks(ticket) == armed("resolution", at(THU, 10), at(THU, 10, 30))


def test_reopening_a_closed_ticket_starts_a_new_resolution_clock(
    service_agent: Any, customer: Any, policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer)  # no category: stays new
    reply(service_agent, ticket, at(MON, 10, 5))
    ticket = transition(service_agent, ticket, "closed", at(MON, 12))
    assert ticket.closed_at == at(MON, 12)
    assert pending_clocks(ticket) == []

    ticket = transition(service_agent, ticket, "in_progress", at(TUE, 9))

    assert (ticket.closed_at, ticket.resolved_at) == (None, None)
    # 450 business minutes on Tuesday, 30 on Wednesday; the warning is at Tuesday's close.
    assert ticket.resolution_due_at == at(WED, 9, 30)
    assert pending_clocks(ticket) == armed("resolution", at(TUE, 18), at(WED, 9, 30))


def test_closing_a_resolved_ticket_keeps_its_resolution_and_records_the_close(
    service_agent: Any, customer: Any, repairs: Any, policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)
    reply(service_agent, ticket, at(MON, 10, 5))
    ticket = transition(
        service_agent, ticket, "resolved", at(MON, 11), resolution_summary="好了"
    )

    transition(service_agent, ticket, "closed", at(WED, 12))

    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert (ticket.resolved_at, ticket.closed_at, ticket.resolution_due_at) == (
        at(MON, 11),
        at(WED, 12),
        at(TUE, 10, 30),
    )


# --- waiting on the customer pauses the clocks ------------------------------------------


def test_waiting_on_the_customer_pauses_both_clocks_by_the_paused_business_time(
    service_agent: Any, customer: Any, repairs: Any, policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)
    old_first, old_resolution = at(MON, 11), at(TUE, 10, 30)

    ticket = transition(service_agent, ticket, "waiting", at(MON, 10, 20))

    assert ticket.paused_at == at(MON, 10, 20)
    assert (ticket.first_response_left, ticket.resolution_left) == (40, 460)
    assert ticket.next_due_at is None
    assert pending_clocks(ticket) == []
    assert (
        ScheduledAction.objects.filter(
            target_id=ticket.pk, state=ScheduledAction.State.CANCELLED
        ).count()
        == 6
    )

    ticket = transition(service_agent, ticket, "in_progress", at(MON, 15))

    calendar = BusinessCalendar.load()
    paused = calendar.minutes_between(at(MON, 10, 20), at(MON, 15))
    assert paused == 190  # 100 before lunch, 90 after
    assert calendar.minutes_between(old_first, ticket.first_response_due_at) == paused
    assert calendar.minutes_between(old_resolution, ticket.resolution_due_at) == paused
    assert ticket.first_response_due_at == at(MON, 15, 40)
    assert ticket.resolution_due_at == at(TUE, 15, 10)
    assert (ticket.paused_at, ticket.first_response_left) == (None, None)
    assert pending_clocks(ticket) == sorted(
        armed("first_response", at(MON, 15, 10), at(MON, 15, 40))
        + armed("resolution", at(TUE, 14, 40), at(TUE, 15, 10))
    )


def test_a_pause_over_the_weekend_moves_the_deadline_by_business_time_only(
    service_agent: Any, customer: Any, repairs: Any, policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)
    reply(service_agent, ticket, at(MON, 10, 10))
    ticket = transition(service_agent, ticket, "waiting", at(TUE, 9, 30))

    ticket = transition(
        service_agent, ticket, "in_progress", at(date(2026, 3, 9), 9, 30)
    )

    # Tuesday 9:30 to the next Monday 9:30 is four working days of 450 minutes.
    calendar = BusinessCalendar.load()
    paused = calendar.minutes_between(at(TUE, 9, 30), at(date(2026, 3, 9), 9, 30))
    assert paused == 4 * 450
    assert calendar.minutes_between(at(TUE, 10, 30), ticket.resolution_due_at) == paused
    assert ticket.resolution_due_at == at(date(2026, 3, 9), 10, 30)


def test_a_pause_over_lunch_keeps_the_escalations_armed(
    service_agent: Any, customer: Any, repairs: Any, policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)
    reply(service_agent, ticket, at(MON, 10, 30))
    ticket = transition(service_agent, ticket, "waiting", at(MON, 12, 10))

    ticket = transition(service_agent, ticket, "in_progress", at(MON, 13, 15))

    assert ticket.resolution_due_at == at(TUE, 10, 30)  # no business time passed
    assert pending_clocks(ticket) == armed("resolution", at(TUE, 10), at(TUE, 10, 30))


# --- conversation ------------------------------------------------------------------------


def test_a_reply_stops_the_first_response_clock_and_a_note_does_not(
    service_agent: Any, customer: Any, repairs: Any, policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)

    reply(service_agent, ticket, at(MON, 10, 10), kind="note")
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None
    assert pending_clocks(ticket) == AT_CREATION

    reply(service_agent, ticket, at(MON, 10, 20))
    reply(service_agent, ticket, at(MON, 10, 40))

    ticket.refresh_from_db()
    assert ticket.first_responded_at == at(MON, 10, 20)
    assert pending_clocks(ticket) == armed("resolution", at(TUE, 10), at(TUE, 10, 30))
    assert ticket.next_due_at == at(TUE, 10, 30)
    assert list(ticket.messages.order_by("pk").values_list("kind", flat=True)) == [
        "note",
        "reply",
        "reply",
    ]


def test_an_empty_message_is_refused(service_agent: Any) -> None:
    ticket = TicketFactory()

    with pytest.raises(ValidationError) as refused:
        services.ticket_message_add(by=service_agent, ticket=ticket, body="  ")

    assert refused.value.message_dict == {"body": ["请填写内容。"]}
    assert not TicketMessage.objects.exists()


# --- concurrent edits --------------------------------------------------------------------


def test_an_update_with_a_stale_version_is_refused_and_changes_nothing(
    service_agent: Any,
) -> None:
    ticket = TicketFactory(subject="旧主题", priority="normal")
    seen_by_b = Ticket.objects.get(pk=ticket.pk)

    services.ticket_update(
        by=service_agent, ticket=ticket, version=1, data={"subject": "A 改的主题"}
    )
    with pytest.raises(services.EditConflict) as conflict:
        services.ticket_update(
            by=service_agent,
            ticket=seen_by_b,
            version=seen_by_b.version,
            data={"subject": "B 改的主题", "priority": "urgent"},
        )

    assert conflict.value.current.subject == "A 改的主题"
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.priority, ticket.version) == (
        "A 改的主题",
        "normal",
        2,
    )


def test_an_update_of_a_field_that_may_not_change_is_refused(
    service_agent: Any,
) -> None:
    ticket = TicketFactory(status="in_progress", subject="工单主题原样")

    with pytest.raises(ValidationError) as refused:
        services.ticket_update(
            by=service_agent,
            ticket=ticket,
            version=1,
            data={"subject": "改主题", "status": "closed"},
        )

    assert refused.value.message_dict == {"status": ["该字段不可修改。"]}
    ticket.refresh_from_db()
    assert (ticket.status, ticket.version, ticket.subject) == (
        "in_progress",
        1,
        "工单主题原样",
    )


@pytest.mark.django_db(transaction=True)
def test_two_agents_moving_one_ticket_at_once_exactly_one_wins(
    service_agent: Any,
) -> None:
    ticket = TicketFactory(status="assigned", assignee=service_agent)
    seen_a = Ticket.objects.get(pk=ticket.pk)
    seen_b = Ticket.objects.get(pk=ticket.pk)

    results = run_together(
        lambda: services.ticket_transition(
            by=service_agent, ticket=seen_a, to_status="in_progress"
        ),
        lambda: services.ticket_transition(
            by=service_agent, ticket=seen_b, to_status="waiting"
        ),
    )

    winners = [r for r in results if isinstance(r, Ticket)]
    losers = [r for r in results if isinstance(r, services.EditConflict)]
    assert (len(winners), len(losers)) == (1, 1), results
    ticket.refresh_from_db()
    assert ticket.status == winners[0].status
    assert losers[0].current.status == winners[0].status
    assert ticket.version == 2
    assert TicketTransition.objects.filter(ticket=ticket).count() == 1


def test_a_priority_change_recomputes_the_due_times_and_the_actions(
    service_agent: Any, customer: Any, repairs: Any, policy: Any, urgent_policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)

    with time_machine.travel(at(MON, 10, 10), tick=False):
        ticket = services.ticket_update(
            by=service_agent,
            ticket=ticket,
            version=ticket.version,
            data={"priority": "urgent"},
        )

    ticket.refresh_from_db()
    assert ticket.sla_policy == urgent_policy
    assert ticket.first_response_due_at == at(MON, 10, 30)
    assert ticket.resolution_due_at == at(MON, 12)
    # 20 business minutes left of the first response: within the warning window.
    assert pending_clocks(ticket) == [
        ("first_response", "breach", at(MON, 10, 30)),
        ("first_response", "manager", at(MON, 11, 30)),
        ("resolution", "breach", at(MON, 12)),
        ("resolution", "manager", at(MON, 13)),
        ("resolution", "warning", at(MON, 11, 30)),
    ]


def test_changing_the_priority_back_keeps_the_escalations_armed(
    service_agent: Any, customer: Any, repairs: Any, policy: Any, urgent_policy: Any
) -> None:
    ticket = open_ticket(service_agent, customer, category=repairs)
    for minute, priority in ((5, "urgent"), (10, "normal")):
        with time_machine.travel(at(MON, 10, minute), tick=False):
            ticket = services.ticket_update(
                by=service_agent,
                ticket=ticket,
                version=ticket.version,
                data={"priority": priority},
            )

    assert ticket.first_response_due_at == at(MON, 11)
    assert pending_clocks(ticket) == AT_CREATION


def test_a_priority_change_after_a_pause_keeps_the_paused_time_excluded(
    service_agent: Any, customer: Any, repairs: Any, policy: Any
) -> None:
    SLAPolicyFactory(ticket_type="repair", priority="high", resolution_minutes=960)
    ticket = open_ticket(service_agent, customer, category=repairs)
    reply(service_agent, ticket, at(MON, 10, 30))
    ticket = transition(service_agent, ticket, "waiting", at(MON, 11))
    ticket = transition(service_agent, ticket, "in_progress", at(WED, 11))
    calendar = BusinessCalendar.load()
    paused = calendar.minutes_between(at(MON, 11), at(WED, 11))

    with time_machine.travel(at(WED, 11, 30), tick=False):
        ticket = services.ticket_update(
            by=service_agent,
            ticket=ticket,
            version=ticket.version,
            data={"priority": "high"},
        )

    assert ticket.resolution_due_at == calendar.add_minutes(at(MON, 10), 960 + paused)


# --- merge and link ---------------------------------------------------------------------


def test_merge_moves_the_conversation_and_attachments_and_closes_the_duplicate(
    service_agent: Any, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    target = TicketFactory(status="in_progress")
    duplicate = TicketFactory(status="assigned", customer=target.customer)
    TicketMessageFactory(ticket=target, body="原工单的回复")
    TicketMessageFactory.create_batch(2, ticket=duplicate)
    services.attachment_add(
        by=service_agent,
        ticket=duplicate,
        upload=SimpleUploadedFile("现场.png", PNG, "image/png"),
    )

    merged = services.ticket_merge(by=service_agent, target=target, duplicate=duplicate)

    assert merged.pk == target.pk
    duplicate.refresh_from_db()
    assert (duplicate.merged_into, duplicate.status) == (target, Status.CLOSED)
    assert duplicate.closed_at is not None
    assert not duplicate.messages.exists()
    assert target.messages.count() == 4  # 1 + 2 moved + the merge note
    note = target.messages.get(kind="note")
    assert duplicate.reference in note.body
    assert list(target.attachments.values_list("original_name", flat=True)) == [
        "现场.png"
    ]
    assert TicketTransition.objects.filter(
        ticket=duplicate, from_status="assigned", to_status="closed"
    ).exists()


def test_merge_refuses_already_merged_tickets_and_itself(service_agent: Any) -> None:
    a = TicketFactory()
    b, c = TicketFactory.create_batch(2, customer=a.customer)
    services.ticket_merge(by=service_agent, target=a, duplicate=b)

    for target, duplicate in ((c, b), (b, c), (b, a)):
        with pytest.raises(ValidationError) as refused:
            services.ticket_merge(by=service_agent, target=target, duplicate=duplicate)
        assert refused.value.messages == ["其中一张工单已被合并，请刷新后重试。"]
    with pytest.raises(ValidationError) as refused:
        services.ticket_merge(by=service_agent, target=c, duplicate=c)
    assert refused.value.messages == ["不能与自己合并。"]
    assert list(
        Ticket.objects.exclude(merged_into=None).values_list("pk", "merged_into")
    ) == [(b.pk, a.pk)]


@pytest.mark.django_db(transaction=True)
def test_merging_a_into_b_and_b_into_a_at_once_lets_only_one_through(
    service_agent: Any,
) -> None:
    a = TicketFactory()
    b = TicketFactory(customer=a.customer)
    TicketMessageFactory(ticket=a)
    TicketMessageFactory(ticket=b)

    results = run_together(
        lambda: services.ticket_merge(by=service_agent, target=a, duplicate=b),
        lambda: services.ticket_merge(by=service_agent, target=b, duplicate=a),
    )

    assert sorted(type(r).__name__ for r in results) == ["Ticket", "ValidationError"]
    merged = list(Ticket.objects.exclude(merged_into=None))
    assert len(merged) == 1
    survivor = merged[0].merged_into
    assert survivor.merged_into is None
    assert survivor.messages.filter(kind="reply").count() == 2


def test_a_link_is_stored_once_whichever_way_it_is_made(service_agent: Any) -> None:
    a, b = TicketFactory.create_batch(2)

    services.ticket_link(by=service_agent, ticket=b, other=a)
    services.ticket_link(by=service_agent, ticket=a, other=b)

    assert list(TicketLink.objects.values_list("a", "b")) == [(a.pk, b.pk)]
    with pytest.raises(ValidationError):
        services.ticket_link(by=service_agent, ticket=a, other=a)


# --- the resolve hook --------------------------------------------------------------------


@pytest.fixture
def resolved_hook(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """A subscriber such as the survey app, on a registry emptied for this test."""
    monkeypatch.setattr(events, "_resolved_hooks", [])
    calls: list[tuple[int, str]] = []
    events.on_ticket_resolved(lambda ticket: calls.append((ticket.pk, ticket.status)))
    return calls


def test_the_resolved_event_is_emitted_after_commit_only(
    service_agent: Any,
    resolved_hook: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = TicketFactory(status="in_progress")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.ticket_transition(
            by=service_agent,
            ticket=ticket,
            to_status="resolved",
            resolution_summary="已更换滤网。",
        )
        assert resolved_hook == []

    assert len(callbacks) == 1
    assert resolved_hook == []
    callbacks[0]()
    assert resolved_hook == [(ticket.pk, "resolved")]


def test_the_resolved_event_is_not_emitted_when_the_transaction_rolls_back(
    service_agent: Any,
    resolved_hook: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = TicketFactory(status="in_progress")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.ticket_transition(
                by=service_agent,
                ticket=ticket,
                to_status="resolved",
                resolution_summary="已更换滤网。",
            )
            raise RuntimeError("the caller's transaction fails")

    assert callbacks == []
    assert resolved_hook == []
    ticket.refresh_from_db()
    assert ticket.status == "in_progress"


def test_other_transitions_emit_no_resolved_event(
    service_agent: Any,
    resolved_hook: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticket = TicketFactory(status="in_progress")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.ticket_transition(by=service_agent, ticket=ticket, to_status="waiting")

    assert (callbacks, resolved_hook) == ([], [])


# --- attachments -------------------------------------------------------------------------


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("name", "shown_as"),
    [
        ("现场照片.png", "现场照片.png"),
        ("../../etc/cron.d/x.PNG", "x.PNG"),
    ],
)
def test_an_image_is_stored_under_a_random_name(
    service_agent: Any, media: Path, name: str, shown_as: str
) -> None:
    ticket = TicketFactory()

    attachment = services.attachment_add(
        by=service_agent,
        ticket=ticket,
        upload=SimpleUploadedFile(name, PNG, "text/html"),
    )

    attachment.refresh_from_db()
    assert re.fullmatch(r"tickets/\d{4}/\d{2}/[0-9a-f]{32}\.png", attachment.file.name)
    assert attachment.original_name == shown_as
    assert (attachment.content_type, attachment.size) == ("image/png", len(PNG))
    assert attachment.uploaded_by == service_agent
    [stored] = stored_files(media)
    assert stored.read_bytes() == PNG
    assert stored.is_relative_to(media / "tickets")


def test_a_file_of_exactly_the_limit_is_accepted(
    service_agent: Any, media: Path
) -> None:
    content = b"%PDF" + b"0" * (services.MAX_UPLOAD_BYTES - 4)

    attachment = services.attachment_add(
        by=service_agent,
        ticket=TicketFactory(),
        upload=SimpleUploadedFile("合同.pdf", content, "application/pdf"),
    )

    assert attachment.size == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param(
            "big.png",
            PNG + b"\x00" * (10 * 1024 * 1024 + 1 - len(PNG)),
            "文件不能超过 10 MB。",
            id="one-byte-over-10MB",
        ),
        pytest.param("empty.png", b"", "文件是空的。", id="empty"),
        pytest.param(
            "page.html",
            b"<html><script>alert(1)</script></html>",
            "只能上传图片（JPG、PNG、WebP）、PDF、Word 或 Excel 文件。",
            id="html",
        ),
        pytest.param(
            "logo.svg",
            b"<svg onload=alert(1)>",
            "只能上传图片（JPG、PNG、WebP）、PDF、Word 或 Excel 文件。",
            id="svg",
        ),
        pytest.param(
            "setup.exe",
            b"MZ\x90\x00",
            "只能上传图片（JPG、PNG、WebP）、PDF、Word 或 Excel 文件。",
            id="exe",
        ),
        pytest.param(
            "README",
            b"%PDF-1.7",
            "只能上传图片（JPG、PNG、WebP）、PDF、Word 或 Excel 文件。",
            id="no-extension",
        ),
        pytest.param(
            "photo.png",
            b"<html><script>alert(1)</script></html>",
            "文件内容与扩展名不符。",
            id="html-renamed-png",
        ),
        pytest.param("scan.pdf", PNG, "文件内容与扩展名不符。", id="png-renamed-pdf"),
    ],
)
def test_a_bad_upload_is_refused_and_nothing_is_stored(
    service_agent: Any, media: Path, name: str, content: bytes, message: str
) -> None:
    ticket = TicketFactory()

    with pytest.raises(ValidationError) as refused:
        services.attachment_add(
            by=service_agent,
            ticket=ticket,
            upload=SimpleUploadedFile(name, content, "image/png"),
        )

    assert refused.value.message_dict == {"file": [message]}
    assert not TicketAttachment.objects.exists()
    assert stored_files(media) == []


def test_a_riff_file_that_is_not_webp_is_refused(
    service_agent: Any, media: Path
) -> None:
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\x00" * 32

    with pytest.raises(ValidationError):
        services.attachment_add(
            by=service_agent,
            ticket=TicketFactory(),
            upload=SimpleUploadedFile("voice.webp", wav, "image/webp"),
        )
