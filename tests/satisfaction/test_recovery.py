"""The closed loop (issue 16 item 2): an unhappy answer opens one recovery task for the
team lead, due 24 hours after the answer, escalating through the scheduled-action
pipeline like an SLA breach until the call back is recorded."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from culture.satisfaction import recovery
from culture.satisfaction.models import RecoveryTask
from tests.factories import CustomerFactory, TeamFactory, UserFactory
from tests.satisfaction.recovery_builders import answered_survey

SH = ZoneInfo("Asia/Shanghai")
MON_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SH)
State = ScheduledAction.State


@pytest.fixture
def desk(service_agent: Any, admin_user: Any, settings: Any) -> SimpleNamespace:
    """The desk team with its lead, the department's manager, and a manager of another
    department who must hear nothing."""
    settings.KEHU_ESCALATION_MANAGER_MINUTES = 60
    settings.KEHU_RECOVERY_HOURS = 24
    team = service_agent.team
    management = TeamFactory(name="客服管理组", department=team.department)
    lead = UserFactory(
        username="desk_lead", team=team, role=Role.SERVICE, email="lead@x.cn"
    )
    team.lead = lead
    team.save()
    boss = UserFactory(
        username="desk_boss", team=management, role=Role.MANAGER, email="boss@x.cn"
    )
    far_team = TeamFactory(name="华北销售组")
    other_boss = UserFactory(
        username="far_boss", team=far_team, role=Role.MANAGER, email="far@x.cn"
    )
    return SimpleNamespace(
        team=team,
        agent=service_agent,
        lead=lead,
        boss=boss,
        other_boss=other_boss,
        admin=admin_user,
    )


def run_due(when: datetime) -> list[int]:
    """The pipeline at `when`: sweep, then deliver what the sweep claimed."""
    with time_machine.travel(when, tick=False):
        ids = scheduler.actions_sweep(now=when)
        return scheduler.actions_deliver(action_ids=ids, now=when) if ids else []


def notified(user: Any) -> list[str]:
    return list(
        Notification.objects.filter(recipient=user)
        .order_by("created_at", "pk")
        .values_list("title", flat=True)
    )


# --- the rule ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "score", "opens"),
    [
        ("csat", 1, True),
        ("csat", 3, True),
        ("csat", 4, False),
        ("csat", 5, False),
        ("nps", 0, True),
        ("nps", 6, True),
        ("nps", 7, False),
        ("nps", 10, False),
    ],
)
def test_only_an_unhappy_answer_opens_a_task(desk, kind, score, opens):
    survey = answered_survey(kind=kind, score=score, team=desk.team)

    task = recovery.recovery_open_for(survey)

    assert (task is not None) is opens
    assert RecoveryTask.objects.count() == (1 if opens else 0)


@pytest.mark.django_db
def test_an_unanswered_survey_opens_nothing(desk):
    survey = answered_survey(team=desk.team)
    survey.score, survey.answered_at = None, None

    assert recovery.recovery_open_for(survey) is None


@pytest.mark.django_db
def test_the_task_goes_to_the_team_lead_due_24_hours_after_the_answer(desk):
    survey = answered_survey(score=2, team=desk.team, answered_at=MON_10)

    task = recovery.recovery_open_for(survey, now=MON_10)

    assert task.assignee == desk.lead
    assert task.team == desk.team
    assert task.customer == survey.customer
    assert task.status == "open"
    assert task.due_at == MON_10 + timedelta(hours=24)
    keys = dict(
        ScheduledAction.objects.filter(target_id=task.pk).values_list(
            "idempotency_key", "due_at"
        )
    )
    assert keys == {
        f"recovery:{task.pk}:opened": MON_10,
        f"recovery:{task.pk}:level:1": MON_10 + timedelta(hours=24),
        f"recovery:{task.pk}:level:2": MON_10 + timedelta(hours=25),
    }


@pytest.mark.django_db
def test_the_due_time_follows_the_setting(desk, settings):
    settings.KEHU_RECOVERY_HOURS = 4
    survey = answered_survey(score=2, team=desk.team, answered_at=MON_10)

    task = recovery.recovery_open_for(survey, now=MON_10)

    assert task.due_at == MON_10 + timedelta(hours=4)


@pytest.mark.django_db
def test_without_a_team_lead_the_owners_team_lead_then_a_manager_recovers(
    desk, sales_rep, team_a, manager
):
    desk.team.lead = None
    desk.team.save()
    customer = CustomerFactory(owner=sales_rep)
    lead_a = UserFactory(username="lead_a", team=team_a, role=Role.SALES)
    team_a.lead = lead_a
    team_a.save()

    by_owner = recovery.recovery_open_for(
        answered_survey(team=desk.team, customer=customer)
    )
    assert by_owner.assignee == lead_a
    assert by_owner.team == desk.team  # the case's team keeps the figure

    team_a.lead = None
    team_a.save()
    by_manager = recovery.recovery_open_for(
        answered_survey(team=desk.team, customer=customer)
    )
    # The first manager of the desk's department (not the sales manager).
    assert by_manager.assignee == desk.boss


@pytest.mark.django_db
def test_an_inactive_lead_is_passed_over(desk, sales_rep):
    desk.lead.is_active = False
    desk.lead.save()

    task = recovery.recovery_open_for(
        answered_survey(team=desk.team, customer=CustomerFactory(owner=sales_rep))
    )

    assert task.assignee != desk.lead


# --- idempotency -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_opening_twice_gives_the_same_task(desk):
    survey = answered_survey(team=desk.team)

    first = recovery.recovery_open_for(survey)
    second = recovery.recovery_open_for(survey)

    assert first.pk == second.pk
    assert RecoveryTask.objects.count() == 1
    assert ScheduledAction.objects.filter(target_id=first.pk).count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_openings_make_one_task(desk):
    from tests.concurrency.threads import run_together

    survey = answered_survey(team=desk.team)

    results = run_together(
        [lambda: recovery.recovery_open_for(survey) for _ in range(6)]
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r.pk for r in results} == {RecoveryTask.objects.get().pk}
    assert ScheduledAction.objects.filter(kind__startswith="satisfaction.").count() == 3


# --- notifications and escalation --------------------------------------------------------------


@pytest.mark.django_db
def test_the_lead_hears_at_once_with_a_link(desk):
    task = recovery.recovery_open_for(
        answered_survey(score=2, team=desk.team, answered_at=MON_10), now=MON_10
    )

    run_due(MON_10 + timedelta(seconds=1))

    notification = Notification.objects.get(recipient=desk.lead)
    assert notification.url == reverse("recovery:task_detail", args=[task.pk])
    assert "服务补救" in notification.title
    assert "CSAT 2/5" in notification.title
    assert notification.reason == "你是该客户所在团队的组长，负责回访"
    assert not Notification.objects.exclude(recipient=desk.lead).exists()


@pytest.mark.django_db
def test_an_overdue_task_escalates_to_the_lead_then_the_department_managers(desk):
    task = recovery.recovery_open_for(
        answered_survey(score=1, team=desk.team, answered_at=MON_10), now=MON_10
    )
    run_due(MON_10 + timedelta(seconds=1))

    run_due(MON_10 + timedelta(hours=23, minutes=59))
    assert len(notified(desk.lead)) == 1  # not yet due

    run_due(MON_10 + timedelta(hours=24, seconds=1))
    task.refresh_from_db()
    assert task.escalation_level == 1
    assert "已超时" in notified(desk.lead)[-1]
    assert notified(desk.boss) == []

    run_due(MON_10 + timedelta(hours=25, seconds=1))
    task.refresh_from_db()
    assert task.escalation_level == 2
    assert len(notified(desk.boss)) == 1
    assert "升级到经理" in notified(desk.boss)[0]
    assert notified(desk.other_boss) == []
    assert notified(desk.agent) == []


@pytest.mark.django_db
def test_no_escalation_after_the_task_is_done(desk):
    task = recovery.recovery_open_for(
        answered_survey(score=2, team=desk.team, answered_at=MON_10), now=MON_10
    )
    recovery.recovery_record(
        by=desk.lead,
        task=task,
        version=task.version,
        called_back_at=MON_10 + timedelta(hours=2),
        outcome="resolved",
        note="已道歉并安排重新上门，客户接受。",
        now=MON_10 + timedelta(hours=3),
    )

    assert set(
        ScheduledAction.objects.filter(target_id=task.pk).values_list(
            "state", flat=True
        )
    ) == {State.CANCELLED}
    run_due(MON_10 + timedelta(hours=30))
    assert Notification.objects.count() == 0
    task.refresh_from_db()
    assert task.escalation_level == 0


@pytest.mark.django_db
def test_an_escalation_already_claimed_when_the_task_closes_sends_nothing(desk):
    """The action was on its way (dispatched) when the lead recorded the call: the
    handler finds the task done."""
    task = recovery.recovery_open_for(
        answered_survey(score=2, team=desk.team, answered_at=MON_10), now=MON_10
    )
    when = MON_10 + timedelta(hours=24, seconds=1)
    with time_machine.travel(when, tick=False):
        ids = scheduler.actions_sweep(now=when)
    RecoveryTask.objects.filter(pk=task.pk).update(
        status="done",
        called_back_at=when,
        closed_at=when,
        outcome="resolved",
        note="电话回访",
    )
    with time_machine.travel(when, tick=False):
        delivered = scheduler.actions_deliver(action_ids=ids, now=when)

    assert len(delivered) == 2  # carried out, as no-ops
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_without_a_manager_the_admins_hear(desk, settings):
    desk.boss.groups.clear()
    desk.other_boss.groups.clear()
    recovery.recovery_open_for(
        answered_survey(score=2, team=desk.team, answered_at=MON_10), now=MON_10
    )

    run_due(MON_10 + timedelta(hours=26))

    assert "升级到经理" in notified(desk.admin)[-1]


@pytest.mark.django_db
def test_one_failing_escalation_does_not_hold_back_the_others(desk):
    """An action whose handler raises (simulated by a key naming a level that does not
    parse) keeps its own error and back-off; the other task's escalation in the same
    sweep is delivered on time."""
    good = recovery.recovery_open_for(
        answered_survey(score=2, team=desk.team, answered_at=MON_10), now=MON_10
    )
    bad = recovery.recovery_open_for(
        answered_survey(score=2, team=desk.team, answered_at=MON_10), now=MON_10
    )
    ScheduledAction.objects.filter(idempotency_key=f"recovery:{bad.pk}:level:1").update(
        idempotency_key=f"recovery:{bad.pk}:level:x"
    )

    run_due(MON_10 + timedelta(hours=24, seconds=1))

    good.refresh_from_db()
    assert good.escalation_level == 1
    failed = ScheduledAction.objects.get(idempotency_key=f"recovery:{bad.pk}:level:x")
    assert failed.state == State.PENDING
    assert "ValueError" in failed.last_error


# --- recording ------------------------------------------------------------------------------------


def record(task: RecoveryTask, by: Any, **changes: Any) -> RecoveryTask:
    data = {
        "version": task.version,
        "called_back_at": task.survey.answered_at + timedelta(hours=1),
        "outcome": "resolved",
        "note": "致电客户道歉，已重新安排维修。",
        "second_score": None,
        "now": task.survey.answered_at + timedelta(hours=2),
    }
    data.update(changes)
    return recovery.recovery_record(by=by, task=task, **data)


@pytest.mark.django_db
def test_recording_closes_the_task_and_is_audited(desk):
    task = recovery.recovery_open_for(
        answered_survey(kind="nps", score=3, team=desk.team, answered_at=MON_10),
        now=MON_10,
    )

    done = record(task, desk.lead, second_score=8, outcome="partly")

    done.refresh_from_db()
    assert done.status == "done"
    assert done.closed_by == desk.lead
    assert done.closed_at == MON_10 + timedelta(hours=2)
    assert done.called_back_at == MON_10 + timedelta(hours=1)
    assert done.second_score == 8
    assert done.outcome == "partly"
    assert done.version == task.version + 1
    events = list(
        RecoveryTask.pgh_event_model.objects.filter(pgh_obj_id=task.pk)
        .order_by("pgh_id")
        .values_list("status", "pgh_context__metadata__user")
    )
    assert events[-1] == ("done", desk.lead.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "score", "ok"),
    [
        ("csat", 0, False),
        ("csat", 1, True),
        ("csat", 5, True),
        ("csat", 6, False),
        ("nps", 0, True),
        ("nps", 10, True),
        ("nps", 11, False),
    ],
)
def test_the_second_answer_uses_the_surveys_scale(desk, kind, score, ok):
    task = recovery.recovery_open_for(
        answered_survey(kind=kind, score=1, team=desk.team, answered_at=MON_10),
        now=MON_10,
    )
    if ok:
        assert record(task, desk.lead, second_score=score).second_score == score
    else:
        with pytest.raises(ValidationError) as error:
            record(task, desk.lead, second_score=score)
        assert "second_score" in error.value.error_dict


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("called_back", "field"),
    [
        (MON_10 - timedelta(hours=1), "called_back_at"),  # before the answer
        (MON_10 + timedelta(hours=5), "called_back_at"),  # after "now" (+2 h)
        (None, "called_back_at"),
    ],
)
def test_bad_call_back_times_are_refused(desk, called_back, field):
    task = recovery.recovery_open_for(
        answered_survey(team=desk.team, answered_at=MON_10), now=MON_10
    )
    with pytest.raises(ValidationError) as error:
        record(task, desk.lead, called_back_at=called_back)
    assert field in error.value.error_dict
    task.refresh_from_db()
    assert task.status == "open"


@pytest.mark.django_db
def test_a_note_and_an_outcome_are_required(desk):
    task = recovery.recovery_open_for(
        answered_survey(team=desk.team, answered_at=MON_10), now=MON_10
    )
    with pytest.raises(ValidationError) as error:
        record(task, desk.lead, note="   ", outcome="")
    assert set(error.value.error_dict) == {"note", "outcome"}


@pytest.mark.django_db
def test_a_stale_version_is_a_conflict_and_a_done_task_cannot_be_recorded_again(desk):
    task = recovery.recovery_open_for(
        answered_survey(team=desk.team, answered_at=MON_10), now=MON_10
    )
    with pytest.raises(recovery.EditConflict):
        record(task, desk.lead, version=task.version + 5)

    record(task, desk.boss)
    with pytest.raises(ValidationError):
        record(task, desk.lead)


@pytest.mark.django_db
def test_only_the_assignee_the_lead_managers_and_admins_record(desk, sales_rep):
    task = recovery.recovery_open_for(
        answered_survey(team=desk.team, answered_at=MON_10), now=MON_10
    )
    for outsider in (desk.agent, sales_rep):
        with pytest.raises(PermissionDenied):
            record(task, outsider)
    assert recovery.can_record(desk.lead, task)
    assert recovery.can_record(desk.boss, task)
    assert recovery.can_record(desk.admin, task)
