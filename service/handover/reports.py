"""入伙 reports (issue 17 part 6): the daily handover report (交楼日报表), the
rectification board (整改看板), the refusal list (拒收楼房号一览表), the no-show
list and the not-accepted list (验收未通过, with each re-inspection booking), read from the event's cases, defects and fees; each in a fixed number of
queries, whatever the event's size.

Definitions (handover.md §3.1):
- A case's outcome day is the local date of its `outcome_at`; "that day" counts the
  cases whose outcome was recorded on the day, "cumulative" those up to its end.
- Checked in: cases whose `checked_in_at` falls on the day (cumulative: up to it),
  never the no-shows (ABSENT), who did not come.
- Handover rate (交付率): distinct units accepted (with or without open defects) ÷
  units in the event's scope.
- Mean on-site time: check-in → `finished_at`, over the cases checked in that day
  (cumulative: up to it) that finished.
- Satisfaction: the mean quick rating (1–5) of the cases checked in that day.
- Defects raised: by `created_at`; fees collected: by `paid_at`, valid lines only
  (a voided line counts on no day).
- Rectification: open = not closed, void or force-closed; overdue = open past its due
  time; closed = closed or force-closed; on time = closed at or before its due time.
  Age = days since the defect was recorded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from crm.accounts.roles import Role
from crm.core import bounds
from service.defects.models import Contractor, Defect, Severity
from service.handover import selectors
from service.handover.models import Appointment, EventUnit, HandoverEvent
from service.handover.onsite_models import FeePayment, RefusalRecord, UnitHandover

REPORT_ROLES = (Role.MANAGER, Role.ADMIN)
# The acceptance form (验房交接单) also prints for the service staff who handled it.
FORM_ROLES = (Role.MANAGER, Role.ADMIN, Role.SERVICE)

State = UnitHandover.State
ACCEPTED_STATES = (State.ACCEPTED, State.ACCEPTED_WITH_DEFECTS)
OUTCOME_STATES = (
    State.ACCEPTED,
    State.ACCEPTED_WITH_DEFECTS,
    State.NOT_ACCEPTED,
    State.REFUSED,
    State.ABSENT,
)
CLOSED_DEFECT_STATES = (Defect.State.CLOSED, Defect.State.FORCE_CLOSED)
# Ageing of open defects, in whole days since they were recorded.
AGE_BUCKETS = (("0-7", 0, 7), ("8-30", 8, 30), ("30+", 31, None))
BOARD_PAGE_SIZE = 50
# An export stops here (the lists are per event; the board's items across events).
EXPORT_MAX_ROWS = 5_000


def report_day(event: HandoverEvent) -> dt.date:
    """Today if the event runs today, else its nearest day."""
    return min(max(bounds.today(), event.start_date), event.end_date)


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _minutes(duration: dt.timedelta | None) -> float | None:
    return round(duration.total_seconds() / 60, 1) if duration is not None else None


# --- 交楼日报表 ---------------------------------------------------------------------------


@dataclass
class Figure:
    day: Any = 0
    total: Any = 0


@dataclass
class BuildingRow:
    building_id: int | None
    name: str
    in_scope: int = 0
    checked_in: int = 0
    accepted_day: int = 0
    accepted: int = 0
    refused: int = 0
    absent: int = 0
    accepted_units: int = 0

    @property
    def rate(self) -> float | None:
        return _pct(self.accepted_units, self.in_scope)


@dataclass
class DailyReport:
    event: HandoverEvent
    day: dt.date
    in_scope: int = 0
    counts: dict[str, Figure] = field(default_factory=dict)
    accepted_units_day: int = 0
    accepted_units: int = 0
    buildings: list[BuildingRow] = field(default_factory=list)
    onsite_minutes: Figure = field(default_factory=Figure)
    satisfaction: Figure = field(default_factory=Figure)
    rating_count: Figure = field(default_factory=Figure)
    defects: list[tuple[str, str, Figure]] = field(default_factory=list)
    fees: list[tuple[str, str, Figure, Figure]] = field(default_factory=list)

    @property
    def rate_day(self) -> float | None:
        return _pct(self.accepted_units_day, self.in_scope)

    @property
    def rate(self) -> float | None:
        return _pct(self.accepted_units, self.in_scope)

    @property
    def count_rows(self) -> list[tuple[str, str, Figure]]:
        labels = {"checked_in": str(State.CHECKED_IN.label)}
        labels.update({state.value: str(state.label) for state in OUTCOME_STATES})
        return [(key, labels[key], self.counts[key]) for key in labels]

    @property
    def defects_total(self) -> Figure:
        return Figure(
            sum(f.day for *_k, f in self.defects),
            sum(f.total for *_k, f in self.defects),
        )

    @property
    def fees_total(self) -> tuple[Figure, Figure]:
        return (
            Figure(
                sum(a.day for *_k, a, _n in self.fees),
                sum(a.total for *_k, a, _n in self.fees),
            ),
            Figure(
                sum(n.day for *_k, n in self.fees),
                sum(n.total for *_k, n in self.fees),
            ),
        )


def daily_report(event: HandoverEvent, day: dt.date) -> DailyReport:
    """The report of `day` (within the event's dates): five queries."""
    start, end = bounds.local_bounds(day, day)
    report = DailyReport(event=event, day=day)
    on_day = {"gte": start, "lte": end}

    def between(name: str) -> Q:
        return Q(**{f"{name}__{op}": value for op, value in on_day.items()})

    def upto(name: str) -> Q:
        return Q(**{f"{name}__lte": end})

    # 1. Units in scope, per building.
    rows: dict[Any, BuildingRow] = {}
    for building_id, name, n in (
        EventUnit.objects.filter(event=event)
        .values_list("unit__building_id", "unit__building__name")
        .annotate(n=Count("id"))
        .order_by("unit__building__name", "unit__building_id")
    ):
        rows[building_id] = BuildingRow(building_id, name, in_scope=n)
    report.in_scope = sum(r.in_scope for r in rows.values())

    # 2. Cases per building: check-ins and outcomes, that day and up to it.
    came = ~Q(state=State.ABSENT)
    aggregates: dict[str, Any] = {
        "checked_in_day": Count("id", filter=came & between("checked_in_at")),
        "checked_in_total": Count("id", filter=came & upto("checked_in_at")),
        "units_day": Count(
            "event_unit",
            distinct=True,
            filter=Q(state__in=ACCEPTED_STATES) & between("outcome_at"),
        ),
        "units_total": Count(
            "event_unit",
            distinct=True,
            filter=Q(state__in=ACCEPTED_STATES) & upto("outcome_at"),
        ),
    }
    for state in OUTCOME_STATES:
        aggregates[f"{state}_day"] = Count(
            "id", filter=Q(state=state) & between("outcome_at")
        )
        aggregates[f"{state}_total"] = Count(
            "id", filter=Q(state=state) & upto("outcome_at")
        )
    keys = ["checked_in", *(s.value for s in OUTCOME_STATES)]
    report.counts = {key: Figure() for key in keys}
    per_building = (
        UnitHandover.objects.filter(event=event)
        .values("event_unit__unit__building_id", "event_unit__unit__building__name")
        .annotate(**aggregates)
        .order_by()
    )
    for found in per_building:
        for key in keys:
            report.counts[key].day += found[f"{key}_day"]
            report.counts[key].total += found[f"{key}_total"]
        report.accepted_units_day += found["units_day"]
        report.accepted_units += found["units_total"]
        building_id = found["event_unit__unit__building_id"]
        row = rows.setdefault(
            building_id,
            BuildingRow(building_id, found["event_unit__unit__building__name"]),
        )
        row.checked_in = found["checked_in_total"]
        row.accepted_day = found["accepted_day"] + found["accepted_defects_day"]
        row.accepted = found["accepted_total"] + found["accepted_defects_total"]
        row.refused = found["refused_total"]
        row.absent = found["absent_total"]
        row.accepted_units = found["units_total"]
    report.buildings = sorted(rows.values(), key=lambda r: (r.name, r.building_id))

    # 3. On-site time and satisfaction, over the cases checked in that day / so far.
    onsite = ExpressionWrapper(
        F("finished_at") - F("checked_in_at"), output_field=DurationField()
    )
    finished = Q(finished_at__isnull=False)
    figures = (
        UnitHandover.objects.filter(event=event)
        .exclude(state=State.ABSENT)
        .aggregate(
            onsite_day=Avg(onsite, filter=finished & between("checked_in_at")),
            onsite_total=Avg(onsite, filter=finished & upto("checked_in_at")),
            rating_day=Avg("rating", filter=between("checked_in_at")),
            rating_total=Avg("rating", filter=upto("checked_in_at")),
            rated_day=Count("rating", filter=between("checked_in_at")),
            rated_total=Count("rating", filter=upto("checked_in_at")),
        )
    )
    report.onsite_minutes = Figure(
        _minutes(figures["onsite_day"]), _minutes(figures["onsite_total"])
    )

    def _mean(value: Any) -> float | None:
        return round(float(value), 2) if value is not None else None

    report.satisfaction = Figure(
        _mean(figures["rating_day"]), _mean(figures["rating_total"])
    )
    report.rating_count = Figure(figures["rated_day"], figures["rated_total"])

    # 4. Defects raised, by severity.
    raised = {
        row["severity"]: row
        for row in Defect.objects.filter(event=event)
        .values("severity")
        .annotate(
            day=Count("id", filter=between("created_at")),
            total=Count("id", filter=upto("created_at")),
        )
        .order_by()
    }
    report.defects = [
        (
            severity.value,
            str(severity.label),
            Figure(
                raised.get(severity, {}).get("day", 0),
                raised.get(severity, {}).get("total", 0),
            ),
        )
        for severity in Severity
    ]

    # 5. Fees collected, by item.
    zero = Decimal("0.00")
    fees = {
        row["item"]: row
        for row in FeePayment.objects.valid()
        .filter(case__event=event)
        .values("item")
        .annotate(
            day=Sum("amount", filter=between("paid_at"), default=zero),
            total=Sum("amount", filter=upto("paid_at"), default=zero),
            n_day=Count("id", filter=between("paid_at")),
            n_total=Count("id", filter=upto("paid_at")),
        )
        .order_by()
    }
    report.fees = [
        (
            item.value,
            str(item.label),
            Figure(fees[item]["day"], fees[item]["total"]),
            Figure(fees[item]["n_day"], fees[item]["n_total"]),
        )
        for item in FeePayment.Item
        if item in fees and fees[item]["n_total"]
    ]
    return report


# --- 整改看板 -----------------------------------------------------------------------------


def board_defects(
    user: Any,
    *,
    event: HandoverEvent | None = None,
    contractor: Contractor | None = None,
    severity: str = "",
) -> QuerySet:
    """The defects the board counts: of the events the user sees (and those of no
    event: warranty repairs), narrowed by the filters; void ones left out."""
    defects = Defect.objects.exclude(state=Defect.State.VOID)
    if event is not None:
        defects = defects.filter(event=event)
    else:
        defects = defects.filter(
            Q(event__isnull=True) | Q(event__in=selectors.events_for(user))
        )
    if contractor is not None:
        defects = defects.filter(contractor=contractor)
    if severity in Severity.values:
        defects = defects.filter(severity=severity)
    return defects


@dataclass
class ContractorRow:
    contractor_id: int | None
    name: str
    open: int = 0
    overdue: int = 0
    closed: int = 0
    on_time: int = 0

    @property
    def on_time_rate(self) -> float | None:
        return _pct(self.on_time, self.closed)


@dataclass
class Board:
    open: int = 0
    overdue: int = 0
    closed: int = 0
    on_time: int = 0
    ages: list[tuple[str, int]] = field(default_factory=list)
    severities: list[tuple[str, str, int, int]] = field(default_factory=list)
    contractors: list[ContractorRow] = field(default_factory=list)

    @property
    def on_time_rate(self) -> float | None:
        return _pct(self.on_time, self.closed)


def _board_counts(now: dt.datetime) -> dict[str, Any]:
    is_open = Q(state__in=Defect.OPEN_STATES)
    is_closed = Q(state__in=CLOSED_DEFECT_STATES)
    counts: dict[str, Any] = {
        "n_open": Count("id", filter=is_open),
        "n_overdue": Count("id", filter=is_open & Q(due_at__lt=now)),
        "n_closed": Count("id", filter=is_closed),
        "n_on_time": Count("id", filter=is_closed & Q(closed_at__lte=F("due_at"))),
    }
    return counts


def rectification_board(defects: QuerySet, *, now: dt.datetime | None = None) -> Board:
    """The board's figures over `defects` (from board_defects): two queries."""
    now = now or timezone.now()
    board = Board()
    counts = _board_counts(now)
    is_open = Q(state__in=Defect.OPEN_STATES)
    ages = {}
    for label, low, high in AGE_BUCKETS:
        window = Q(created_at__lte=now - dt.timedelta(days=low))
        if high is not None:
            window &= Q(created_at__gt=now - dt.timedelta(days=high + 1))
        ages[f"age_{label}"] = Count("id", filter=is_open & window)
    for severity in Severity:
        ages[f"open_{severity}"] = Count("id", filter=is_open & Q(severity=severity))
        ages[f"overdue_{severity}"] = Count(
            "id", filter=is_open & Q(severity=severity, due_at__lt=now)
        )
    totals = defects.order_by().aggregate(**counts, **ages)
    board.open, board.overdue = totals["n_open"], totals["n_overdue"]
    board.closed, board.on_time = totals["n_closed"], totals["n_on_time"]
    board.ages = [(label, totals[f"age_{label}"]) for label, *_r in AGE_BUCKETS]
    board.severities = [
        (s.value, str(s.label), totals[f"open_{s}"], totals[f"overdue_{s}"])
        for s in Severity
    ]
    for found in (
        defects.values("contractor_id", "contractor__name")
        .annotate(**counts)
        .order_by("contractor__name", "contractor_id")
    ):
        board.contractors.append(
            ContractorRow(
                found["contractor_id"],
                found["contractor__name"] or "",
                open=found["n_open"],
                overdue=found["n_overdue"],
                closed=found["n_closed"],
                on_time=found["n_on_time"],
            )
        )
    return board


def board_items(
    defects: QuerySet, *, after: Defect | None = None, limit: int = BOARD_PAGE_SIZE
) -> tuple[list[Defect], int | None]:
    """The open items, the most urgent first (due time, then id), a page after the
    item `after` (keyset, so the thousandth page costs what the first does); the id
    to continue after, or None on the last page."""
    items = (
        defects.filter(state__in=Defect.OPEN_STATES)
        .select_related("unit__building", "category", "contractor", "event")
        .order_by("due_at", "id")
    )
    if after is not None:
        items = items.filter(
            Q(due_at__gt=after.due_at) | Q(due_at=after.due_at, id__gt=after.pk)
        )
    found = list(items[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return found, (found[-1].pk if more else None)


# --- 拒收楼房号一览表 and no-shows ---------------------------------------------------------


def refusals(event: HandoverEvent, *, reason: str = "") -> QuerySet:
    found = RefusalRecord.objects.filter(case__event=event)
    if reason in RefusalRecord.Reason.values:
        found = found.filter(reason=reason)
    return found.select_related(
        "case__event_unit__unit__building", "case__customer", "recorded_by"
    ).order_by(
        "case__event_unit__unit__building__name", "case__event_unit__unit__room", "id"
    )


def refusal_reasons(event: HandoverEvent) -> list[tuple[str, str, int]]:
    """The reasons' Pareto: (value, label, count), most frequent first."""
    counts = dict(
        RefusalRecord.objects.filter(case__event=event)
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = [
        (r.value, str(r.label), counts.get(r.value, 0)) for r in RefusalRecord.Reason
    ]
    return sorted((row for row in rows if row[2]), key=lambda row: -row[2])


def no_shows(event: HandoverEvent, *, next_step: str = "") -> QuerySet:
    found = UnitHandover.objects.filter(event=event, state=State.ABSENT)
    if next_step in UnitHandover.NoShowNext.values:
        found = found.filter(no_show_next=next_step)
    elif next_step == "none":
        found = found.filter(no_show_next="")
    return found.select_related(
        "event_unit__unit__building", "customer", "appointment__slot"
    ).order_by("event_unit__unit__building__name", "event_unit__unit__room", "id")


REINSPECTION_FILTERS = ("booked", "none")


def not_accepted(event: HandoverEvent, *, reinspection: str = "") -> QuerySet:
    """验收未通过 cases with their re-inspection booking (if any); `reinspection`
    "booked" keeps those with an active one, "none" those without."""
    found = UnitHandover.objects.filter(event=event, state=State.NOT_ACCEPTED)
    booked = Q(reinspection_appointment__state__in=Appointment.ACTIVE_STATES)
    if reinspection == "booked":
        found = found.filter(booked)
    elif reinspection == "none":
        found = found.exclude(booked)
    return found.select_related(
        "event_unit__unit__building",
        "customer",
        "outcome_by",
        "reinspection_appointment__slot__event",
    ).order_by("event_unit__unit__building__name", "event_unit__unit__room", "id")


# --- 验房交接单 -----------------------------------------------------------------------------


def cases_for_form(user: Any) -> QuerySet:
    """The cases whose acceptance form the user may print: every case of the events
    they see for managers and admins; for the service staff, the cases they handled
    (checked in, verified, served at a station or recorded the outcome of)."""
    cases = UnitHandover.objects.filter(event__in=selectors.events_for(user))
    if user.role in REPORT_ROLES:
        return cases
    handled = (
        Q(checked_in_by=user)
        | Q(identity_checked_by=user)
        | Q(outcome_by=user)
        | Q(pk__in=UnitHandover.objects.filter(visits__operator=user).values("pk"))
    )
    return cases.filter(handled)


def may_print_form(user: Any) -> bool:
    return user.role in FORM_ROLES
