"""Reads of the service recovery (服务补救): the list, the task page, the home panel, the
customer timeline and the figures other pages show (docs/satisfaction.md, "服务补救 /
Recovery")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts.models import Team
from culture.satisfaction import recovery
from culture.satisfaction.models import RecoveryTask
from customers.timeline import Entry

Status = RecoveryTask.Status
PANEL_ROWS = 5


# --- the list and the task page ---------------------------------------------------------------


def task_list(*, user: Any, done: bool) -> QuerySet:
    """Open tasks: the user's own first, then by due time; done tasks: newest first."""
    tasks = (
        recovery.tasks_visible_to(user)
        .filter(status=Status.DONE if done else Status.OPEN)
        .select_related("customer", "team", "assignee", "survey")
    )
    if done:
        return tasks.order_by("-closed_at", "-pk")
    return tasks.annotate(
        mine=Case(
            When(assignee=user, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    ).order_by("mine", "due_at", "pk")


def mark_overdue(tasks: list[RecoveryTask], now: datetime) -> list[RecoveryTask]:
    for task in tasks:
        task.is_overdue = task.status == Status.OPEN and task.due_at < now
    return tasks


def task_for_page(*, user: Any) -> QuerySet:
    return recovery.tasks_visible_to(user).select_related(
        "survey__ticket",
        "customer__owner",
        "team__lead",
        "assignee",
        "closed_by",
    )


# --- the home panel ---------------------------------------------------------------------------


def leads_or_recovers(*, user: Any) -> bool:
    """Whether `user` gets the recovery panel: a team lead, or someone with open tasks
    (one query)."""
    return (
        Team.objects.filter(lead=user)
        .values("pk")
        .union(
            RecoveryTask.objects.filter(assignee=user, status=Status.OPEN).values("pk"),
            all=True,
        )
        .exists()
    )


def home_panel(*, user: Any) -> dict[str, Any]:
    """The user's open recovery tasks (assigned, or of a team they lead): how many, how
    many overdue, and the next few by due time (two queries)."""
    now = timezone.now()
    mine = RecoveryTask.objects.filter(
        Q(assignee=user) | Q(team__lead=user), status=Status.OPEN
    )
    counts = mine.aggregate(
        open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now))
    )
    rows = mark_overdue(
        list(
            mine.select_related("customer", "survey").order_by("due_at", "pk")[
                :PANEL_ROWS
            ]
        ),
        now,
    )
    return {"recovery_counts": counts, "recovery_rows": rows}


# --- the customer timeline ----------------------------------------------------------------------


def timeline_entries(customer: Any, before: datetime | None, limit: int) -> list[Entry]:
    """Each recovery task of the customer as up to two entries: opened, and done with
    its outcome. One query: the newest `limit` entries come from the `limit` tasks
    whose latest event (at or before `before`) is newest."""
    tasks = RecoveryTask.objects.filter(customer=customer).select_related(
        "survey", "assignee", "closed_by"
    )
    if before:
        tasks = tasks.filter(created_at__lte=before)
        latest = Case(
            When(closed_at__lte=before, then=F("closed_at")),
            default=F("created_at"),
        )
    else:
        latest = Coalesce(F("closed_at"), F("created_at"))
    entries = []
    for task in tasks.annotate(latest=latest).order_by("-latest", "-id")[:limit]:
        url = reverse("recovery:task_detail", args=[task.pk])
        entries.append(
            Entry(
                at=task.created_at,
                kind="recovery",
                icon="life-preserver",
                title=_("不满意回答，开启服务补救（%(score)s）")
                % {"score": recovery._score_line(task)},
                body=task.survey.comment[:200],
                actor=str(task.assignee) if task.assignee_id else "",
                url=url,
                badge=_("待补救") if task.status == Status.OPEN else "",
                id=task.pk,
            )
        )
        if task.status != Status.DONE or (before and task.closed_at > before):
            continue
        body = task.note[:200]
        if task.second_score is not None:
            body = _("再次评分 %(score)s 分。") % {"score": task.second_score} + body
        entries.append(
            Entry(
                at=task.closed_at,
                kind="recovery_done",
                icon="telephone-inbound",
                title=_("服务补救已完成：%(outcome)s")
                % {"outcome": task.get_outcome_display()},
                body=body,
                actor=str(task.closed_by) if task.closed_by_id else "",
                url=url,
                badge=_("已补救"),
                id=task.pk,
            )
        )
    entries.sort(key=lambda entry: (entry.at, entry.kind, entry.id), reverse=True)
    return entries[:limit]


# --- the figures ------------------------------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5): the median, interpolated."""

    function = "percentile_cont"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _hours(start: str, end: str) -> Func:
    return Func(
        ExpressionWrapper(F(end) - F(start), output_field=DurationField()),
        template="EXTRACT(EPOCH FROM %(expressions)s) / 3600.0",
        output_field=FloatField(),
    )


@dataclass(frozen=True)
class RecoveryFigures:
    """The recovery figures of one team (or all) over one period (docs/satisfaction.md).

    Period figures count the tasks opened in [start, end); `open_now` and `overdue_now`
    are the tasks open at `now`, whenever they were opened."""

    opened: int = 0
    done: int = 0
    done_in_time: int = 0
    settled: int = 0
    mean_hours: float | None = None
    median_hours: float | None = None
    open_now: int = 0
    overdue_now: int = 0

    @property
    def rate(self) -> float | None:
        """Recovery rate: tasks done ÷ tasks opened in the period."""
        return self.done / self.opened if self.opened else None

    @property
    def within_share(self) -> float | None:
        """Tasks recorded within KEHU_RECOVERY_HOURS of opening ÷ settled tasks (done,
        or past their due time) opened in the period."""
        return self.done_in_time / self.settled if self.settled else None


def _aggregates(start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    period = Q(created_at__gte=start, created_at__lt=end)
    done = period & Q(status=Status.DONE)
    in_time = done & Q(
        closed_at__lte=F("created_at") + timedelta(hours=settings.KEHU_RECOVERY_HOURS)
    )
    hours = _hours("created_at", "closed_at")
    return {
        "opened": Count("pk", filter=period),
        "done": Count("pk", filter=done),
        "done_in_time": Count("pk", filter=in_time),
        "settled": Count(
            "pk", filter=period & (Q(status=Status.DONE) | Q(due_at__lte=now))
        ),
        "mean_hours": Avg(hours, filter=done),
        "median_hours": Median(hours, filter=done),
        "open_now": Count("pk", filter=Q(status=Status.OPEN)),
        "overdue_now": Count("pk", filter=Q(status=Status.OPEN, due_at__lt=now)),
    }


def _relevant(start: datetime, end: datetime) -> QuerySet:
    """Rows any figure reads: opened in the period, or open now."""
    return RecoveryTask.objects.filter(
        Q(created_at__gte=start, created_at__lt=end) | Q(status=Status.OPEN)
    )


def recovery_figures(
    *,
    start: datetime,
    end: datetime,
    team_id: int | None = None,
    now: datetime | None = None,
) -> RecoveryFigures:
    """The figures of every task, or of one team's, in one SQL statement."""
    tasks = _relevant(start, end)
    if team_id is not None:
        tasks = tasks.filter(team_id=team_id)
    return RecoveryFigures(
        **tasks.aggregate(**_aggregates(start, end, now or timezone.now()))
    )


def recovery_figures_by_team(
    *, start: datetime, end: datetime, now: datetime | None = None
) -> dict[int | None, RecoveryFigures]:
    """The figures of each team (None: tasks without a team), in one SQL statement."""
    rows = (
        _relevant(start, end)
        .order_by()
        .values("team_id")
        .annotate(**_aggregates(start, end, now or timezone.now()))
    )
    return {row.pop("team_id"): RecoveryFigures(**row) for row in rows}
