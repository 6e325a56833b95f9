"""The event's numbers before the day (交付准备): per batch and per day, and the units
whose owners are not yet reached (the call list the call centre works through).

Every read here is a fixed number of queries whatever the event's size: the per-unit
facts (notified, delivered, booked, checked in) are uncorrelated `IN (subquery)`
filters, which PostgreSQL runs as one hashed subplan per fact instead of a probe per
unit (docs/benchmarks.md, Issue 15: 5,000 units).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from crm.accounts import access
from customers.models import ContactLog
from service.handover.models import (
    Appointment,
    Batch,
    EventUnit,
    HandoverEvent,
    Notice,
)
from service.property.models import UnitOwnership

NOTIFIED_STATES = (Notice.State.SENT, Notice.State.DELIVERED)
NO_BATCH = "none"
# Owners reached but not booked show up on the call list after this many days.
DEFAULT_WAIT_DAYS = 3
MAX_WAIT_DAYS = 60
# A longer span shows only the days with something on them.
MAX_CHART_DAYS = 120


class CallOutcome:
    """What a call to an owner ended with, as stored in the contact log's `outcome`
    (the label itself: the timeline shows it as written)."""

    BOOKED = _("已接通-已预约")
    LATER = _("已接通-稍后预约")
    NO_ANSWER = _("未接通")
    WRONG_NUMBER = _("号码错误")
    REFUSED = _("拒绝")

    CHOICES = [
        ("booked", BOOKED),
        ("later", LATER),
        ("no_answer", NO_ANSWER),
        ("wrong_number", WRONG_NUMBER),
        ("refused", REFUSED),
    ]

    @classmethod
    def stored(cls, key: str) -> str:
        """The outcome as written to the contact log: always the Chinese label, so
        that a call logged from an English page is found like any other."""
        with translation.override("zh-hans"):
            return str(dict(cls.CHOICES)[key])

    @classmethod
    def all_stored(cls) -> list[str]:
        return [cls.stored(key) for key, _label in cls.CHOICES]


class Reason:
    """Why a unit is on the call list."""

    UNREACHED = "unreached"  # no notice delivered
    NOT_BOOKED = "not_booked"  # notified at least N days ago and still not booked

    CHOICES = [
        (UNREACHED, _("通知未送达")),
        (NOT_BOOKED, _("已通知未预约")),
    ]


# --- the per-unit facts, as id subqueries --------------------------------------------


def _notified_ids(event: HandoverEvent, **extra: Any) -> QuerySet:
    return Notice.objects.filter(
        event_unit__event=event, state__in=NOTIFIED_STATES, **extra
    ).values("event_unit_id")


def _delivered_ids(event: HandoverEvent) -> QuerySet:
    return Notice.objects.filter(
        event_unit__event=event, state=Notice.State.DELIVERED
    ).values("event_unit_id")


def _booked_ids(event: HandoverEvent, *, checked_in: bool = False) -> QuerySet:
    appointments = Appointment.objects.filter(event=event, event_unit__isnull=False)
    if checked_in:
        appointments = appointments.filter(state=Appointment.State.CHECKED_IN)
    else:
        appointments = appointments.active()
    return appointments.values("event_unit_id")


# --- numbers per batch ---------------------------------------------------------------


def percent(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


@dataclass
class Numbers:
    """One row of the table: a batch, the units without a batch, or the total."""

    label: str
    batch: Batch | None = None
    in_scope: int = 0
    eligible: int = 0
    notified: int = 0
    delivered: int = 0
    booked: int = 0
    checked_in: int = 0

    FIELDS = ("in_scope", "eligible", "notified", "delivered", "booked", "checked_in")

    def add(self, other: Numbers) -> None:
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    # Eligible of the scope; notified, delivered and booked of the eligible units (the
    # ones that may be handed over); checked in of the booked.
    @property
    def eligible_pct(self) -> int | None:
        return percent(self.eligible, self.in_scope)

    @property
    def notified_pct(self) -> int | None:
        return percent(self.notified, self.eligible)

    @property
    def delivered_pct(self) -> int | None:
        return percent(self.delivered, self.eligible)

    @property
    def booked_pct(self) -> int | None:
        return percent(self.booked, self.eligible)

    @property
    def checked_in_pct(self) -> int | None:
        return percent(self.checked_in, self.booked)


@dataclass
class Readiness:
    rows: list[Numbers]
    total: Numbers
    days: list[dict[str, Any]] = field(default_factory=list)


def batch_numbers(event: HandoverEvent) -> tuple[list[Numbers], Numbers]:
    """Per batch (in booking-window order, then "no batch") and in total: 2 queries."""
    per_batch = (
        EventUnit.objects.filter(event=event)
        .values("batch_id")
        .annotate(
            in_scope=Count("id"),
            eligible=Count("id", filter=Q(eligibility=EventUnit.Eligibility.ELIGIBLE)),
            notified=Count("id", filter=Q(id__in=_notified_ids(event))),
            delivered=Count("id", filter=Q(id__in=_delivered_ids(event))),
            booked=Count("id", filter=Q(id__in=_booked_ids(event))),
            checked_in=Count(
                "id", filter=Q(id__in=_booked_ids(event, checked_in=True))
            ),
        )
        .order_by()
    )
    counts = {row.pop("batch_id"): row for row in per_batch}
    rows = [
        Numbers(label=batch.name, batch=batch, **counts.get(batch.pk, {}))
        for batch in event.batches.order_by("booking_opens_at", "id")
    ]
    if None in counts:
        rows.append(Numbers(label=str(_("未分批")), **counts[None]))
    total = Numbers(label=str(_("合计")))
    for row in rows:
        total.add(row)
    return rows, total


# --- numbers per day -----------------------------------------------------------------


def day_numbers(
    event: HandoverEvent, batch: Batch | None = None
) -> list[dict[str, Any]]:
    """Per day (project time zone): notices sent, bookings made (including ones later
    cancelled: the day's activity) and active bookings by their slot's day. 3 queries;
    the days between the first and the last are all listed (unless the span is longer
    than MAX_CHART_DAYS)."""
    zone = timezone.get_current_timezone()
    notices = Notice.objects.filter(event_unit__event=event, sent_at__isnull=False)
    appointments = Appointment.objects.filter(event=event, event_unit__isnull=False)
    if batch is not None:
        notices = notices.filter(event_unit__batch=batch)
        appointments = appointments.filter(event_unit__batch=batch)
    days: dict[dt.date, dict[str, Any]] = defaultdict(
        lambda: {"sent": 0, "made": 0, "on_day": 0}
    )
    sent = (
        notices.annotate(day=TruncDate("sent_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    made = (
        appointments.annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    on_day = (
        appointments.active()
        .values(day=F("slot__date"))
        .annotate(n=Count("id"))
        .order_by()
    )
    for key, rows in (("sent", sent), ("made", made), ("on_day", on_day)):
        for row in rows:
            days[row["day"]][key] = row["n"]
    if not days:
        return []
    first, last = min(days), max(days)
    span = (last - first).days
    # Every day of the span, so that quiet days show as such on the chart's axis.
    shown = (
        [first + dt.timedelta(days=n) for n in range(span + 1)]
        if span <= MAX_CHART_DAYS
        else sorted(days)
    )
    return [{"day": day, **days[day]} for day in shown]


def event_readiness(event: HandoverEvent, batch: Batch | None = None) -> Readiness:
    rows, total = batch_numbers(event)
    return Readiness(rows=rows, total=total, days=day_numbers(event, batch))


# --- the call list -------------------------------------------------------------------


def call_list(
    event: HandoverEvent,
    *,
    batch: Batch | None = None,
    without_batch: bool = False,
    reason: str = "",
    wait_days: int = DEFAULT_WAIT_DAYS,
    now: dt.datetime | None = None,
) -> QuerySet:
    """Eligible units in scope, not booked, whose owners were not reached: no notice
    delivered, or notified `wait_days` or more days ago and still not booked.

    Sorted by batch (booking-window order, units without a batch last), then building
    and room. Each row carries its last notice's state and time; a booked unit leaves
    the list at once (the booked-ids filter reads live rows).
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=wait_days)
    unreached = ~Q(id__in=_delivered_ids(event))
    not_booked = Q(id__in=_notified_ids(event, sent_at__lte=cutoff))
    condition = {
        Reason.UNREACHED: unreached,
        Reason.NOT_BOOKED: not_booked,
    }.get(reason, unreached | not_booked)
    units = EventUnit.objects.filter(
        event=event, eligibility=EventUnit.Eligibility.ELIGIBLE
    ).exclude(id__in=_booked_ids(event))
    if batch is not None:
        units = units.filter(batch=batch)
    elif without_batch:
        units = units.filter(batch__isnull=True)
    last_notice = Notice.objects.filter(event_unit=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    return (
        units.filter(condition)
        .select_related("batch", "unit__building")
        .annotate(
            last_notice_state=Subquery(last_notice.values("state")[:1]),
            last_notice_at=Subquery(
                last_notice.values(at=Coalesce("sent_at", "created_at"))[:1]
            ),
        )
        .order_by(
            F("batch__booking_opens_at").asc(nulls_last=True),
            "batch_id",
            "unit__building__code",
            "unit__entrance",
            "unit__floor",
            "unit__room",
            "id",
        )
    )


def _visible_owners(user: Any) -> QuerySet:
    ownerships = UnitOwnership.objects.filter(is_active=True).select_related("customer")
    return access.filter_visible(
        ownerships, user, owner="customer__owner", team="customer__team"
    ).order_by(Case(When(role=UnitOwnership.Role.PRIMARY, then=0), default=1), "id")


def call_rows(
    event: HandoverEvent, units: list[EventUnit], *, user: Any
) -> list[EventUnit]:
    """Fill one page of the call list: each unit's owners the user may see (primary
    first, `unit.owners`), how many it may not (`hidden_owners`), and the last call
    outcome recorded since the event was made (`last_call`). 2 queries."""
    unit_ids = [eu.unit_id for eu in units]
    owners: dict[int, list[UnitOwnership]] = defaultdict(list)
    for ownership in _visible_owners(user).filter(unit_id__in=unit_ids):
        owners[ownership.unit_id].append(ownership)
    customer_ids = {o.customer_id for rows in owners.values() for o in rows}
    latest = {
        log.customer_id: log
        for log in ContactLog.objects.filter(
            customer_id__in=customer_ids,
            channel=ContactLog.Channel.PHONE,
            outcome__in=CallOutcome.all_stored(),
            occurred_at__gte=event.created_at,
        )
        .order_by("customer_id", "-occurred_at", "-id")
        .distinct("customer_id")
    }
    for eu in units:
        eu.owners = owners.get(eu.unit_id, [])
        eu.last_notice_label = (
            Notice.State(eu.last_notice_state).label if eu.last_notice_state else ""
        )
        calls = [latest[o.customer_id] for o in eu.owners if o.customer_id in latest]
        eu.last_call = max(calls, key=lambda log: log.occurred_at, default=None)
    return units


def event_unit_for_call(event: HandoverEvent, pk: Any) -> EventUnit:
    return access.get_object_for(
        EventUnit.objects.filter(event=event).select_related(
            "event", "unit__building", "batch"
        ),
        pk,
    )


def owners_for_call(event_unit: EventUnit, *, user: Any) -> list[UnitOwnership]:
    return list(_visible_owners(user).filter(unit_id=event_unit.unit_id))
