"""The satisfaction surveys' part of `seed_demo` (crm/core/seeding.py).

Every demo ticket that was resolved gets its CSAT survey, sent when it was resolved;
the tickets the service demo gave a 满意度 are answered with that score (so the ticket
figures and the survey figures agree), the rest are a realistic mix of unanswered,
reminded, expired and unreachable. Every checked-in handover appointment gets its NPS
survey, and two finished campaigns: a year-end NPS survey of up to 300 customers (a
static segment made for it) and a CSAT survey of the largest shared segment. Some answers
are unhappy (CSAT ≤ 3, NPS ≤ 6): the recovery demo (demo_recovery.py) follows them up.
Idempotent: a second run adds nothing.

The demo's tickets were resolved through the service, so the live trigger may already
have made a survey for some (sent at seeding time): those are kept, and answered with
the ticket's score when it has one.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from crm.core import seeding
from culture.satisfaction import demo_recovery, links
from culture.satisfaction.models import Campaign, Survey, SurveyKind

COMMENTS_HAPPY = [
    "师傅很专业，处理得很快。",
    "客服态度很好，谢谢！",
    "准时上门，问题一次解决。",
    "",
    "",
]
COMMENTS_UNHAPPY = [
    "等了三天才有人联系我。",
    "问题没有彻底解决，还会再坏。",
    "电话打了好几次才接通。",
    "上门时间一改再改。",
]
NPS_SCORES = [10, 9, 9, 8, 8, 7, 6, 5, 3]
CSAT_ANSWER_SHARE = 0.6
NPS_ANSWER_SHARE = 0.5


def _comment(rng: random.Random, unhappy: bool) -> str:
    if unhappy:
        return rng.choice(COMMENTS_UNHAPPY)
    return rng.choice(COMMENTS_HAPPY) if rng.random() < 0.4 else ""


def _unanswered(survey: Survey, rng: random.Random, now: dt.datetime) -> None:
    roll = rng.random()
    if roll < 0.08:
        survey.status, survey.channel, survey.nonce = "unreachable", "", ""
        return
    survey.status = "expired" if survey.expires_at <= now else "sent"
    if survey.sent_at + dt.timedelta(hours=48) < now and roll < 0.7:
        survey.reminded_at = survey.sent_at + dt.timedelta(hours=48)


def _answer(survey: Survey, rng: random.Random, score: int, now: dt.datetime) -> None:
    at = survey.sent_at + dt.timedelta(minutes=rng.randint(3, 2 * 24 * 60))
    if at >= min(now, survey.expires_at):
        at = survey.sent_at + dt.timedelta(minutes=rng.randint(1, 30))
    survey.score, survey.answered_at = score, min(at, now)
    survey.status, survey.nonce = "answered", ""
    unhappy = score <= (6 if survey.kind == SurveyKind.NPS else 3)
    survey.comment = _comment(rng, unhappy)


def _new(rng: random.Random, sent: dt.datetime, **fields: object) -> Survey:
    survey = Survey(
        nonce=links.new_nonce(),
        sent_at=sent,
        expires_at=sent + links.link_lifetime(),
        channel="sms" if rng.random() < 0.85 else "email",
        status="sent",
        **fields,
    )
    return survey


def _ticket_surveys(rng: random.Random, now: dt.datetime) -> int:
    from service.models import Ticket, WorkOrder

    tickets = list(
        Ticket.objects.filter(
            resolved_at__isnull=False, merged_into__isnull=True, surveys__isnull=True
        ).order_by("pk")
    )
    departments = dict(
        WorkOrder.objects.filter(ticket__in=tickets, status="done")
        .order_by("ticket_id", "completed_at")
        .values_list("ticket_id", "department_id")
    )
    made = []
    for ticket in tickets:
        survey = _new(
            rng,
            ticket.resolved_at + dt.timedelta(minutes=5),
            source="ticket",
            kind=SurveyKind.CSAT,
            customer_id=ticket.customer_id,
            ticket=ticket,
            team_id=ticket.team_id,
            staff_id=ticket.assignee_id,
            department_id=departments.get(ticket.pk),
        )
        if ticket.satisfaction and rng.random() < CSAT_ANSWER_SHARE / 0.8:
            _answer(survey, rng, min(5, max(1, ticket.satisfaction)), now)
        else:
            _unanswered(survey, rng, now)
        made.append(survey)
    Survey.objects.bulk_create(made)
    # The scores the desk's figures read agree with the answers.
    answered = {s.ticket_id: s.score for s in made if s.score is not None}
    Ticket.objects.filter(pk__in=[t.pk for t in tickets]).exclude(
        pk__in=list(answered)
    ).update(satisfaction=None)
    for ticket_id, score in answered.items():
        Ticket.objects.filter(pk=ticket_id).update(satisfaction=score)
    return len(made)


def _live_ones_answered(rng: random.Random, now: dt.datetime) -> None:
    """Surveys the trigger made while the service demo resolved its tickets: the
    ticket's demo score is their answer."""
    for survey in Survey.objects.filter(
        source="ticket", answered_at__isnull=True, ticket__satisfaction__isnull=False
    ).select_related("ticket"):
        survey.sent_at = min(survey.sent_at or now, now - dt.timedelta(minutes=10))
        _answer(survey, rng, survey.ticket.satisfaction, now)
        survey.save()


def _handover_surveys(rng: random.Random, now: dt.datetime) -> int:
    from service.handover.models import Appointment

    appointments = Appointment.objects.filter(
        checked_in_at__isnull=False, surveys__isnull=True
    ).select_related("customer")
    made = []
    for appointment in appointments.order_by("pk"):
        customer = appointment.customer
        survey = _new(
            rng,
            appointment.checked_in_at + dt.timedelta(hours=2),
            source="handover",
            kind=SurveyKind.NPS,
            customer=customer,
            appointment=appointment,
            team_id=customer.team_id,
            staff_id=customer.owner_id,
        )
        if survey.sent_at >= now:
            survey.sent_at = now - dt.timedelta(minutes=30)
            survey.expires_at = survey.sent_at + links.link_lifetime()
        if rng.random() < NPS_ANSWER_SHARE:
            _answer(survey, rng, rng.choice(NPS_SCORES), now)
        else:
            _unanswered(survey, rng, now)
        made.append(survey)
    Survey.objects.bulk_create(made)
    return len(made)


def _campaign_of(
    rng: random.Random,
    now: dt.datetime,
    *,
    name: str,
    segment: object,
    kind: str,
    by: object,
    days_ago: int,
    limit: int,
) -> int:
    from culture.segments.models import SegmentMember

    members = list(
        SegmentMember.objects.filter(segment=segment)
        .select_related("customer")
        .order_by("customer_id")[:limit]
    )
    sent_at = now - dt.timedelta(days=days_ago)
    campaign = Campaign.objects.create(
        name=name,
        segment=segment,
        kind=kind,
        channel="sms",
        status=Campaign.Status.DONE,
        created_by=by,
        finished_at=sent_at + dt.timedelta(minutes=2),
    )
    share = NPS_ANSWER_SHARE if kind == SurveyKind.NPS else CSAT_ANSWER_SHARE
    made = []
    for member in members:
        customer = member.customer
        survey = _new(
            rng,
            sent_at,
            source="campaign",
            kind=kind,
            customer=customer,
            campaign=campaign,
            team_id=customer.team_id,
            staff_id=customer.owner_id,
        )
        survey.channel = "sms"
        if not customer.phone:
            survey.status, survey.channel, survey.nonce = "unreachable", "", ""
        elif rng.random() < share:
            score = (
                rng.choice(NPS_SCORES)
                if kind == SurveyKind.NPS
                else rng.choices([5, 4, 3, 2, 1], [55, 25, 9, 6, 5])[0]
            )
            _answer(survey, rng, score, now)
        else:
            _unanswered(survey, rng, now)
        made.append(survey)
    Survey.objects.bulk_create(made)
    skipped = sum(1 for s in made if s.status == "unreachable")
    Campaign.objects.filter(pk=campaign.pk).update(
        total=len(made), sent=len(made) - skipped, skipped=skipped
    )
    return len(made)


def _campaigns(run: seeding.DemoRun, rng: random.Random, now: dt.datetime) -> int:
    """A year-end NPS survey of up to 300 verified customers (a static segment made
    for it), and a CSAT survey of the largest shared segment."""
    from django.db.models import Count

    from culture.segments.models import Segment, SegmentMember
    from customers.models import Customer

    manager = run.users.get("manager1") or run.users.get("admin")
    if manager is None or Campaign.objects.exists():
        return 0
    customers = list(
        Customer.objects.filter(merged_into__isnull=True, is_verified=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:300]
    )
    yearly = Segment.objects.create(
        name="年度满意度回访客户",
        description="演示：年度推荐意愿调查的对象。",
        kind=Segment.Kind.STATIC,
        visibility=Segment.Visibility.DEPARTMENT,
        owner=manager,
        team_id=manager.team_id,
        department_id=manager.team.department_id if manager.team_id else None,
        refreshed_at=now,
        member_count=len(customers),
    )
    SegmentMember.objects.bulk_create(
        SegmentMember(segment=yearly, customer_id=pk, since=now) for pk in customers
    )
    made = _campaign_of(
        rng,
        now,
        name="年度客户推荐意愿调查",
        segment=yearly,
        kind=SurveyKind.NPS,
        by=manager,
        days_ago=20,
        limit=300,
    )
    largest = (
        Segment.objects.exclude(pk=yearly.pk)
        .exclude(visibility=Segment.Visibility.PRIVATE)
        .annotate(n=Count("members"))
        .filter(n__gt=0)
        .order_by("-n", "pk")
        .first()
    )
    if largest is not None:
        made += _campaign_of(
            rng,
            now,
            name=f"{largest.name}：满意度回访",
            segment=largest,
            kind=SurveyKind.CSAT,
            by=manager,
            days_ago=5,
            limit=300,
        )
    return made


def seed_demo(run: seeding.DemoRun) -> str:
    rng = random.Random(run.seed + 16)  # noqa: S311 - demo data, not security
    now = timezone.now()
    with transaction.atomic():
        _live_ones_answered(rng, now)
        made = _ticket_surveys(rng, now)
        made += _handover_surveys(rng, now)
        made += _campaigns(run, rng, now)
    # The closed loop: recovery tasks for the unhappy answers (demo_recovery.py).
    recovered = demo_recovery.recovery_demo(run)
    said = [f"{made} satisfaction surveys added" if made else "", recovered]
    return "; ".join(filter(None, said))


seeding.register(__name__, demo=seed_demo)
