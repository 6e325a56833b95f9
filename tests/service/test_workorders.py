"""Back-office work orders (后台围绕前台转): the desk asks engineering, engineering
answers, late orders escalate through the scheduled-action pipeline, the desk rates.
Clocks fixed on Monday 2026-03-02 (Asia/Shanghai); the order is due at 16:00."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import services
from service.models import WorkOrder
from tests.factories import (
    DepartmentFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
    WorkOrderFactory,
)

SH = ZoneInfo("Asia/Shanghai")
State = ScheduledAction.State


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, second, tzinfo=SH)


@pytest.fixture
def office(service_agent: Any, manager: Any, admin_user: Any) -> SimpleNamespace:
    """Engineering (a team with a lead and a worker, and a manager in another of its
    teams), the desk agent who owns the ticket, and a sales manager elsewhere."""
    engineering = DepartmentFactory(name="工程部")
    crew = TeamFactory(name="工程维修组", department=engineering)
    lead = UserFactory(
        username="eng_lead", team=crew, role=Role.SERVICE, email="lead@x.cn"
    )
    crew.lead = lead
    crew.save()
    service_agent.email = "desk@x.cn"
    service_agent.save()
    return SimpleNamespace(
        engineering=engineering,
        lead=lead,
        worker=UserFactory(username="eng_worker", team=crew, role=Role.SERVICE),
        boss=UserFactory(
            username="eng_boss",
            team=TeamFactory(name="工程管理组", department=engineering),
            role=Role.MANAGER,
            email="boss@x.cn",
        ),
        desk=service_agent,
        other_manager=manager,
        admin=admin_user,
        ticket=TicketFactory(
            status="in_progress", assignee=service_agent, team=service_agent.team
        ),
    )


@pytest.fixture
def order(office: SimpleNamespace) -> WorkOrder:
    """The desk's order to engineering at 10:00, announced by the pipeline at once."""
    with time_machine.travel(at(10), tick=False):
        created = services.workorder_create(
            by=office.desk,
            ticket=office.ticket,
            department=office.engineering,
            title="  更换楼道水管  ",
            description="3 号楼 2 单元漏水。",
            due_at=at(16),
        )
    run(at(10))
    mail.outbox.clear()
    return created


def update(
    by: Any, order: WorkOrder, status: str, when: datetime, result: str = ""
) -> WorkOrder:
    with time_machine.travel(when, tick=False):
        return services.workorder_update(
            by=by, order=order, status=status, result=result
        )


def run(when: datetime) -> list[int]:
    with time_machine.travel(when, tick=False):
        ids = scheduler.actions_sweep(now=when)
        for action_id in ids:
            assert scheduler.action_deliver(action_id=action_id, now=when)
    return ids


def inbox(user: Any) -> list[str]:
    return list(
        Notification.objects.filter(recipient=user)
        .order_by("pk")
        .values_list("title", flat=True)
    )


NEW = "新后台工单（工程部）：更换楼道水管"


def overdue_action(order: WorkOrder) -> ScheduledAction:
    return ScheduledAction.objects.get(
        kind=services.WORKORDER_OVERDUE, target_id=order.pk
    )


def test_create_saves_the_order_and_schedules_its_overdue_check(
    office: SimpleNamespace, order: WorkOrder
) -> None:
    order.refresh_from_db()
    assert (order.title, order.status, order.created_by) == (
        "更换楼道水管",
        "open",
        office.desk,
    )
    assert (order.ticket, order.department) == (office.ticket, office.engineering)
    action = overdue_action(order)
    assert (action.state, action.due_at) == (State.PENDING, at(16))


def test_create_refuses_a_due_time_in_the_past_and_saves_nothing(
    office: SimpleNamespace,
) -> None:
    with (
        time_machine.travel(at(10), tick=False),
        pytest.raises(ValidationError) as refused,
    ):
        services.workorder_create(
            by=office.desk,
            ticket=office.ticket,
            department=office.engineering,
            title="更换水管",
            due_at=at(9, 59),
        )

    assert refused.value.message_dict == {"due_at": ["完成时限必须晚于现在。"]}
    assert not WorkOrder.objects.exists()
    assert not ScheduledAction.objects.exists()


def test_salespeople_may_not_open_work_orders(
    office: SimpleNamespace, sales_rep: Any
) -> None:
    with pytest.raises(PermissionDenied):
        services.workorder_create(
            by=sales_rep,
            ticket=office.ticket,
            department=office.engineering,
            title="更换水管",
            due_at=at(16),
        )
    assert not WorkOrder.objects.exists()


@pytest.mark.parametrize("who", ["worker", "lead", "boss", "admin"])
def test_engineering_members_and_admins_may_work_on_the_order(
    office: SimpleNamespace, order: WorkOrder, who: str
) -> None:
    user = getattr(office, who)

    changed = update(user, order, "in_progress", at(11))

    assert (changed.status, changed.assignee) == ("in_progress", user)


@pytest.mark.parametrize("who", ["desk", "other_manager", "outsider"])
def test_people_outside_the_department_get_permission_denied(
    office: SimpleNamespace, order: WorkOrder, outsider: Any, who: str
) -> None:
    user = outsider if who == "outsider" else getattr(office, who)

    with pytest.raises(PermissionDenied):
        update(user, order, "done", at(11), result="已修好")

    order.refresh_from_db()
    assert (order.status, order.assignee, order.result) == ("open", None, "")


def test_done_needs_a_result(office: SimpleNamespace, order: WorkOrder) -> None:
    with pytest.raises(ValidationError) as refused:
        update(office.worker, order, "done", at(11), result="  ")

    assert refused.value.message_dict == {"result": ["完成时请填写处理结果。"]}
    order.refresh_from_db()
    assert order.status == "open"


def test_an_unknown_status_is_refused(
    office: SimpleNamespace, order: WorkOrder
) -> None:
    with pytest.raises(ValidationError) as refused:
        update(office.worker, order, "archived", at(11))

    assert refused.value.message_dict == {"status": ["状态无效。"]}


def test_a_finished_order_notifies_the_ticket_assignee_and_stops_its_clock(
    office: SimpleNamespace, order: WorkOrder
) -> None:
    update(office.worker, order, "in_progress", at(11))

    done = update(
        office.worker, order, "done", at(14), result="  已更换水管，不再漏水。 "
    )

    assert (done.status, done.result, done.completed_at) == (
        "done",
        "已更换水管，不再漏水。",
        at(14),
    )
    assert inbox(office.desk) == ["后台工单已处理：更换楼道水管"]
    # The engineer who did it is not told of their own work.
    assert inbox(office.worker) == [NEW]
    assert overdue_action(order).state == State.CANCELLED
    assert run(at(16)) == []
    done.refresh_from_db()
    assert done.is_overdue is False
    with pytest.raises(ValidationError) as refused:
        update(office.worker, order, "in_progress", at(15))
    assert refused.value.messages == ["该后台工单已结束，不能再修改。"]
    assert inbox(office.desk) == ["后台工单已处理：更换楼道水管"]


def test_a_late_order_is_flagged_and_escalated_once(
    office: SimpleNamespace, order: WorkOrder
) -> None:
    update(office.worker, order, "in_progress", at(11))

    assert run(at(15, 59)) == []
    [action_id] = run(at(16))
    # A second delivery of the same message and a second sweep change nothing.
    with time_machine.travel(at(16, 0, 5), tick=False):
        assert scheduler.action_deliver(action_id=action_id) is False
    assert run(at(16, 5)) == []

    order.refresh_from_db()
    assert order.is_overdue is True
    late = "后台工单超时：更换楼道水管"
    for person in (office.boss, office.lead, office.worker):
        assert inbox(person) == [NEW, late], person
    assert inbox(office.desk) == [late]
    assert inbox(office.other_manager) == []
    assert sorted(m.to[0] for m in mail.outbox) == [
        "boss@x.cn",
        "desk@x.cn",
        "lead@x.cn",
    ]


def test_rating_is_for_done_orders_only_and_from_one_to_five(
    office: SimpleNamespace, order: WorkOrder
) -> None:
    with pytest.raises(ValidationError) as refused:
        services.workorder_rate(by=office.desk, order=order, rating=5)
    assert refused.value.messages == ["只能评价已完成的后台工单。"]

    done = update(office.worker, order, "done", at(14), result="已修好")
    for bad in (0, 6, -1):
        with pytest.raises(ValidationError) as refused:
            services.workorder_rate(by=office.desk, order=done, rating=bad)
        assert refused.value.message_dict == {"rating": ["评分为 1 到 5 分。"]}

    services.workorder_rate(by=office.desk, order=done, rating=4)

    done.refresh_from_db()
    assert done.rating == 4


def test_a_rejected_order_cannot_be_rated(
    office: SimpleNamespace, order: WorkOrder
) -> None:
    rejected = update(office.worker, order, "rejected", at(12), result="不属于工程部")

    with pytest.raises(ValidationError):
        services.workorder_rate(by=office.desk, order=rejected, rating=5)
    assert inbox(office.desk) == ["后台工单已处理：更换楼道水管"]


def test_salespeople_may_not_rate(
    office: SimpleNamespace, order: WorkOrder, sales_rep: Any
) -> None:
    done = update(office.worker, order, "done", at(14), result="已修好")

    with pytest.raises(PermissionDenied):
        services.workorder_rate(by=sales_rep, order=done, rating=1)


@pytest.mark.parametrize("rating", [0, 6])
def test_the_database_refuses_a_rating_out_of_range(db: None, rating: int) -> None:
    order = WorkOrderFactory(status="done", result="已修好")

    with pytest.raises(IntegrityError), transaction.atomic():
        WorkOrder.objects.filter(pk=order.pk).update(rating=rating)


# --- the department hears of a new order ------------------------------------------------


def reasons(user: Any) -> list[tuple[str, str]]:
    return list(
        Notification.objects.filter(recipient=user)
        .order_by("pk")
        .values_list("title", "reason")
    )


def test_a_new_order_notifies_every_member_of_the_department_once(
    office: SimpleNamespace, order: WorkOrder
) -> None:
    for person in (office.lead, office.worker, office.boss):
        assert reasons(person) == [(NEW, "你是该部门成员")], person
    # Not the desk agent who sent it, nobody outside engineering.
    for person in (office.desk, office.other_manager, office.admin):
        assert inbox(person) == [], person
    # A second sweep or a redelivery sends nothing twice.
    action = ScheduledAction.objects.get(
        kind=services.WORKORDER_CREATED, target_id=order.pk
    )
    assert action.state == State.DONE
    assert run(at(10, 5)) == []
    assert Notification.objects.filter(title=NEW).count() == 3


def test_the_announcement_is_e_mailed_to_members_with_an_address(
    office: SimpleNamespace,
) -> None:
    with time_machine.travel(at(10), tick=False):
        services.workorder_create(
            by=office.desk,
            ticket=office.ticket,
            department=office.engineering,
            title="检修电梯",
            due_at=at(16),
        )
    run(at(10))
    assert sorted(m.to[0] for m in mail.outbox) == ["boss@x.cn", "lead@x.cn"]
    assert {m.subject for m in mail.outbox} == {"新后台工单（工程部）：检修电梯"}


def test_when_every_member_is_away_the_team_leads_hear_of_it(
    office: SimpleNamespace,
) -> None:
    get_user_model().objects.filter(team__department=office.engineering).update(
        is_away=True
    )
    with time_machine.travel(at(10), tick=False):
        services.workorder_create(
            by=office.desk,
            ticket=office.ticket,
            department=office.engineering,
            title="检修电梯",
            due_at=at(16),
        )
    run(at(10))
    assert reasons(office.lead) == [
        ("新后台工单（工程部）：检修电梯", "你是该部门的组长（部门成员都不在岗）")
    ]
    assert inbox(office.worker) == inbox(office.boss) == []


def test_a_member_who_sends_an_order_to_their_own_department_is_not_told(
    office: SimpleNamespace,
) -> None:
    with time_machine.travel(at(10), tick=False):
        services.workorder_create(
            by=office.lead,
            ticket=office.ticket,
            department=office.engineering,
            title="检修电梯",
            due_at=at(16),
        )
    run(at(10))
    assert inbox(office.lead) == []
    assert inbox(office.worker) == ["新后台工单（工程部）：检修电梯"]


def test_an_order_finished_before_its_announcement_is_not_announced(
    office: SimpleNamespace,
) -> None:
    with time_machine.travel(at(10), tick=False):
        created = services.workorder_create(
            by=office.desk,
            ticket=office.ticket,
            department=office.engineering,
            title="检修电梯",
            due_at=at(16),
        )
    update(office.worker, created, "rejected", at(10))
    run(at(10, 1))
    assert Notification.objects.filter(title__startswith="新后台工单").count() == 0


# --- the engineer's home page --------------------------------------------------------------


def test_an_engineer_lands_on_the_department_work_orders(
    office: SimpleNamespace, order: WorkOrder, login: Any
) -> None:
    with time_machine.travel(at(11), tick=False):
        response = login(office.worker).get(reverse("home"))
    assertContains(response, 'data-panel="department_workorders"')
    assertNotContains(response, 'data-panel="desk"')
    assertContains(response, "更换楼道水管")
    assertContains(response, 'data-testid="workorder-department">工程部<')
    assertContains(response, 'data-testid="workorder-open-count">1<')
    assertContains(response, 'data-testid="workorder-late-count">0<')


def test_the_desk_agent_keeps_the_desk_queue(
    office: SimpleNamespace, order: WorkOrder, login: Any
) -> None:
    response = login(office.desk).get(reverse("home"))
    assertContains(response, 'data-panel="desk"')
    assertNotContains(response, 'data-panel="department_workorders"')


def test_the_engineer_home_runs_the_same_queries_for_1_and_12_orders(
    office: SimpleNamespace,
    order: WorkOrder,
    login: Any,
    django_assert_max_num_queries: Any,
) -> None:
    client = login(office.worker)
    client.get(reverse("home"))
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("home"))
    for n in range(11):
        WorkOrderFactory(
            ticket=TicketFactory(), department=office.engineering, title=f"事项{n}"
        )
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(reverse("home"))
    assert response.content.decode().count('data-testid="home-workorder"') == 10
