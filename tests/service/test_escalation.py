"""SLA warnings and escalations through the real scheduled-action pipeline.

The beat-driven sweep (actions_sweep) and the Celery task's body (action_deliver) are
called directly at fixed Asia/Shanghai times; notifications and e-mails (locmem) are
counted. A complaint opened on Monday 2026-03-02 at 10:00 under a 60/480-minute policy
with a 30-minute warning: first response due 11:00 (warning 10:30), resolution due
Tuesday 10:30 (warning 10:00); the managers are told 45 minutes after a breach.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler import registry
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import calendar_data, services
from service.models import Ticket
from tests.channels.delivery import deliver_messages
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    SLAPolicyFactory,
    TeamFactory,
    UserFactory,
)

SH = ZoneInfo("Asia/Shanghai")
MON, TUE = date(2026, 3, 2), date(2026, 3, 3)
State = ScheduledAction.State


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SH)


class DeliveryFailed(AssertionError):
    """action_deliver ran the handler and it raised; carries the row's last_error."""


class BrokenMailBackend(BaseEmailBackend):
    """The outside world's mail gateway, down."""

    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError("mail gateway unreachable")


@pytest.fixture
def desk(
    service_agent: Any, manager: Any, admin_user: Any, settings: Any
) -> SimpleNamespace:
    """The desk team (one agent), its lead and the department's manager in a
    management team, and a manager of another department who must hear nothing."""
    settings.KEHU_ESCALATION_MANAGER_MINUTES = 45
    calendar_data.calendar_seed(years=[2026])
    team = service_agent.team
    management = TeamFactory(name="客服管理组", department=team.department)
    lead = UserFactory(
        username="desk_lead", team=management, role=Role.SERVICE, email="lead@x.cn"
    )
    desk_manager = UserFactory(
        username="desk_manager",
        team=management,
        role=Role.MANAGER,
        email="boss@x.cn",
    )
    team.lead = lead
    team.save()
    service_agent.email = "agent@x.cn"
    service_agent.save()
    manager.email = "sales-boss@x.cn"
    manager.save()
    SLAPolicyFactory(
        ticket_type="complaint",
        priority="normal",
        first_response_minutes=60,
        resolution_minutes=480,
        warn_before_minutes=30,
    )
    return SimpleNamespace(
        agent=service_agent,
        lead=lead,
        manager=desk_manager,
        other_manager=manager,
        admin=admin_user,
        category=CategoryFactory(name="投诉", team=team),
    )


@pytest.fixture
def ticket(desk: SimpleNamespace) -> Ticket:
    with time_machine.travel(at(MON, 10), tick=False):
        ticket = services.ticket_create(
            by=desk.admin,
            customer=CustomerFactory(name="李女士"),
            ticket_type="complaint",
            channel="hotline",
            subject="物业维修迟迟不来",
            description="报修三天无人上门。",
            category=desk.category,
        )
    assert ticket.assignee == desk.agent
    return ticket


def complaint_tickets(desk: SimpleNamespace, n: int, *, start: int = 0) -> list[Ticket]:
    """`n` more of the day's complaints, opened Monday 10:00 (李女士{i}, numbered from
    `start`): what the sweep and chunk tests deliver together."""
    made = []
    for i in range(start, start + n):
        with time_machine.travel(at(MON, 10), tick=False):
            made.append(
                services.ticket_create(
                    by=desk.admin,
                    customer=CustomerFactory(name=f"李女士{i}"),
                    ticket_type="complaint",
                    channel="hotline",
                    subject=f"物业维修迟迟不来 {i}",
                    description="报修三天无人上门。",
                    category=desk.category,
                )
            )
    return made


def sweep(when: datetime) -> list[int]:
    with time_machine.travel(when, tick=False):
        return scheduler.actions_sweep(now=when)


def deliver(action_id: int, when: datetime) -> bool:
    with time_machine.travel(when, tick=False):
        return scheduler.action_deliver(action_id=action_id, now=when)


def delivered_ok(action_id: int, when: datetime) -> bool:
    """Deliver; a handler that raised is reported with the error it left on the row."""
    if deliver(action_id, when):
        return True
    row = ScheduledAction.objects.get(pk=action_id)
    if row.last_error:
        raise DeliveryFailed(row.last_error)
    return False


def run(when: datetime) -> list[tuple[str, str]]:
    """One beat: sweep, then a worker delivers every claimed action."""
    delivered = []
    for action_id in sweep(when):
        assert delivered_ok(action_id, when)
        key = ScheduledAction.objects.get(pk=action_id).idempotency_key
        delivered.append(tuple(key.split(":")[2:4]))
    return sorted(delivered)


def inbox(user: Any) -> list[str]:
    return list(
        Notification.objects.filter(recipient=user)
        .order_by("pk")
        .values_list("title", flat=True)
    )


def action(ticket: Ticket, metric: str, stage: str) -> ScheduledAction:
    return ScheduledAction.objects.get(
        target_id=ticket.pk,
        kind__in=services.SLA_KINDS,
        idempotency_key__contains=f":{metric}:{stage}:",
    )


def test_warning_breach_and_manager_escalation_arrive_once_at_the_right_times(
    desk: SimpleNamespace, ticket: Ticket
) -> None:
    ref = ticket.reference
    assigned = f"新工单 {ref}：物业维修迟迟不来"

    assert run(at(MON, 10, 29, 59)) == []
    assert run(at(MON, 10, 30)) == [("first_response", "warning")]
    assert inbox(desk.agent) == [assigned, f"即将超时（首次响应）：{ref}"]
    assert inbox(desk.lead) == []

    assert run(at(MON, 10, 59)) == []
    assert run(at(MON, 11)) == [("first_response", "breach")]
    ticket.refresh_from_db()
    assert (ticket.first_response_breached, ticket.escalation_level) == (True, 1)
    breach = f"已超时（首次响应），升级到组长：{ref}"
    assert inbox(desk.lead) == [breach]
    assert inbox(desk.agent)[-1] == breach
    assert inbox(desk.manager) == []

    assert run(at(MON, 11, 44)) == []
    assert run(at(MON, 11, 45)) == [("first_response", "manager")]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 2
    assert inbox(desk.manager) == [f"超时未处理，升级到经理：{ref}"]
    assert inbox(desk.other_manager) == []

    # The resolution clock runs on: a warning, then a breach that keeps level 2.
    assert run(at(MON, 18)) == []
    assert run(at(TUE, 10)) == [("resolution", "warning")]
    assert run(at(TUE, 10, 30)) == [("resolution", "breach")]
    ticket.refresh_from_db()
    assert (ticket.resolution_breached, ticket.escalation_level) == (True, 2)

    assert len(inbox(desk.agent)) == 5
    assert len(inbox(desk.lead)) == 2
    # Every escalation is also e-mailed once (the assignment notice is in-app only).
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        ["agent@x.cn"] * 4 + ["lead@x.cn"] * 2 + ["boss@x.cn"]
    )
    assert len({m.extra_headers["X-Kehu-Idempotency-Key"] for m in mail.outbox}) == 7


def test_delivering_twice_or_sweeping_twice_sends_nothing_twice(
    desk: SimpleNamespace, ticket: Ticket
) -> None:
    [warning] = sweep(at(MON, 10, 30))
    assert sweep(at(MON, 10, 30)) == []  # claimed: a second sweeper skips it

    assert delivered_ok(warning, at(MON, 10, 30)) is True
    assert deliver(warning, at(MON, 10, 30, 1)) is False  # a redelivered message
    assert sweep(at(MON, 10, 32)) == []  # done, not swept again

    assert inbox(desk.agent)[1:] == [f"即将超时（首次响应）：{ticket.reference}"]
    assert len(mail.outbox) == 1
    assert ScheduledAction.objects.get(pk=warning).state == State.DONE


def test_an_escalation_lost_with_redis_is_swept_again_after_its_lease(
    desk: SimpleNamespace, ticket: Ticket
) -> None:
    # The beat was down since 10:00: its first sweep claims the missed warning and the
    # breach and publishes them, and Redis restarts empty.
    lost = sweep(at(MON, 11))
    assert len(lost) == 2
    assert sweep(at(MON, 11, 0, 30)) == []  # still leased (60 s)

    again = sweep(at(MON, 11, 1, 1))
    assert sorted(again) == sorted(lost)
    for action_id in again:
        assert delivered_ok(action_id, at(MON, 11, 1, 1)) is True
    # The first messages were only delayed after all: they change nothing.
    for action_id in lost:
        assert deliver(action_id, at(MON, 11, 1, 2)) is False

    ticket.refresh_from_db()
    assert (ticket.first_response_breached, ticket.escalation_level) == (True, 1)
    assert len(inbox(desk.lead)) == 1
    assert len(inbox(desk.agent)) == 3  # assigned, warning, breach
    assert sorted(m.to[0] for m in mail.outbox) == [
        "agent@x.cn",
        "agent@x.cn",
        "lead@x.cn",
    ]


def test_a_worker_killed_while_sending_is_redelivered_once(
    desk: SimpleNamespace, ticket: Ticket
) -> None:
    [warning] = sweep(at(MON, 10, 30))
    # What a worker killed inside the handler leaves behind: its transaction rolled
    # back, the row still claimed by it.
    ScheduledAction.objects.filter(pk=warning).update(
        state=State.SENDING, attempts=1, lease_until=at(MON, 10, 31)
    )
    assert sweep(at(MON, 10, 30, 50)) == []

    assert sweep(at(MON, 10, 31, 1)) == [warning]
    assert delivered_ok(warning, at(MON, 10, 31, 1)) is True

    assert len(inbox(desk.agent)) == 2
    assert len(mail.outbox) == 1
    assert ScheduledAction.objects.get(pk=warning).attempts == 2


def test_a_mail_gateway_outage_retries_the_escalation_and_sends_it_once(
    desk: SimpleNamespace, ticket: Ticket, settings: Any
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.BrokenMailBackend"
    [warning] = sweep(at(MON, 10, 30))

    assert deliver(warning, at(MON, 10, 30)) is False

    row = ScheduledAction.objects.get(pk=warning)
    if "ConnectionRefusedError" not in row.last_error:
        raise DeliveryFailed(row.last_error)  # it failed before reaching the mail
    assert (row.state, row.due_at) == (State.PENDING, at(MON, 10, 30, 20))
    assert len(inbox(desk.agent)) == 1  # the in-app notice rolled back with it

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert sweep(at(MON, 10, 30, 19)) == []
    assert run(at(MON, 10, 30, 20)) == [("first_response", "warning")]
    assert len(inbox(desk.agent)) == 2
    assert len(mail.outbox) == 1


def test_a_reply_before_the_breach_cancels_the_first_response_escalation(
    desk: SimpleNamespace, ticket: Ticket
) -> None:
    with time_machine.travel(at(MON, 10, 25), tick=False):
        services.ticket_message_add(
            by=desk.agent, ticket=ticket, body="已安排师傅今天下午上门。"
        )
        # Sent at once by the development SMS backend: that stops the clock.
        deliver_messages(at(MON, 10, 25))

    assert run(at(MON, 10, 30)) == []
    assert run(at(MON, 11)) == []
    assert run(at(MON, 11, 45)) == []

    ticket.refresh_from_db()
    assert (ticket.first_response_breached, ticket.escalation_level) == (False, 0)
    assert inbox(desk.agent)[1:] == inbox(desk.lead) == inbox(desk.manager) == []
    assert action(ticket, "first_response", "warning").state == State.CANCELLED
    assert action(ticket, "first_response", "breach").state == State.CANCELLED
    assert action(ticket, "resolution", "breach").state == State.PENDING
    # Had a worker already been running the breach, the handler does nothing now.
    stale = action(ticket, "first_response", "breach")
    registry.get(stale.kind).handler(stale)
    ticket.refresh_from_db()
    assert (ticket.first_response_breached, inbox(desk.lead)) == (False, [])


def test_waiting_on_the_customer_cancels_every_pending_escalation(
    desk: SimpleNamespace, ticket: Ticket
) -> None:
    with time_machine.travel(at(MON, 10, 15), tick=False):
        services.ticket_transition(
            by=desk.agent, ticket=ticket, to_status="waiting", now=at(MON, 10, 15)
        )

    for when in (at(MON, 10, 30), at(MON, 11), at(MON, 11, 45), at(TUE, 10, 30)):
        assert run(when) == []

    assert not ScheduledAction.objects.filter(
        target_id=ticket.pk, state__in=[State.PENDING, State.DISPATCHED]
    ).exists()
    assert len(inbox(desk.agent)) == 1
    assert inbox(desk.lead) == inbox(desk.manager) == []
    assert mail.outbox == []


def test_a_claimed_escalation_whose_deadline_moved_is_a_no_op(
    desk: SimpleNamespace, ticket: Ticket
) -> None:
    [warning] = sweep(at(MON, 10, 30))  # claimed, not yet delivered
    for when, status in (
        (at(MON, 10, 31), "waiting"),
        (at(MON, 10, 41), "in_progress"),
    ):
        with time_machine.travel(when, tick=False):
            ticket = services.ticket_transition(
                by=desk.agent, ticket=ticket, to_status=status, now=when
            )
    # 29 whole business minutes were left at the pause: the deadline moved to 11:10.
    assert ticket.first_response_due_at == at(MON, 11, 10)

    assert deliver(warning, at(MON, 10, 41)) is False  # cancelled by the pause
    stale = ScheduledAction.objects.get(pk=warning)
    registry.get(stale.kind).handler(stale)  # a worker already inside the handler
    assert run(at(MON, 11)) == []

    ticket.refresh_from_db()
    assert (ticket.first_response_breached, ticket.escalation_level) == (False, 0)
    assert inbox(desk.agent)[1:] == inbox(desk.lead) == []
    # The moved deadline has its own breach, due at 11:10.
    armed = ScheduledAction.objects.filter(
        target_id=ticket.pk,
        state=State.PENDING,
        idempotency_key__contains=":first_response:breach:",
    )
    assert [row.due_at for row in armed] == [at(MON, 11, 10)]


def test_resolving_cancels_every_escalation(
    desk: SimpleNamespace, ticket: Ticket
) -> None:
    with time_machine.travel(at(MON, 10, 20), tick=False):
        services.ticket_transition(
            by=desk.agent,
            ticket=ticket,
            to_status="resolved",
            resolution_summary="已电话致歉并安排维修。",
        )

    for when in (at(MON, 10, 30), at(MON, 11), at(TUE, 10), at(TUE, 11, 30)):
        assert run(when) == []
    assert inbox(desk.lead) == []
    assert mail.outbox == []


def test_without_an_assignee_the_warning_goes_to_the_team_lead(
    desk: SimpleNamespace,
) -> None:
    desk.agent.is_away = True
    desk.agent.save()
    with time_machine.travel(at(MON, 10), tick=False):
        ticket = services.ticket_create(
            by=desk.admin,
            customer=CustomerFactory(),
            ticket_type="complaint",
            channel="wechat",
            subject="无人处理",
            description="周一上午来的投诉。",
            category=desk.category,
        )
    assert ticket.assignee is None

    assert run(at(MON, 10, 30)) == [("first_response", "warning")]
    assert run(at(MON, 11)) == [("first_response", "breach")]

    assert inbox(desk.lead) == [
        f"即将超时（首次响应）：{ticket.reference}",
        f"已超时（首次响应），升级到组长：{ticket.reference}",
    ]
    assert Notification.objects.filter(recipient=desk.agent).count() == 0
    assert ScheduledAction.objects.filter(state=State.DONE).count() == 2
    assert timedelta(minutes=45) == (
        action(ticket, "first_response", "manager").due_at - at(MON, 11)
    )
