"""入伙通知书: send the notice to every owner of an event's units (docs/handover.md,
"Notices").

A NoticeRun is one sending, by SMS, e-mail or letter, to the units of an event (or of
one batch) for one round. The database is the job: `notice_run_advance` handles the
next CHUNK event units in one transaction (their Notices, their messages through
crm/channels, the run's counters and its cursor), so a worker killed mid-chunk loses
that chunk's work and nothing else, and a restarted job continues after the cursor.
Nobody gets the same round twice: the Notice's unique constraint (unit, recipient,
channel, round) and the message's idempotency key, both written in that transaction.

The Celery task is only the fast path. A scheduled action (`WATCH`, crm/scheduler)
looks at an unfinished run every WATCH_EVERY and queues its task again when no worker
holds its lease (Redis restarted empty, a worker died); the progress poll does the
same sooner while someone watches the page.

Delivered: a message the backend accepted is `sent`. Only the development backends
(the recording SMS backend, file/locmem/console e-mail) count a hand-off as delivery;
a real gateway's delivery receipts are not wired in, so its notices stay `sent`.
Letters are `sent` (posted) when the run records them; staff mark them delivered.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.accounts.roles import Role
from crm.channels import services as channels
from crm.channels.models import OutboundMessage
from crm.core.db import audited, retry_transient
from crm.scheduler import services as scheduler
from service.handover import links
from service.handover.models import (
    Batch,
    EventUnit,
    HandoverEvent,
    Notice,
    NoticeRun,
    OwnerLink,
)
from service.property.models import ProxyAuthorisation, UnitOwnership

logger = logging.getLogger(__name__)

PURPOSE = "handover.notice"
WATCH = "handover.notice_run_watch"
NOTICE_ROLES = (Role.MANAGER, Role.ADMIN)
CHUNK = 200
# Chunks per task run; then the task queues itself again, so one large run does not
# hold a worker for minutes while other work waits.
SLICE_CHUNKS = 10
# Covers one chunk on a loaded machine; renewed with every chunk.
LEASE = dt.timedelta(minutes=5)
# Seconds of work per task run (chunks or PDF parts) before it queues itself again.
SLICE_SECONDS = 240
# A run's watchdog looks every 30 s (one small action per unfinished run): a publish
# that was lost costs at most about that much delay.
WATCH_EVERY = dt.timedelta(seconds=30)
# The poll and the watchdog queue a run again only if it was not queued just before.
REQUEUE_AFTER = dt.timedelta(seconds=20)
MAX_ROUND = 9
_MOBILE = re.compile(r"1[3-9][0-9]{9}")

Channel = NoticeRun.Channel
RunState = NoticeRun.State
NoticeState = Notice.State

# Why a unit or an owner got no notice; ineligible units use their eligibility value.
SKIP_LABELS = {
    **{
        value: label
        for value, label in EventUnit.Eligibility.choices
        if value != EventUnit.Eligibility.ELIGIBLE
    },
    "no_owner": gettext_lazy("房间没有登记业主"),
    "no_mobile": gettext_lazy("业主没有手机号"),
    "no_email": gettext_lazy("业主没有有效邮箱"),
    "already_notified": gettext_lazy("本轮已通知过（其他发送任务）"),
}
# The e-mail backends that deliver by writing the message down (development, tests).
_RECORDING_EMAIL = (
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.console.EmailBackend",
)
_RECORDING_SMS = ("crm.channels.backends.RecordingSmsBackend",)


def may_send(user: Any) -> bool:
    return getattr(user, "role", None) in NOTICE_ROLES


def _require(by: Any) -> None:
    if not may_send(by):
        raise PermissionDenied


# --- who is notified ---------------------------------------------------------------------


def scope_of(*, event: HandoverEvent, batch: Batch | None = None) -> QuerySet:
    units = EventUnit.objects.filter(event=event)
    return units.filter(batch=batch) if batch is not None else units


def recipients_by_unit(event_units: list[EventUnit]) -> dict[int, list[Any]]:
    """The people a unit's notice goes to, primary owner first: its active owners and
    co-owners, then proxies with a valid 办理入伙 authorisation. Two queries."""
    by_unit: dict[int, list[int]] = {eu.unit_id: [] for eu in event_units}
    people: dict[int, Any] = {}
    ownerships = (
        UnitOwnership.objects.filter(unit_id__in=by_unit, is_active=True)
        .select_related("customer")
        .order_by("unit_id", "role", "id")  # "co_owner" < "primary": reversed below
    )
    owners: dict[int, list[Any]] = {}
    for ownership in ownerships:
        owners.setdefault(ownership.unit_id, []).append(ownership)
    today = timezone.localdate()
    proxies = (
        ProxyAuthorisation.objects.filter(
            unit_id__in=by_unit,
            scope=ProxyAuthorisation.Scope.HANDOVER,
            revoked_at__isnull=True,
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .select_related("proxy")
        .order_by("unit_id", "id")
    )
    for unit_id, rows in owners.items():
        rows.sort(key=lambda o: (o.role != UnitOwnership.Role.PRIMARY, o.pk))
        for ownership in rows:
            people[ownership.customer_id] = ownership.customer
            by_unit[unit_id].append(ownership.customer_id)
    for authorisation in proxies:
        people[authorisation.proxy_id] = authorisation.proxy
        by_unit[authorisation.unit_id].append(authorisation.proxy_id)
    result = {}
    for eu in event_units:
        seen = dict.fromkeys(by_unit.get(eu.unit_id, []))  # keeps order, drops repeats
        result[eu.pk] = [people[pk] for pk in seen if people[pk].merged_into_id is None]
    return result


def address_of(customer: Any, channel: str) -> str | None:
    """Where the notice goes by `channel`; None when the owner cannot get it that way."""
    if channel == Channel.LETTER:
        return ""
    if channel == Channel.SMS:
        number = re.sub(r"[\s-]", "", customer.phone or "").removeprefix("+86")
        return number if _MOBILE.fullmatch(number) else None
    try:
        return channels.address_check(channel="email", to=customer.email or "")
    except ValidationError:
        return None


def _no_address_reason(channel: str) -> str:
    return "no_mobile" if channel == Channel.SMS else "no_email"


@dataclass
class Preview:
    """What a run would do now: for the confirmation before it starts."""

    units: int = 0
    eligible_units: int = 0
    recipients: int = 0
    skipped: Counter = field(default_factory=Counter)

    @property
    def skipped_rows(self) -> list[tuple[str, int]]:
        return [(str(SKIP_LABELS[k]), n) for k, n in sorted(self.skipped.items())]


def notice_run_preview(
    *, event: HandoverEvent, batch: Batch | None, channel: str, round: int
) -> Preview:
    """How many owners a run would notify, and who would be skipped and why."""
    preview = Preview()
    units = scope_of(event=event, batch=batch).order_by("pk")
    last = 0
    while chunk := list(units.filter(pk__gt=last)[:1000]):
        last = chunk[-1].pk
        _plan_chunk(chunk, channel=channel, round=round, into=preview)
    return preview


def _plan_chunk(
    chunk: list[EventUnit], *, channel: str, round: int, into: Preview
) -> list[tuple[EventUnit, Any, str]]:
    """(event unit, person, address) to notify in `chunk`; counts the rest by reason."""
    recipients = recipients_by_unit(chunk)
    notified = set(
        Notice.objects.filter(
            event_unit__in=chunk, channel=channel, round=round
        ).values_list("event_unit_id", "recipient_id")
    )
    planned = []
    for eu in chunk:
        into.units += 1
        if not eu.is_eligible:
            into.skipped[eu.eligibility] += 1
            continue
        into.eligible_units += 1
        people = recipients[eu.pk]
        if not people:
            into.skipped["no_owner"] += 1
            continue
        for person in people:
            if (eu.pk, person.pk) in notified:
                into.skipped["already_notified"] += 1
                continue
            address = address_of(person, channel)
            if address is None:
                into.skipped[_no_address_reason(channel)] += 1
                continue
            into.recipients += 1
            planned.append((eu, person, address))
    return planned


# --- the run -----------------------------------------------------------------------------


def _enqueue(run_id: int) -> None:
    from service.handover import tasks

    tasks.notice_run_advance_task.delay(run_id)


def _watch_key(run_id: int, after: int = 0) -> str:
    """The first watch of a run, then one after each earlier watch action (a chain)."""
    return f"handover-notice-run:{run_id}:watch:{after}"


def _queue(run: NoticeRun, now: dt.datetime) -> None:
    """Queue the run's task after commit; robust: a broker that is down must not undo
    the run, whose watchdog queues it again."""
    NoticeRun.objects.filter(pk=run.pk).update(queued_at=now)
    transaction.on_commit(lambda: _enqueue(run.pk), robust=True)


@retry_transient
def notice_run_start(
    *,
    by: Any,
    event: HandoverEvent,
    channel: str,
    batch: Batch | None = None,
    round: int = 1,
) -> NoticeRun:
    """Create the run and queue its job; the job notifies the owners chunk by chunk."""
    _require(by)
    errors = {}
    if channel not in Channel.values:
        errors["channel"] = _("请选择通知方式。")
    if not 1 <= round <= MAX_ROUND:
        errors["round"] = _("轮次须在 1 到 %(max)s 之间。") % {"max": MAX_ROUND}
    if batch is not None and batch.event_id != event.pk:
        errors["batch"] = _("该批次不属于本活动。")
    if event.status == HandoverEvent.Status.CLOSED:
        errors["__all__"] = _("活动已关闭，不能再发送通知。")
    elif event.status == HandoverEvent.Status.DRAFT:
        # The notice's link leads to booking, which a draft does not take yet.
        errors["__all__"] = _("请先发布活动，再发送通知。")
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic(), audited(by):
        # One unfinished run per event: two at once would race for the same owners
        # (the constraint would hold, but the counts would be hard to read).
        HandoverEvent.objects.select_for_update(no_key=True).filter(pk=event.pk).first()
        if NoticeRun.objects.filter(
            event=event, state__in=[RunState.PENDING, RunState.RUNNING]
        ).exists():
            raise ValidationError(_("本活动已有正在发送的通知任务，请等它完成。"))
        run = NoticeRun.objects.create(
            event=event,
            batch=batch,
            channel=channel,
            round=round,
            created_by=by,
            total=scope_of(event=event, batch=batch).count(),
        )
        scheduler.action_schedule(
            kind=WATCH,
            target_id=run.pk,
            due_at=now + WATCH_EVERY,
            key=_watch_key(run.pk),
        )
        _queue(run, now)
    run.refresh_from_db()
    return run


class RunBusy(Exception):
    """Another worker holds the run's lease; retry once it has run out."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"notice run busy for {seconds:.0f}s")
        self.seconds = seconds


def _claim(run_id: int, lease: dt.timedelta = LEASE) -> NoticeRun | None:
    """Take the run for this worker; None when it is finished. RunBusy while another
    worker's lease stands (a task redelivered after a kill, while the dead run's lease
    still runs)."""
    now = timezone.now()
    claimed = (
        NoticeRun.objects.filter(
            pk=run_id, state__in=[RunState.PENDING, RunState.RUNNING]
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(state=RunState.RUNNING, lease_until=now + lease)
    )
    if claimed:
        return NoticeRun.objects.select_related("event", "batch", "created_by").get(
            pk=run_id
        )
    held_until = (
        NoticeRun.objects.filter(
            pk=run_id, state__in=[RunState.PENDING, RunState.RUNNING]
        )
        .values_list("lease_until", flat=True)
        .first()
    )
    if held_until:
        raise RunBusy(max(1.0, (held_until - now).total_seconds() + 1))
    return None


def notice_run_advance(*, run_id: int, chunks: int = SLICE_CHUNKS) -> NoticeRun | None:
    """Handle up to `chunks` chunks of the run; queue the task again for the rest, or
    finish the run. None if the run is finished (or not there). Safe to run twice."""
    run = _claim(run_id)
    if run is None:
        return None
    deadline = time.monotonic() + SLICE_SECONDS
    try:
        for _chunk in range(chunks):
            if not _advance_chunk(run.pk):
                finished = _finish(run, deadline=deadline)
                break
        else:
            finished = False
        if not finished:
            with transaction.atomic():
                NoticeRun.objects.filter(pk=run.pk).update(lease_until=None)
                _queue(run, timezone.now())
    except Exception as error:
        # Let the retry start at once rather than after the lease.
        NoticeRun.objects.filter(pk=run.pk).update(
            lease_until=None, error=str(error)[:500]
        )
        raise
    run.refresh_from_db()
    return run


def _advance_chunk(run_id: int) -> bool:
    """Notify the owners of the next CHUNK units after the cursor, in one transaction
    with the counters and the cursor. False when no unit was left."""
    with transaction.atomic():
        run = (
            NoticeRun.objects.select_for_update(no_key=True, of=("self",))
            .select_related("event", "batch", "created_by")
            .get(pk=run_id)
        )
        if run.state != RunState.RUNNING:
            return False
        chunk = list(
            scope_of(event=run.event, batch=run.batch)
            .filter(pk__gt=run.cursor)
            .select_related("unit__building__phase__project", "batch", "event")
            .order_by("pk")[:CHUNK]
        )
        if not chunk:
            return False
        plan = Preview()
        days = {
            eu.batch_id: batch_days(eu.batch, run.event)
            for eu in {eu.batch_id: eu for eu in chunk}.values()
        }
        with audited(run.created_by):
            for eu, person, address in _plan_chunk(
                chunk, channel=run.channel, round=run.round, into=plan
            ):
                if not _notify(run, eu, person, address, days[eu.batch_id]):
                    plan.skipped["already_notified"] += 1
        reasons = Counter(run.skip_reasons)
        reasons.update(plan.skipped)
        NoticeRun.objects.filter(pk=run.pk).update(
            cursor=chunk[-1].pk,
            done=run.done + len(chunk),
            skipped=sum(reasons.values()),
            skip_reasons=dict(reasons),
            lease_until=timezone.now() + LEASE,
        )
    return True


def _notify(
    run: NoticeRun,
    eu: EventUnit,
    person: Any,
    address: str,
    days: tuple[dt.date, dt.date],
) -> bool:
    """One Notice (and its message); False if this round already has it."""
    now = timezone.now()
    link = links.link_for(event_unit=eu, holder=person)
    is_letter = run.channel == Channel.LETTER
    try:
        # A savepoint: a parallel run of the same round (a second event's job cannot
        # be started, but an admin's retry could) loses only this one row.
        with transaction.atomic():
            notice = Notice.objects.create(
                event_unit=eu,
                recipient=person,
                channel=run.channel,
                round=run.round,
                run=run,
                link=link,
                created_by=run.created_by,
                # A letter is recorded as posted when the run prints it.
                state=NoticeState.SENT if is_letter else NoticeState.QUEUED,
                sent_at=now if is_letter else None,
            )
    except IntegrityError:
        return False
    if not is_letter:
        subject, body = notice_text(eu, person, link, channel=run.channel, days=days)
        notice.message = channels.message_queue(
            channel=run.channel,
            to=address,
            body=body,
            subject=subject,
            purpose=PURPOSE,
            key=f"handover-notice:{eu.pk}:{person.pk}:{run.channel}:{run.round}",
        )
        notice.save(update_fields=["message"])
    return True


def _finish(run: NoticeRun, *, deadline: float) -> bool:
    """Done, once a letter run has printed its letters; False if time ran out first."""
    run.refresh_from_db(fields=["state"])
    if run.state != RunState.RUNNING:
        return True
    if run.channel == Channel.LETTER:
        # Print the run's letters (one page per unit) before the run says done.
        from service.handover import notice_pdf

        if not notice_pdf.run_pdf_print(run, deadline=deadline):
            return False
    with transaction.atomic():
        NoticeRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
            state=RunState.DONE, finished_at=timezone.now(), lease_until=None
        )
    return True


def notice_run_kick(*, run: NoticeRun) -> bool:
    """Queue an unfinished run again if no worker holds it and it was not queued a
    moment ago (the page's poll; the watchdog does the same without a page)."""
    if not run.is_running:
        return False
    now = timezone.now()
    with transaction.atomic():
        # SKIP LOCKED: a chunk under way holds the row; the poll must not wait for it.
        requeued = (
            NoticeRun.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(pk=run.pk, state__in=[RunState.PENDING, RunState.RUNNING])
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - REQUEUE_AFTER))
            .values_list("pk", flat=True)
            .first()
        )
        if requeued:
            NoticeRun.objects.filter(pk=run.pk).update(queued_at=now)
            transaction.on_commit(lambda: _enqueue(run.pk), robust=True)
    return bool(requeued)


def notice_run_watch(action: Any) -> None:
    """Scheduled-action handler (WATCH): while the run is unfinished, queue it again
    if nobody holds it, and look again in WATCH_EVERY. Idempotent."""
    run = NoticeRun.objects.filter(pk=action.target_id).first()
    if run is None or not run.is_running:
        return
    notice_run_kick(run=run)
    due = timezone.now() + WATCH_EVERY
    scheduler.action_schedule(
        kind=WATCH, target_id=run.pk, due_at=due, key=_watch_key(run.pk, action.pk)
    )


# --- the text ----------------------------------------------------------------------------


def batch_days(batch: Batch | None, event: HandoverEvent) -> tuple[dt.date, dt.date]:
    """The days owners of the batch come: its slots' dates, else the event's."""
    if batch is not None:
        days = batch.slots.aggregate(first=Min("date"), last=Max("date"))
        if days["first"]:
            return days["first"], days["last"]
    return event.start_date, event.end_date


def day_range(first: dt.date, last: dt.date) -> str:
    if first == last:
        return _("%(m)s月%(d)s日") % {"m": first.month, "d": first.day}
    return _("%(m1)s月%(d1)s日至%(m2)s月%(d2)s日") % {
        "m1": first.month,
        "d1": first.day,
        "m2": last.month,
        "d2": last.day,
    }


def project_name(event: HandoverEvent) -> str:
    return event.project.name if event.project_id else event.project_name


def notice_text(
    eu: EventUnit,
    person: Any,
    link: OwnerLink,
    *,
    channel: str,
    days: tuple[dt.date, dt.date] | None = None,
) -> tuple[str, str]:
    """(subject, body): a short Chinese SMS, or a longer e-mail. `days`: the batch's
    days when the caller knows them (one query per batch, not per notice)."""
    event = eu.event
    first, last = days or batch_days(eu.batch, event)
    values = {
        "project": project_name(event),
        "unit": eu.unit.label,
        "days": day_range(first, last),
        "venue": event.venue,
        "url": links.url_for(link),
        "name": person.name,
    }
    if channel == Channel.SMS:
        body = (
            _(
                "【%(project)s】尊敬的业主：您的房屋%(unit)s定于%(days)s办理入伙，"
                "地点%(venue)s。请点击专属链接预约办理时间：%(url)s"
            )
            % values
        )
        return "", body
    subject = _("入伙通知书：%(project)s %(unit)s") % values
    body = (
        _(
            "尊敬的%(name)s：\n\n"
            "您购买的%(project)s %(unit)s已具备交付条件，定于%(days)s在%(venue)s"
            "办理入伙手续。\n\n"
            "请通过您的专属链接选择办理时间：\n%(url)s\n\n"
            "办理时请携带：业主身份证原件、购房合同、购房款及相关税费缴纳凭证；"
            "委托他人办理的，请携带授权委托书及受托人身份证原件。\n\n"
            "此链接仅供您本人使用，请勿转发。"
        )
        % values
    )
    return subject, body


# --- outcomes and letters ----------------------------------------------------------------


def _handoff_is_delivery(channel: str) -> bool:
    """True for the development backends, which deliver by writing the message down."""
    if channel == OutboundMessage.Channel.SMS:
        return settings.KEHU_SMS_BACKEND in _RECORDING_SMS
    return settings.EMAIL_BACKEND in _RECORDING_EMAIL


def notice_delivery_outcome(message: OutboundMessage) -> None:
    """channels' callback (purpose PURPOSE): the notice follows its message."""
    notice = Notice.objects.filter(message=message).first()
    if notice is None or notice.state not in (NoticeState.QUEUED, NoticeState.SENT):
        return
    with audited(None):
        if message.state == OutboundMessage.State.SENT:
            notice.state = NoticeState.SENT
            notice.sent_at = message.sent_at
            if _handoff_is_delivery(message.channel):
                notice.state = NoticeState.DELIVERED
                notice.delivered_at = message.sent_at
        elif message.state == OutboundMessage.State.FAILED:
            notice.state = NoticeState.FAILED
        else:
            return
        notice.save(update_fields=["state", "sent_at", "delivered_at"])


@retry_transient
def letters_mark_delivered(*, by: Any, notices: QuerySet, delivered_on: dt.date) -> int:
    """Staff record that posted letters arrived (bulk, with the date): how many."""
    _require(by)
    today = timezone.localdate()
    if delivered_on > today:
        raise ValidationError({"delivered_on": _("送达日期不能晚于今天。")})
    if delivered_on < today - dt.timedelta(days=366):
        raise ValidationError({"delivered_on": _("送达日期不能早于一年前。")})
    at = dt.datetime.combine(
        delivered_on, dt.time(12, 0), tzinfo=timezone.get_current_timezone()
    )
    ids = list(
        notices.filter(channel=Channel.LETTER, state=NoticeState.SENT).values_list(
            "pk", flat=True
        )
    )
    with transaction.atomic(), audited(by):
        # One conditional UPDATE (pghistory's trigger still writes one audit row per
        # notice); a letter marked meanwhile is not counted twice.
        return Notice.objects.filter(pk__in=ids, state=NoticeState.SENT).update(
            state=NoticeState.DELIVERED, delivered_at=at
        )


def owner_link_revoke(*, by: Any, link: OwnerLink) -> bool:
    """Revoke an owner's booking link (a leaked URL); audited by revoked_by."""
    _require(by)
    with transaction.atomic(), audited(by):
        return links.link_revoke(link, by=by)


# --- reads for the pages -----------------------------------------------------------------


def run_counts(runs: list[NoticeRun]) -> None:
    """Set `counts` ({state: n}) on each run: one query for all of them."""
    rows = (
        Notice.objects.filter(run__in=runs)
        .values("run_id", "state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: dict[int, dict[str, int]] = {run.pk: {} for run in runs}
    for row in rows:
        counts[row["run_id"]][row["state"]] = row["n"]
    for run in runs:
        run.counts = counts[run.pk]
        run.skip_rows = [
            (str(SKIP_LABELS.get(reason, reason)), n)
            for reason, n in sorted(run.skip_reasons.items())
        ]


RUNS_SHOWN = 10


def event_runs(event: HandoverEvent) -> list[NoticeRun]:
    """The event's latest runs with their counts (two queries)."""
    runs = list(
        event.notice_runs.select_related("batch", "created_by").order_by("-id")[
            :RUNS_SHOWN
        ]
    )
    run_counts(runs)
    return runs


def notice_list(
    *,
    event: HandoverEvent,
    batch_id: int | None = None,
    state: str = "",
    channel: str = "",
    run_id: int | None = None,
) -> QuerySet:
    rows = Notice.objects.filter(event_unit__event=event)
    if batch_id:
        rows = rows.filter(event_unit__batch_id=batch_id)
    if state:
        rows = rows.filter(state=state)
    if channel:
        rows = rows.filter(channel=channel)
    if run_id:
        rows = rows.filter(run_id=run_id)
    return rows.select_related(
        "event_unit__unit__building", "event_unit__batch", "recipient", "message"
    ).order_by("-id")


def link_units(
    *, event: HandoverEvent, batch_id: int | None = None, query: str = ""
) -> QuerySet:
    """The event's units for the links page, in building and room order."""
    units = EventUnit.objects.filter(event=event)
    if batch_id:
        units = units.filter(batch_id=batch_id)
    if query:
        units = units.filter(
            Q(unit__code__icontains=query) | Q(unit__room__icontains=query)
        )
    return units.select_related("unit__building", "batch").order_by(
        "unit__building__code", "unit__entrance", "unit__floor", "unit__room", "id"
    )


def links_of(event_units: list[EventUnit]) -> None:
    """Set `holder_links` on each event unit: its links, live first (one query)."""
    rows = (
        OwnerLink.objects.filter(event_unit__in=event_units)
        .select_related("holder", "revoked_by")
        .order_by("event_unit_id", F("revoked_at").asc(nulls_first=True), "-id")
    )
    by_unit: dict[int, list[OwnerLink]] = {eu.pk: [] for eu in event_units}
    for link in rows:
        by_unit[link.event_unit_id].append(link)
    for eu in event_units:
        eu.holder_links = by_unit[eu.pk]
