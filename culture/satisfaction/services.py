"""Surveys sent and answered (docs/satisfaction.md).

A survey is made at most once per case, by the case's trigger:

- a resolved ticket (`service.events.on_ticket_resolved`): CSAT, for the ticket's team
  and assignee, and for the department of its completed back-office work order;
- a finished handover (`service.handover.events.on_handover_finished`: the unit's
  accepted or refused outcome, or the check-in of an appointment without a unit):
  NPS, for the customer's owner and team;
- a campaign to a segment (`campaign_create`, run by the scheduled action
  `satisfaction.campaign`).

Making a survey queues its message in the same transaction (crm/channels, at most
once per survey, after KEHU_SURVEY_DELAY_MINUTES) and schedules its one reminder
(`satisfaction.remind`, KEHU_SURVEY_REMINDER_HOURS later, sent only while unanswered
and unexpired). The partial unique constraints of Survey keep a second trigger of the
same case, even a concurrent one, from making a second survey: `get_or_create` (one
case) and `INSERT … ON CONFLICT DO NOTHING` (a campaign) leave the first in place.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts.roles import Role
from crm.channels import services as channels
from crm.core.db import audited
from crm.scheduler import services as scheduler
from culture.satisfaction import links, recovery
from culture.satisfaction.models import (
    CSAT_MAX,
    NPS_MAX,
    Campaign,
    Survey,
    SurveyKind,
)
from culture.segments.models import Segment
from customers.models import Customer

logger = logging.getLogger(__name__)

SURVEY_PURPOSE = "satisfaction.survey"
REMINDER_PURPOSE = "satisfaction.reminder"
REMIND = "satisfaction.remind"
CAMPAIGN_RUN = "satisfaction.campaign"
CAMPAIGN_ROLES = (Role.MANAGER, Role.ADMIN)
CAMPAIGN_CHUNK = 200
COMMENT_MAX = 1000
# The customer's primary number as SMS can reach it: a mainland mobile, or a number
# in international form (customers/phones.py stores those as E.164).
MOBILE_PATTERN = r"^(1[3-9][0-9]{9}|\+[0-9]{6,19})$"
_MOBILE = re.compile(MOBILE_PATTERN)

SMS = channels.Channel.SMS
EMAIL = channels.Channel.EMAIL


class AnswerRefused(Exception):
    """The survey takes no answer: `reason` is answered or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- where a survey goes ---------------------------------------------------------------


def contact_for(customer: Customer, channel: str = "") -> tuple[str, str] | None:
    """(channel, address): SMS to the primary mobile, else e-mail, else None. With
    `channel`, only that channel."""
    phone = re.sub(r"[\s-]", "", customer.phone or "")
    if channel in ("", SMS) and _MOBILE.match(phone):
        return SMS, phone
    if channel in ("", EMAIL) and customer.email:
        return EMAIL, customer.email
    return None


def _text(survey: Survey, url: str, *, reminder: bool) -> tuple[str, str]:
    """(subject, body) of the survey's message, in Chinese, with the personal link."""
    days = settings.KEHU_SURVEY_LINK_DAYS
    if reminder:
        body = _(
            "【客户服务】温馨提醒：您的满意度评价还未提交，只需点一下即可完成，"
            "您的意见对我们很重要：%(url)s（%(days)s天内有效）"
        )
        subject = _("提醒：请为我们的服务打分")
    elif survey.source == Survey.Source.TICKET and survey.ticket_id:
        body = _(
            "【客户服务】您的工单 %(ref)s 已处理完毕。请点一下为本次服务打分："
            "%(url)s（%(days)s天内有效）"
        )
        subject = _("请为本次服务打分：工单 %(ref)s")
    elif survey.source == Survey.Source.HANDOVER:
        body = _(
            "【入伙服务】恭喜您顺利办理入伙！您愿意向亲友推荐我们吗？请点一下打分："
            "%(url)s（%(days)s天内有效）"
        )
        subject = _("您愿意向亲友推荐我们吗？")
    else:
        body = _(
            "【客户服务】感谢您一直以来的支持！请点一下告诉我们您的感受："
            "%(url)s（%(days)s天内有效）"
        )
        subject = _("请告诉我们您的感受")
    reference = survey.ticket.reference if survey.ticket_id else ""
    values = {"url": url, "days": days, "ref": reference}
    return subject % values, body % values


def reminder_key(survey_id: int) -> str:
    return f"survey:{survey_id}:remind"


def _queue(survey: Survey, channel: str, to: str, now: dt.datetime) -> bool:
    """Queue the survey's message and its reminder; False if the address is refused.
    Call inside the transaction that made the survey."""
    subject, body = _text(survey, links.url_for(survey), reminder=False)
    due = now + links.send_delay()
    try:
        with transaction.atomic():
            channels.message_queue(
                channel=channel,
                to=to,
                subject=subject,
                body=body,
                purpose=SURVEY_PURPOSE,
                key=f"survey:{survey.pk}",
                due_at=due,
            )
    except ValidationError:
        return False
    scheduler.action_schedule(
        kind=REMIND,
        target_id=survey.pk,
        due_at=due + dt.timedelta(hours=settings.KEHU_SURVEY_REMINDER_HOURS),
        key=reminder_key(survey.pk),
    )
    survey.channel, survey.status, survey.sent_at = channel, Survey.Status.SENT, due
    return True


def _make(
    *, lookup: dict[str, Any], defaults: dict[str, Any], customer: Customer
) -> Survey | None:
    """The case's survey, made and queued once; None when it existed already."""
    now = timezone.now()
    with transaction.atomic():
        survey, created = Survey.objects.get_or_create(
            **lookup,
            defaults={
                **defaults,
                "customer": customer,
                "nonce": links.new_nonce(),
                "expires_at": links.expiry_from(now),
            },
        )
        if not created:
            return None
        contact = contact_for(customer)
        if contact is None or not _queue(survey, *contact, now):
            survey.status = Survey.Status.UNREACHABLE
        survey.save(update_fields=["channel", "status", "sent_at"])
    return survey


# --- triggers ---------------------------------------------------------------------------


def survey_for_ticket(ticket: Any) -> Survey | None:
    """CSAT after a resolved ticket, once per ticket (a reopened ticket resolved again
    is not asked again)."""
    from service.models import Ticket, WorkOrder

    ticket = Ticket.objects.select_related("customer").get(pk=ticket.pk)
    if ticket.merged_into_id or ticket.customer.merged_into_id:
        return None
    department = (
        WorkOrder.objects.filter(ticket=ticket, status=WorkOrder.Status.DONE)
        .order_by("-completed_at", "-pk")
        .values_list("department_id", flat=True)
        .first()
    )
    return _make(
        lookup={"source": Survey.Source.TICKET, "ticket": ticket},
        defaults={
            "kind": SurveyKind.CSAT,
            "team_id": ticket.team_id,
            "staff_id": ticket.assignee_id,
            "department_id": department,
        },
        customer=ticket.customer,
    )


def survey_for_handover(appointment: Any) -> Survey | None:
    """NPS after a finished handover, once per appointment."""
    customer = Customer.objects.get(pk=appointment.customer_id)
    if customer.merged_into_id:
        return None
    return _make(
        lookup={"source": Survey.Source.HANDOVER, "appointment": appointment},
        defaults={
            "kind": SurveyKind.NPS,
            "team_id": customer.team_id,
            "staff_id": customer.owner_id,
        },
        customer=customer,
    )


def _hooked(make: Any, case: Any) -> None:
    """A hook runs after the case's transaction committed: a failure here is logged,
    never a 500 for the agent whose ticket is resolved."""
    try:
        make(case)
    except Exception:
        logger.exception("survey trigger %s failed for %r", make.__name__, case.pk)


def on_ticket_resolved(ticket: Any) -> None:
    _hooked(survey_for_ticket, ticket)


def on_handover_finished(appointment: Any) -> None:
    _hooked(survey_for_handover, appointment)


# --- the reminder -----------------------------------------------------------------------


def survey_remind(action: Any) -> None:
    """Scheduled action: the one reminder, while the survey is unanswered and its link
    still opens. The message's key makes a second delivery send nothing more."""
    now = timezone.now()
    with transaction.atomic():
        survey = (
            Survey.objects.select_for_update(no_key=True, of=("self",))
            .select_related("customer", "ticket")
            .filter(pk=action.target_id)
            .first()
        )
        if (
            survey is None
            or survey.status != Survey.Status.SENT
            or survey.answered_at is not None
            or survey.reminded_at is not None
            or survey.expires_at <= now
        ):
            return
        contact = contact_for(survey.customer, survey.channel)
        if contact is None:
            return
        subject, body = _text(survey, links.url_for(survey), reminder=True)
        try:
            with transaction.atomic():
                channels.message_queue(
                    channel=contact[0],
                    to=contact[1],
                    subject=subject,
                    body=body,
                    purpose=REMINDER_PURPOSE,
                    key=f"survey:{survey.pk}:reminder",
                )
        except ValidationError:
            return
        survey.reminded_at = now
        survey.save(update_fields=["reminded_at"])


def surveys_expire(*, now: dt.datetime | None = None) -> int:
    """Mark sent surveys whose link no longer opens as expired (one UPDATE)."""
    now = now or timezone.now()
    return Survey.objects.filter(
        status=Survey.Status.SENT, answered_at__isnull=True, expires_at__lte=now
    ).update(status=Survey.Status.EXPIRED)


# --- the answer -------------------------------------------------------------------------


def score_range(kind: str) -> range:
    return range(0, NPS_MAX + 1) if kind == SurveyKind.NPS else range(1, CSAT_MAX + 1)


def survey_answer(*, survey: Survey, score: int, comment: str = "") -> Survey:
    """Record the customer's answer once: the link stops working (nonce cleared), the
    reminder is cancelled, a ticket's CSAT becomes its 满意度, and an unhappy answer
    opens the recovery task (culture/satisfaction/recovery.py)."""
    now = timezone.now()
    with transaction.atomic(), audited(None):
        current = Survey.objects.select_for_update(no_key=True).get(pk=survey.pk)
        if current.answered_at is not None:
            raise AnswerRefused("answered")
        if current.expires_at <= now:
            raise AnswerRefused("expired")
        if not isinstance(score, int) or score not in score_range(current.kind):
            raise ValidationError({"score": _("请选择一个分数。")})
        current.score = score
        current.comment = (comment or "").strip()[:COMMENT_MAX]
        current.answered_at = now
        current.status = Survey.Status.ANSWERED
        current.nonce = ""
        current.save(
            update_fields=["score", "comment", "answered_at", "status", "nonce"]
        )
        scheduler.action_cancel(key=reminder_key(current.pk))
        if current.ticket_id and current.kind == SurveyKind.CSAT:
            from service.models import Ticket

            Ticket.objects.filter(pk=current.ticket_id).update(satisfaction=score)
        if current.is_unhappy:
            # The closed loop: one recovery task for the team lead, in this
            # transaction (the answer and its task exist together).
            recovery.recovery_open_for(current, now=now)
    return current


# --- campaigns --------------------------------------------------------------------------


def can_run_campaigns(user: Any) -> bool:
    return bool(user.is_authenticated and user.role in CAMPAIGN_ROLES)


def campaign_create(
    *, by: Any, name: str, segment: Segment, kind: str, channel: str
) -> Campaign:
    """Queue a survey of the segment's members that `by` may see; the scheduled action
    `satisfaction.campaign` sends it in the background."""
    if not can_run_campaigns(by):
        raise PermissionDenied
    if not Segment.objects.visible_to(by).filter(pk=segment.pk).exists():
        raise PermissionDenied
    if kind not in SurveyKind.values:
        raise ValidationError({"kind": _("请选择题型。")})
    if channel not in (SMS, EMAIL):
        raise ValidationError({"channel": _("请选择渠道。")})
    if not name.strip():
        raise ValidationError({"name": _("请填写名称。")})
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name.strip()[:100],
            segment=segment,
            kind=kind,
            channel=channel,
            created_by=by,
        )
        scheduler.action_schedule(
            kind=CAMPAIGN_RUN,
            target_id=campaign.pk,
            due_at=timezone.now(),
            key=f"survey-campaign:{campaign.pk}",
        )
    return campaign


def _campaign_members_sql(campaign: Campaign) -> tuple[str, tuple]:
    from culture.segments import services as segment_services

    members = segment_services.visible_members(
        user=campaign.created_by, segment=campaign.segment
    )
    return members.values("pk").query.sql_with_params()


def _campaign_prepare(campaign: Campaign, now: dt.datetime) -> None:
    """One statement makes every member's survey (a member who has one already keeps
    it: ON CONFLICT DO NOTHING), one marks those the channel cannot reach."""
    members, params = _campaign_members_sql(campaign)
    table = Survey._meta.db_table
    customers = Customer._meta.db_table
    if campaign.channel == SMS:
        reach, reach_params = "c.phone ~ %s", (MOBILE_PATTERN,)
    else:
        reach, reach_params = "c.email <> ''", ()
    insert = f"""INSERT INTO {table} (source, kind, customer_id, campaign_id, channel,
            status, nonce, expires_at, comment, created_at)
        SELECT 'campaign', %s, c.id, %s, %s, 'pending',
            replace(gen_random_uuid()::text, '-', ''), %s, '', %s
        FROM {customers} c WHERE c.id IN ({members})
        ON CONFLICT DO NOTHING"""  # noqa: S608  # nosec B608 # table names from _meta; the members subquery compiled by the ORM, values bound
    unreachable = f"""UPDATE {table} s SET status = 'unreachable', nonce = ''
        FROM {customers} c
        WHERE s.campaign_id = %s AND s.status = 'pending'
            AND c.id = s.customer_id AND NOT ({reach})"""  # noqa: S608  # nosec B608 # table names from _meta, the condition one of two constants, values bound
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            insert,
            (campaign.kind, campaign.pk, campaign.channel, links.expiry_from(now), now)
            + tuple(params),
        )
        cursor.execute(unreachable, (campaign.pk, *reach_params))
        surveys = Survey.objects.filter(campaign=campaign)
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.RUNNING,
            total=surveys.count(),
            skipped=surveys.filter(status=Survey.Status.UNREACHABLE).count(),
            sent=surveys.filter(status=Survey.Status.SENT).count(),
        )


def _campaign_chunk(campaign: Campaign) -> int:
    """Queue the next chunk of the campaign's pending surveys; how many were taken."""
    now = timezone.now()
    with transaction.atomic():
        chunk = list(
            Survey.objects.select_for_update(
                no_key=True, skip_locked=True, of=("self",)
            )
            .select_related("customer")
            .filter(campaign=campaign, status=Survey.Status.PENDING)
            .order_by("pk")[:CAMPAIGN_CHUNK]
        )
        sent = skipped = 0
        for survey in chunk:
            contact = contact_for(survey.customer, campaign.channel)
            if contact is not None and _queue(survey, *contact, now):
                sent += 1
            else:
                survey.status = Survey.Status.UNREACHABLE
                skipped += 1
        Survey.objects.bulk_update(chunk, ["channel", "status", "sent_at"])
        Campaign.objects.filter(pk=campaign.pk).update(
            sent=F("sent") + sent, skipped=F("skipped") + skipped
        )
    return len(chunk)


def campaign_run(action: Any) -> None:
    """Scheduled action: make the campaign's surveys, then queue their messages chunk
    by chunk, each chunk committed (the progress page reads the counts). A second
    delivery, or one after a worker restart, goes on where the first stopped: the
    members' surveys exist once, and only pending ones are sent."""
    campaign = (
        Campaign.objects.select_related("created_by", "segment")
        .filter(pk=action.target_id)
        .first()
    )
    if campaign is None or campaign.status in (
        Campaign.Status.DONE,
        Campaign.Status.FAILED,
    ):
        return
    try:
        _campaign_prepare(campaign, timezone.now())
        while _campaign_chunk(campaign):
            pass
    except Exception as exc:
        # The pipeline delivers the action again (its back-off); the page shows why.
        Campaign.objects.filter(pk=campaign.pk).update(error=str(exc)[:500])
        raise
    Campaign.objects.filter(pk=campaign.pk).exclude(status=Campaign.Status.DONE).update(
        status=Campaign.Status.DONE, finished_at=timezone.now(), error=""
    )


# --- customer merge ---------------------------------------------------------------------


def merge_surveys(survivor: Customer, duplicate: Customer) -> None:
    """The duplicate's surveys move to the survivor, but for a campaign both were
    asked in (once per campaign and customer): that one stays with the duplicate."""
    both = Survey.objects.filter(
        customer=survivor, source=Survey.Source.CAMPAIGN
    ).values("campaign_id")
    Survey.objects.filter(customer=duplicate).exclude(
        source=Survey.Source.CAMPAIGN, campaign_id__in=both
    ).update(customer=survivor)
