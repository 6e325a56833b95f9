"""服务补救 (service recovery): the closed loop after an unhappy answer (docs/satisfaction.md,
"服务补救 / Recovery").

A CSAT of 3 or less, or an NPS of 6 or less, opens one RecoveryTask per survey
(`recovery_open_for`, called by the answer service in its transaction). The task is
due KEHU_RECOVERY_HOURS (24) after the answer and escalates through the scheduled-action
pipeline as an SLA breach does:

| when | level | who hears |
|---|---|---|
| at once | 0 | the assignee (the team lead) |
| at the due time | 1 | the assignee and the team's lead |
| KEHU_ESCALATION_MANAGER_MINUTES later | 2 | the managers of the team's department (every manager when the task has no team; the admins when there is no manager) |

Recording the call back (`recovery_record`) closes the task and cancels what has not
been sent; an escalation delivered after that finds the task done and sends nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.accounts.roles import Role
from crm.core import bounds
from crm.core.db import audited, retry_transient
from crm.notifications import services as notifications
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from culture.satisfaction.models import (
    CSAT_MAX,
    NPS_MAX,
    RecoveryTask,
    Survey,
    SurveyKind,
)

RECOVERY_OPENED = "satisfaction.recovery_opened"
RECOVERY_ESCALATE = "satisfaction.recovery_escalate"
RECOVERY_KINDS = (RECOVERY_OPENED, RECOVERY_ESCALATE)
LEVEL_LEAD = 1
LEVEL_MANAGER = 2
# A call back recorded this far in the future is a typo, not a clock difference.
CALLBACK_GRACE = timedelta(minutes=5)
Status = RecoveryTask.Status


class EditConflict(Exception):
    """The task changed since the form was drawn (its version moved on)."""

    def __init__(self, current: RecoveryTask) -> None:
        super().__init__("stale recovery task version")
        self.current = current


# --- opening -------------------------------------------------------------------------------


def _active_lead(team: Any) -> Any:
    lead = team.lead if team is not None else None
    return lead if lead is not None and lead.is_active else None


def assignee_for(survey: Survey) -> tuple[Any, Any]:
    """(assignee, team) of the recovery of `survey`'s unhappy answer.

    The rule (docs/satisfaction.md): the lead of the survey's team (whose case it was);
    else the lead of the team of the staff member on the case; else the lead of the
    team of the customer's owner; else the first active manager of the survey team's
    department, else the first active manager. The task keeps the survey's team (or the
    team whose lead took it), so the team's figures count it. None when nobody fits: the
    escalation still reaches the managers or admins.
    """
    candidates = [
        survey.team,
        survey.staff.team if survey.staff_id and survey.staff.team_id else None,
        survey.customer.owner.team
        if survey.customer.owner_id and survey.customer.owner.team_id
        else None,
    ]
    for team in candidates:
        lead = _active_lead(team)
        if lead is not None:
            return lead, survey.team or team
    managers = (
        get_user_model()
        .objects.filter(groups__name=Role.MANAGER, is_active=True)
        .order_by("pk")
    )
    if survey.team_id:
        in_department = managers.filter(
            team__department_id=survey.team.department_id
        ).first()
        if in_department is not None:
            return in_department, survey.team
    return managers.first(), survey.team


def _due(answered_at: datetime) -> datetime:
    return answered_at + timedelta(hours=settings.KEHU_RECOVERY_HOURS)


def _key(task_pk: int, stage: str) -> str:
    return f"recovery:{task_pk}:{stage}"


def recovery_open_for(
    survey: Survey, *, now: datetime | None = None
) -> RecoveryTask | None:
    """The recovery task of `survey`'s answer, opened if the answer is unhappy.

    Idempotent: one task per survey (the survey row is locked, so concurrent calls
    open one task; later calls return it). None for a happy or unanswered survey.
    Schedules the assignee's notification at once and the escalations at the due
    time, in the caller's transaction: the task and its actions exist together.
    """
    if survey.score is None or survey.answered_at is None or not survey.is_unhappy:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            Survey.objects.select_for_update(no_key=True, of=("self",))
            .select_related("team__lead", "staff__team", "customer__owner__team")
            .get(pk=survey.pk)
        )
        if locked.score is None or locked.answered_at is None or not locked.is_unhappy:
            return None
        existing = RecoveryTask.objects.filter(survey_id=locked.pk).first()
        if existing is not None:
            return existing
        assignee, team = assignee_for(locked)
        task = RecoveryTask.objects.create(
            survey=locked,
            customer_id=locked.customer_id,
            team=team,
            assignee=assignee,
            due_at=_due(locked.answered_at),
        )
        _schedule(task, now)
    return task


def _schedule(task: RecoveryTask, now: datetime) -> None:
    manager_delay = timedelta(minutes=settings.KEHU_ESCALATION_MANAGER_MINUTES)
    scheduler.action_schedule(
        kind=RECOVERY_OPENED,
        target_id=task.pk,
        due_at=now,
        key=_key(task.pk, "opened"),
    )
    scheduler.action_schedule(
        kind=RECOVERY_ESCALATE,
        target_id=task.pk,
        due_at=task.due_at,
        key=_key(task.pk, f"level:{LEVEL_LEAD}"),
    )
    scheduler.action_schedule(
        kind=RECOVERY_ESCALATE,
        target_id=task.pk,
        due_at=task.due_at + manager_delay,
        key=_key(task.pk, f"level:{LEVEL_MANAGER}"),
    )


def _cancel_pending(task_pk: int) -> int:
    return ScheduledAction.objects.filter(
        kind__in=RECOVERY_KINDS,
        target_id=task_pk,
        state__in=[ScheduledAction.State.PENDING, ScheduledAction.State.DISPATCHED],
    ).update(state=ScheduledAction.State.CANCELLED)


# --- notifications and escalation (scheduled-action handlers) -------------------------------


def _load(action: ScheduledAction) -> RecoveryTask | None:
    return (
        RecoveryTask.objects.select_related(
            "survey", "customer", "team__lead", "assignee"
        )
        .filter(pk=action.target_id, status=Status.OPEN)
        .first()
    )


def _score_line(task: RecoveryTask) -> str:
    survey = task.survey
    scale = NPS_MAX if survey.kind == SurveyKind.NPS else CSAT_MAX
    return _("%(kind)s %(score)s/%(scale)s 分") % {
        "kind": "NPS" if survey.kind == SurveyKind.NPS else "CSAT",
        "score": survey.score,
        "scale": scale,
    }


def _managers(task: RecoveryTask) -> list[tuple[Any, str]]:
    """The managers of the task team's department (every manager when it has no team),
    or, when there is none, the admins: each with why they hear of it."""
    users = get_user_model().objects.filter(is_active=True).order_by("pk")
    managers = users.filter(groups__name=Role.MANAGER)
    if task.team_id:
        managers = managers.filter(team__department_id=task.team.department_id)
    found = list(managers)
    if found:
        return [(m, gettext_noop("你是该部门的经理；服务补救已超时")) for m in found]
    admins = users.filter(Q(groups__name=Role.ADMIN) | Q(is_superuser=True)).distinct()
    return [
        (a, gettext_noop("没有负责的经理，你是管理员；服务补救已超时")) for a in admins
    ]


def recovery_announce(action: ScheduledAction) -> None:
    """Tell the assignee a recovery task is theirs (or, with nobody assigned, the
    managers who must find someone)."""
    task = _load(action)
    if task is None:
        return
    if task.assignee_id:
        recipients = [
            (task.assignee, gettext_noop("你是该客户所在团队的组长，负责回访"))
        ]
    else:
        recipients = _managers(task)
    title = _("服务补救：%(customer)s（%(score)s），请在 %(due)s 前回访") % {
        "customer": task.customer.name,
        "score": _score_line(task),
        "due": timezone.localtime(task.due_at).strftime("%m-%d %H:%M"),
    }
    _notify(action, task, title, recipients)


def recovery_escalate(action: ScheduledAction) -> None:
    """At the due time: the assignee and the team lead; later: the managers. Nothing
    once the task is done (or gone)."""
    level = int(action.idempotency_key.rsplit(":", 1)[1])
    task = _load(action)
    if task is None:
        return
    if level <= LEVEL_LEAD:
        people = {}
        if task.assignee_id:
            people[task.assignee_id] = (
                task.assignee,
                gettext_noop("你是该服务补救的负责人；已超时"),
            )
        lead = _active_lead(task.team)
        if lead is not None and lead.pk not in people:
            people[lead.pk] = (lead, gettext_noop("你是该团队的组长；服务补救已超时"))
        recipients = list(people.values()) or _managers(task)
        title = _("服务补救已超时：%(customer)s（%(score)s）") % {
            "customer": task.customer.name,
            "score": _score_line(task),
        }
    else:
        recipients = _managers(task)
        title = _("服务补救超时未处理，升级到经理：%(customer)s") % {
            "customer": task.customer.name
        }
    RecoveryTask.objects.filter(pk=task.pk, status=Status.OPEN).update(
        escalation_level=Greatest(F("escalation_level"), Value(level))
    )
    _notify(action, task, title, recipients)


def _notify(
    action: ScheduledAction,
    task: RecoveryTask,
    title: str,
    recipients: list[tuple[Any, str]],
) -> None:
    url = reverse("recovery:task_detail", args=[task.pk])
    body = task.survey.comment[:200]
    for recipient, reason in recipients:
        notifications.notification_send(
            recipient=recipient,
            key=f"{action.idempotency_key}:{recipient.pk}",
            title=title,
            body=body,
            url=url,
            reason=reason,
            group=f"recovery:{task.pk}",
        )


# --- who may see and record ------------------------------------------------------------------


def tasks_visible_to(user: Any) -> QuerySet:
    """The recovery tasks `user` may see (docs/satisfaction.md): admins every task;
    managers the tasks of their department's teams and of the customers they may see;
    the service desk its team's; salespeople those of the customers they may see;
    everyone the tasks they are assigned or whose team they lead."""
    tasks = RecoveryTask.objects.all()
    role = getattr(user, "role", None)
    if role == Role.ADMIN:
        return tasks
    if role is None:
        return tasks.none()
    from customers.models import Customer

    mine = Q(assignee=user) | Q(team__lead=user)
    if role == Role.SERVICE:
        if user.team_id:
            mine |= Q(team_id=user.team_id)
        return tasks.filter(mine)
    if role == Role.MANAGER and user.team_id:
        mine |= Q(team__department_id=user.team.department_id)
    mine |= Q(customer__in=Customer.objects.visible_to(user).values("pk"))
    return tasks.filter(mine)


def can_record(user: Any, task: RecoveryTask) -> bool:
    """The assignee, the lead of the task's team, managers and admins record the call."""
    if getattr(user, "role", None) in (Role.MANAGER, Role.ADMIN):
        return True
    if user.pk == task.assignee_id:
        return True
    return bool(task.team_id) and task.team.lead_id == user.pk


# --- recording -------------------------------------------------------------------------------


def score_range(kind: str) -> tuple[int, int]:
    """The second answer's scale: the survey's own (CSAT 1–5, NPS 0–10)."""
    return (0, NPS_MAX) if kind == SurveyKind.NPS else (1, CSAT_MAX)


def record_errors(
    task: RecoveryTask,
    *,
    called_back_at: datetime | None,
    outcome: str,
    note: str,
    second_score: int | None,
    now: datetime,
) -> dict[str, str]:
    """What is wrong with a recording of `task`, by field (empty when nothing)."""
    errors: dict[str, str] = {}
    if called_back_at is None:
        errors["called_back_at"] = _("请填写回访时间。")
    else:
        low, high = bounds.local_bounds(
            bounds.BUSINESS_DATE_MIN, bounds.BUSINESS_DATE_MAX
        )
        answered = task.survey.answered_at or task.created_at
        if not low <= called_back_at <= high:
            errors["called_back_at"] = _("回访时间超出范围。")
        elif called_back_at > now + CALLBACK_GRACE:
            errors["called_back_at"] = _("回访时间不能晚于现在。")
        elif called_back_at < answered.replace(second=0, microsecond=0):
            errors["called_back_at"] = _(
                "回访时间不能早于客户回答的时间（%(at)s）。"
            ) % {"at": timezone.localtime(answered).strftime("%Y-%m-%d %H:%M")}
    if outcome not in RecoveryTask.Outcome.values:
        errors["outcome"] = _("请选择补救结果。")
    if not note.strip():
        errors["note"] = _("请填写回访记录。")
    if second_score is not None:
        low_score, high_score = score_range(task.survey.kind)
        if not low_score <= second_score <= high_score:
            errors["second_score"] = _("再次评分须在 %(low)s 到 %(high)s 分之间。") % {
                "low": low_score,
                "high": high_score,
            }
    return errors


@retry_transient
def recovery_record(
    *,
    by: Any,
    task: RecoveryTask,
    version: int,
    called_back_at: datetime | None,
    outcome: str,
    note: str,
    second_score: int | None = None,
    now: datetime | None = None,
) -> RecoveryTask:
    """Record the call back and close the task (status done, closed_at, closed_by);
    pending escalations are cancelled. Refused when the task changed since the form
    was drawn (EditConflict) or is already done."""
    if not can_record(by, task):
        raise PermissionDenied
    now = now or timezone.now()
    with transaction.atomic(), audited(by):
        current = (
            RecoveryTask.objects.select_for_update(no_key=True, of=("self",))
            .select_related("survey", "team")
            .get(pk=task.pk)
        )
        if current.status != Status.OPEN:
            raise ValidationError(_("该服务补救已记录，不能再修改。"))
        if current.version != version:
            raise EditConflict(current)
        errors = record_errors(
            current,
            called_back_at=called_back_at,
            outcome=outcome,
            note=note,
            second_score=second_score,
            now=now,
        )
        if errors:
            raise ValidationError(errors)
        current.called_back_at = called_back_at
        current.outcome = outcome
        current.note = note.strip()
        current.second_score = second_score
        current.status = Status.DONE
        current.closed_at = now
        current.closed_by = by
        current.version += 1
        current.save(
            update_fields=[
                "called_back_at",
                "outcome",
                "note",
                "second_score",
                "status",
                "closed_at",
                "closed_by",
                "version",
                "updated_at",
            ]
        )
        _cancel_pending(current.pk)
    return current


def escalation_history(task: RecoveryTask) -> list[ScheduledAction]:
    """The task's notification and escalation actions, in due order (one query, on the
    actions' (kind, target) index)."""
    return list(
        ScheduledAction.objects.filter(
            kind__in=RECOVERY_KINDS, target_id=task.pk
        ).order_by("due_at", "pk")
    )
