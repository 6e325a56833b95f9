"""The 服务补救 pages: the list (tabs, order, overdue, who sees what), the task page
(answer, masked phone, ticket, history) and the recording form, as a user sees them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.accounts.roles import Role
from culture.satisfaction import recovery
from culture.satisfaction.models import RecoveryTask
from customers import timeline
from tests.factories import CustomerFactory, TeamFactory, UserFactory
from tests.satisfaction.recovery_builders import answered_survey


@pytest.fixture
def lead(service_agent: Any) -> Any:
    team = service_agent.team
    lead = UserFactory(username="desk_lead", team=team, role=Role.SERVICE)
    team.lead = lead
    team.save()
    return lead


def open_task(team: Any, *, hours_ago: float = 1, **kwargs: Any) -> RecoveryTask:
    survey = answered_survey(
        team=team, answered_at=timezone.now() - timedelta(hours=hours_ago), **kwargs
    )
    return recovery.recovery_open_for(survey)


def form_data(task: RecoveryTask, **changes: Any) -> dict[str, Any]:
    data = {
        "version": task.version,
        "called_back_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "outcome": "resolved",
        "note": "已致电道歉，安排了回访维修。",
        "second_score": "",
    }
    data.update(changes)
    return data


# --- the list -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_lead_sees_open_tasks_by_due_time_with_the_overdue_marked(login, lead):
    late = open_task(lead.team, hours_ago=30, customer=CustomerFactory(name="超时客户"))
    fresh = open_task(lead.team, hours_ago=1, customer=CustomerFactory(name="新客户"))

    response = login(lead).get(reverse("recovery:task_list"))

    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("超时客户") < body.index("新客户")
    rows = response.context["page"].object_list
    assert [t.pk for t in rows] == [late.pk, fresh.pk]
    assert [t.is_overdue for t in rows] == [True, False]
    assert body.count('data-testid="overdue"') == 1


@pytest.mark.django_db
def test_the_done_tab_lists_recorded_tasks(login, lead):
    task = open_task(lead.team, customer=CustomerFactory(name="已回访客户"))
    open_task(lead.team, customer=CustomerFactory(name="待回访客户"))
    recovery.recovery_record(
        by=lead,
        task=task,
        version=task.version,
        called_back_at=timezone.now(),
        outcome="resolved",
        note="好",
    )
    client = login(lead)

    open_body = client.get(reverse("recovery:task_list")).content.decode()
    done_body = client.get(
        reverse("recovery:task_list") + "?state=done"
    ).content.decode()

    assert "待回访客户" in open_body and "已回访客户" not in open_body
    assert "已回访客户" in done_body and "待回访客户" not in done_body
    assert "问题已解决，客户认可" in done_body


@pytest.mark.django_db
def test_who_sees_which_tasks(login, lead, service_agent, sales_rep, outsider, manager):
    desk_task = open_task(lead.team, customer=CustomerFactory(owner=sales_rep))
    other_desk = TeamFactory(name="二线客服组", department=lead.team.department)
    other_task = open_task(other_desk, customer=CustomerFactory(owner=outsider))

    def seen(user: Any) -> set[int]:
        return set(recovery.tasks_visible_to(user).values_list("pk", flat=True))

    assert seen(lead) == {desk_task.pk}
    assert seen(service_agent) == {desk_task.pk}  # the desk: its team's
    assert seen(sales_rep) == {desk_task.pk}  # sales: their customers'
    assert seen(outsider) == {other_task.pk}
    # A manager of the sales department: the customers they may see (both).
    assert seen(manager) == {desk_task.pk, other_task.pk}
    far_manager = UserFactory(
        username="far_mgr", team=TeamFactory(name="华北组"), role=Role.MANAGER
    )
    assert seen(far_manager) == set()
    desk_manager = UserFactory(
        username="desk_mgr",
        team=TeamFactory(name="客服管理", department=lead.team.department),
        role=Role.MANAGER,
    )
    assert seen(desk_manager) == {desk_task.pk, other_task.pk}  # the department's teams


@pytest.mark.django_db
def test_the_list_runs_the_same_queries_for_3_and_30_tasks(login, lead):
    client = login(lead)
    url = reverse("recovery:task_list")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    for _ in range(3):
        open_task(lead.team)
    client.get(url)
    few = count()
    for _ in range(27):
        open_task(lead.team)
    assert count() == few


# --- the task page -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_task_page_shows_the_answer_the_masked_phone_and_the_history(
    login, lead, manager, sales_rep
):
    customer = CustomerFactory(name="王先生", phone="13912345678", owner=sales_rep)
    task = open_task(lead.team, customer=customer, comment="维修师傅没来")
    url = reverse("recovery:task_detail", args=[task.pk])

    desk_body = login(lead).get(url).content.decode()
    assert "维修师傅没来" in desk_body
    assert "139****5678" in desk_body and "13912345678" not in desk_body
    assert task.survey.ticket.reference in desk_body
    assert "通知补救负责人" in desk_body and "升级到部门经理" in desk_body
    assert 'data-testid="recovery-form"' in desk_body

    sales_body = login(sales_rep).get(url).content.decode()
    assert "13912345678" in sales_body  # sales see phones in full
    assert 'data-testid="recovery-form"' not in sales_body  # and may not record


@pytest.mark.django_db
def test_recording_through_the_page_closes_the_task(login, lead):
    task = open_task(lead.team)
    client = login(lead)

    response = client.post(
        reverse("recovery:task_record", args=[task.pk]),
        form_data(task, second_score="4", outcome="partly"),
    )

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.outcome, task.second_score) == ("done", "partly", 4)
    page = client.get(response["Location"]).content.decode()
    assert "回访已记录" in page
    assert 'data-testid="recovery-result"' in page
    assert 'data-testid="recovery-form"' not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [
        ("csat", {"second_score": "0"}, "second_score"),
        ("csat", {"second_score": "6"}, "second_score"),
        ("nps", {"second_score": "11"}, "second_score"),
        ("csat", {"note": "  "}, "note"),
        ("csat", {"called_back_at": "0001-01-01T00:00"}, "called_back_at"),
        ("csat", {"called_back_at": "2199-01-01T00:00"}, "called_back_at"),
        ("csat", {"called_back_at": "2020-01-01T00:00"}, "called_back_at"),
        ("csat", {"outcome": "happy"}, "outcome"),
    ],
)
def test_the_form_refuses_bad_values(login, lead, kind, changes, field):
    task = open_task(lead.team, kind=kind, score=1)

    response = login(lead).post(
        reverse("recovery:task_record", args=[task.pk]), form_data(task, **changes)
    )

    assert response.status_code == 400
    assert field in response.context["form"].errors
    task.refresh_from_db()
    assert task.status == "open"


@pytest.mark.django_db
def test_an_nps_second_answer_of_9_is_accepted(login, lead):
    task = open_task(lead.team, kind="nps", score=4)

    response = login(lead).post(
        reverse("recovery:task_record", args=[task.pk]),
        form_data(task, second_score="9"),
    )

    assert response.status_code == 302


@pytest.mark.django_db
def test_a_stale_form_is_a_conflict_that_keeps_what_was_typed(login, lead):
    task = open_task(lead.team)
    RecoveryTask.objects.filter(pk=task.pk).update(version=task.version + 1)

    response = login(lead).post(
        reverse("recovery:task_record", args=[task.pk]),
        form_data(task, note="我写的回访记录"),
    )

    assert response.status_code == 409
    body = response.content.decode()
    assert "已被他人修改" in body
    assert "我写的回访记录" in body
    assert response.context["form"]["version"].value() == str(task.version + 1)
    task.refresh_from_db()
    assert task.status == "open"


@pytest.mark.django_db
def test_a_task_recorded_meanwhile_shows_what_was_recorded(login, lead, manager):
    task = open_task(lead.team)
    recovery.recovery_record(
        by=manager,
        task=task,
        version=task.version,
        called_back_at=timezone.now(),
        outcome="unreachable",
        note="经理已回访",
    )

    response = login(lead).post(
        reverse("recovery:task_record", args=[task.pk]), form_data(task)
    )

    assert response.status_code == 409
    assert "经理已回访" in response.content.decode()


# --- home and timeline --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_team_lead_sees_the_open_count_on_the_home_page(login, lead, service_agent):
    open_task(lead.team, hours_ago=30)
    open_task(lead.team, hours_ago=1)

    body = login(lead).get(reverse("home")).content.decode()
    assert 'data-testid="recovery-panel"' in body
    panel = body[body.index('data-testid="recovery-open-count"') :]
    assert panel.split(">", 1)[1].startswith("2<")
    overdue = body[body.index('data-testid="recovery-overdue-count"') :]
    assert overdue.split(">", 1)[1].startswith("1<")

    agent_body = login(service_agent).get(reverse("home")).content.decode()
    assert 'data-testid="recovery-panel"' not in agent_body


@pytest.mark.django_db
def test_the_customer_timeline_shows_the_recovery_opened_and_done(lead):
    customer = CustomerFactory()
    task = open_task(lead.team, customer=customer, kind="nps", score=5)
    recovery.recovery_record(
        by=lead,
        task=task,
        version=task.version,
        called_back_at=timezone.now(),
        outcome="resolved",
        note="客户接受了补偿方案",
        second_score=9,
    )

    entries, _cursor = timeline.entries(customer)

    titles = [e.title for e in entries if e.kind.startswith("recovery")]
    assert titles == [
        "服务补救已完成：问题已解决，客户认可",
        "不满意回答，开启服务补救（NPS 5/10 分）",
    ]
    done = next(e for e in entries if e.kind == "recovery_done")
    assert "再次评分 9 分" in done.body and "补偿方案" in done.body


@pytest.mark.django_db
def test_the_demo_has_open_overdue_and_done_recoveries(service_agent):
    """Without the survey demo, the recovery demo makes its own unhappy answers on
    resolved tickets; run twice, it adds nothing."""
    from crm.core.seeding import DemoRun
    from culture.satisfaction import demo_recovery
    from tests.factories import TicketFactory

    lead = UserFactory(username="manager1", team=service_agent.team, role=Role.MANAGER)
    service_agent.team.lead = lead
    service_agent.team.save()
    for _ in range(6):
        TicketFactory(status="resolved", team=service_agent.team)
    run = DemoRun(users={"manager1": lead}, customers=0, seed=1)

    said = demo_recovery.recovery_demo(run)

    now = timezone.now()
    tasks = RecoveryTask.objects.all()
    assert said == "6 recovery tasks opened, 2 recorded"
    assert tasks.filter(status="done").count() == 2
    assert tasks.filter(status="open", due_at__lt=now).count() == 2
    assert tasks.filter(status="open", due_at__gte=now).count() == 2
    assert demo_recovery.recovery_demo(run) == ""
    assert tasks.count() == 6
