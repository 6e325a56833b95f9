"""The service recovery's demo rows (`seed_demo`): for the demo's unhappy answers, some
recovery tasks open, some overdue (their escalation reaches the managers once the
worker runs) and some recorded with an outcome and a second answer.

When the survey demo has made no unhappy answers yet, a few are made here on resolved
demo tickets, so the 服务补救 pages always have something to show. Idempotent: surveys
are made only while fewer than SURVEYS unhappy answers exist, a survey has at most one
task, and only open tasks are shaped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.core.db import audited
from crm.core.seeding import DemoRun
from culture.satisfaction import recovery
from culture.satisfaction.models import RecoveryTask, Survey

SURVEYS = 8
# Open tasks due longer ago than this were recorded by the demo's leads.
RECORDED_AFTER = dt.timedelta(hours=36)
# (kind, score, comment, hours ago answered): the demo's own unhappy answers.
ANSWERS = [
    ("csat", 2, "维修师傅迟到了两个小时，也没有提前打电话。", 3),
    ("csat", 1, "问题反映了三次还没解决，非常失望。", 50),
    ("nps", 4, "物业响应太慢，不会推荐给朋友。", 30),
    ("csat", 3, "问题解决了，但等得太久。", 70),
    ("nps", 6, "服务还行，收费说明不清楚。", 96),
    ("csat", 2, "客服态度冷淡。", 8),
]
# What the demo's recorded tasks say (outcome, second score, note).
RECORDS = [
    ("resolved", 4, "组长致电道歉，安排次日重新上门，客户表示满意。"),
    ("partly", 3, "已说明延误原因并减免本次上门费，客户仍希望缩短响应时间。"),
]


def _unhappy() -> Any:
    return Survey.objects.filter(answered_at__isnull=False).filter(
        kind="csat", score__lte=3
    ) | Survey.objects.filter(answered_at__isnull=False, kind="nps", score__lte=6)


def _make_surveys(now: dt.datetime) -> int:
    from service.models import Ticket

    missing = SURVEYS - _unhappy().count()
    if missing <= 0:
        return 0
    tickets = list(
        Ticket.objects.filter(
            status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED], surveys=None
        ).order_by("pk")[: min(missing, len(ANSWERS))]
    )
    for ticket, (kind, score, comment, hours) in zip(tickets, ANSWERS, strict=False):
        answered = now - dt.timedelta(hours=hours)
        Survey.objects.create(
            source=Survey.Source.TICKET,
            kind=kind,
            customer_id=ticket.customer_id,
            ticket=ticket,
            team_id=ticket.team_id,
            staff_id=ticket.assignee_id,
            channel="sms",
            status=Survey.Status.ANSWERED,
            expires_at=answered + dt.timedelta(days=7),
            sent_at=answered - dt.timedelta(hours=2),
            answered_at=answered,
            score=score,
            comment=comment,
        )
    return len(tickets)


def _waiting() -> Any:
    return Survey.objects.filter(
        status__in=[Survey.Status.SENT, Survey.Status.EXPIRED], answered_at__isnull=True
    ).exclude(channel="")


def _late_answers(now: dt.datetime) -> int:
    """With fewer than two open tasks past their due time, two surveys that waited
    were answered unhappily 30 hours ago (set as the survey demo sets its answers)."""
    from service.models import Ticket

    # Those due longer ago than RECORDED_AFTER are recorded below: they do not count.
    staying = RecoveryTask.objects.filter(
        status="open", due_at__lt=now, due_at__gte=now - RECORDED_AFTER
    )
    wanted = 2 - staying.count()
    if wanted <= 0:
        return 0
    answered_at = now - dt.timedelta(hours=30)
    surveys = _waiting().filter(sent_at__lt=answered_at).order_by("-sent_at", "pk")
    made = 0
    for survey in surveys[:wanted]:
        survey.score = 4 if survey.kind == "nps" else 2
        survey.comment = ANSWERS[1][2]
        survey.answered_at, survey.status, survey.nonce = answered_at, "answered", ""
        survey.save(
            update_fields=["score", "comment", "answered_at", "status", "nonce"]
        )
        if survey.ticket_id and survey.kind == "csat":
            Ticket.objects.filter(pk=survey.ticket_id).update(satisfaction=survey.score)
        made += 1
    return made


def _fresh_answers(now: dt.datetime) -> int:
    """With fewer than two open tasks still inside their 24 hours, surveys still
    waiting are answered unhappily now, through the answer service (which opens the
    task), so the list has fresh rows."""
    from culture.satisfaction import services

    wanted = 2 - RecoveryTask.objects.filter(status="open", due_at__gte=now).count()
    if wanted <= 0:
        return 0
    surveys = _waiting().filter(expires_at__gt=now).order_by("-sent_at", "pk")
    made = 0
    for survey in surveys[:wanted]:
        score = 4 if survey.kind == "nps" else 2
        services.survey_answer(survey=survey, score=score, comment=ANSWERS[0][2])
        made += 1
    return made


def _open_tasks() -> int:
    """A task for every unhappy answer without one, opened at the answer's time."""
    opened = 0
    for survey in _unhappy().filter(recovery__isnull=True).order_by("pk"):
        task = recovery.recovery_open_for(survey, now=survey.answered_at)
        if task is not None:
            RecoveryTask.objects.filter(pk=task.pk).update(
                created_at=survey.answered_at
            )
            opened += 1
    return opened


def recovery_demo(run: DemoRun) -> str:
    now = timezone.now()
    with transaction.atomic(), audited(None):
        made = _make_surveys(now)
        opened = _open_tasks()
        made += _late_answers(now)
        opened += _open_tasks()
        made += _fresh_answers(now)
        # Tasks due more than RECORDED_AFTER ago were recovered; the rest stay open,
        # the late ones overdue (the escalation and the list's red rows).
        old = RecoveryTask.objects.filter(
            status="open", due_at__lt=now - RECORDED_AFTER
        ).select_related("survey", "team", "assignee")
        recorded = 0
        for index, task in enumerate(old.order_by("due_at", "pk")):
            _record(task, *RECORDS[index % len(RECORDS)], now, run, late=index % 3 == 2)
            recorded += 1
    if not (made or opened or recorded):
        return ""
    return f"{opened} recovery tasks opened, {recorded} recorded"


def _record(
    task: RecoveryTask,
    outcome: str,
    second: int,
    note: str,
    now: dt.datetime,
    run: DemoRun,
    *,
    late: bool = False,
) -> None:
    by = task.assignee if task.assignee_id else run.users["manager1"]
    if not recovery.can_record(by, task):
        by = run.users["manager1"]
    if task.survey.kind == "nps":
        second = min(10, second * 2 + 1)
    # Called back five hours after the answer (one in three late, after 30 hours) and
    # recorded ten minutes later.
    called = min(now, task.survey.answered_at + dt.timedelta(hours=30 if late else 5))
    recovery.recovery_record(
        by=by,
        task=task,
        version=task.version,
        called_back_at=called,
        outcome=outcome,
        note=note,
        second_score=second,
        now=min(now, called + dt.timedelta(minutes=10)),
    )
