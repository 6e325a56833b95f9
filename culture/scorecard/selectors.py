"""The culture scorecard, read from its rollup tables (docs/scorecard.md).

`scorecard(user=..., filters=...)` is the page and the weekly report's data: a list
of the six culture sections, each with its figures (value, target, met, previous
period, a 12-week trend, freshness, drill-down link). It costs a fixed number of
queries whatever the data size: targets, freshness, the period's daily sums per day,
the snapshots per day, the departments' ratings, and the Pareto share read from
culture/value's precomputed tables.

`cases(...)` is a drill-down: the cases behind a figure, 50 at a time (keyset on id).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.db.models import (
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.accounts import access
from crm.accounts.models import Department, Team, User
from crm.core import bounds
from culture.dashboards.selectors import (
    DEFAULT_PERIOD,
    MAX_SPAN_DAYS,
    PERIODS,
    period_bounds,
)
from culture.satisfaction.models import RecoveryTask, Survey
from culture.scorecard import figures as catalogue
from culture.scorecard import rollups
from culture.scorecard.models import CultureTarget, ScorecardDaily
from culture.segments.models import Segment, SegmentMember
from culture.segments.rules import MACRO_REGIONS, provinces_of
from customers.models import Customer, CustomerProfile
from service.models import Ticket, TicketTransition, WorkOrder

TREND_WEEKS = 12
PAGE_SIZE = 50
REGIONS = tuple(MACRO_REGIONS)


@dataclass(frozen=True)
class Filters:
    period: str
    start: dt.date
    end: dt.date
    team_id: int | None = None
    region: str = ""
    segment_id: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> tuple[dt.date, dt.date]:
        """The period of the same length just before this one."""
        return self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(1)

    def query(self, **extra: Any) -> str:
        params: dict[str, Any] = {"period": self.period}
        if self.period == "custom":
            params.update(start=self.start.isoformat(), end=self.end.isoformat())
        if self.team_id:
            params["team"] = self.team_id
        if self.region:
            params["region"] = self.region
        if self.segment_id:
            params["segment"] = self.segment_id
        params.update({k: v for k, v in extra.items() if v not in (None, "")})
        return urlencode(params)


def teams_for(user: Any) -> list[Team]:
    """Every team (the scorecard is the company's; a manager's drill-downs still show
    only the cases of customers they may see). One query."""
    return list(Team.objects.order_by("name"))


def segments_for(user: Any) -> list[Segment]:
    return list(
        Segment.objects.visible_to(user).order_by("name").only("pk", "name")[:200]
    )


def filters_from(data: Any, *, teams: list[Team], segments: list[Segment]) -> Filters:
    """The filters from the query string, every value bounded: an unknown period is
    the default, a custom range is put in order and cut to three years, a team,
    region or segment outside the choices is ignored (a 400 only for a non-date)."""
    params = bounds.Params(data)
    today = timezone.localdate()
    period = params.choice("period", PERIODS, default=DEFAULT_PERIOD)
    notes: list[str] = []
    if period == "custom":
        start, end = params.date("start"), params.date("end")
        if start is None or end is None:
            period = DEFAULT_PERIOD
            notes.append(_("自定义时间段需要开始和结束日期，已显示本季度。"))
        else:
            if end < start:
                start, end = end, start
            if (end - start).days > MAX_SPAN_DAYS:
                start = end - dt.timedelta(days=MAX_SPAN_DAYS)
                notes.append(_("时间段最长三年，已从结束日期往前截取。"))
    if period != "custom":
        start, end = period_bounds(period, today)
    team_id = params.integer("team", min_value=1, max_value=bounds.INT_MAX)
    if team_id not in {t.pk for t in teams}:
        team_id = None
    region = params.choice("region", REGIONS, default="")
    segment_id = params.integer("segment", min_value=1, max_value=bounds.INT_MAX)
    if segment_id not in {s.pk for s in segments}:
        segment_id = None
    return Filters(period, start, end, team_id, region, segment_id, tuple(notes))


# --- reading the rollups ----------------------------------------------------------------


def _where(filters: Filters, lo: dt.date) -> tuple[str, list[Any]]:
    where = ["segment_id = %s", "day BETWEEN %s AND %s"]
    params: list[Any] = [filters.segment_id or 0, lo, filters.end]
    if filters.team_id:
        where.append("team_id = %s")
        params.append(filters.team_id)
    if filters.region:
        where.append("region = %s")
        params.append(filters.region)
    return " AND ".join(where), params


def _daily_where(filters: Filters, lo: dt.date) -> tuple[str, list[Any]]:
    """As _where, on the daily table: its all-teams-and-regions rows when there is
    neither filter, else the rows per team and region."""
    where, params = _where(filters, lo)
    if filters.team_id or filters.region:
        return f"{where} AND region <> %s", [*params, rollups.ALL]
    return f"{where} AND region = %s", [*params, rollups.ALL]


def _daily_sums(
    filters: Filters, weeks: list[tuple[dt.date, dt.date]]
) -> tuple[dict, dict, dict[dt.date, dict]]:
    """The daily table's sums for the period, the previous period and each trend
    week, in one statement (one hash aggregate over the rows, GROUPING SETS)."""
    prev_lo, prev_hi = filters.previous
    where, params = _daily_where(filters, min(prev_lo, weeks[0][0]))
    metrics = rollups.METRICS
    sums = ", ".join(f"sum({m})" for m in metrics)
    sql = (
        f"SELECT GROUPING(part), part, wk, {sums} FROM (SELECT "  # noqa: S608  # nosec B608 # table and column names from the rollup module's constants, values bound
        "CASE WHEN day >= %s THEN 1 WHEN day BETWEEN %s AND %s THEN 2 ELSE 0 END "
        "AS part, CASE WHEN day >= %s THEN date_trunc('week', day)::date END AS wk, "
        f"{', '.join(metrics)} FROM scorecard_scorecarddaily WHERE {where}) AS x "
        "GROUP BY GROUPING SETS ((part), (wk))"
    )
    head = [filters.start, prev_lo, prev_hi, weeks[0][0]]
    current: dict = {}
    previous: dict = {}
    per_week: dict[dt.date, dict] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, head + params)
        for grouping, part, week, *values in cursor:
            row = {m: int(v or 0) for m, v in zip(metrics, values, strict=True)}
            if grouping == 0:
                if part == 1:
                    current = row
                elif part == 2:
                    previous = row
            elif week is not None:
                per_week[week] = row
    return current, previous, per_week


def _snapshots(filters: Filters, lo: dt.date) -> list[tuple[dt.date, dict]]:
    """The snapshot table's sums per snapshot day since `lo`, in day order."""
    where, params = _where(filters, lo)
    metrics = rollups.SNAPSHOT_METRICS
    sums = ", ".join(f"sum({m})" for m in metrics)
    sql = (
        f"SELECT day, {sums} FROM scorecard_scorecardsnapshot WHERE {where} "  # noqa: S608  # nosec B608 # table and column names from the rollup module's constants, values bound
        "GROUP BY day ORDER BY day"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            (row[0], {m: int(v or 0) for m, v in zip(metrics, row[1:], strict=True)})
            for row in cursor
        ]


def _last_snapshot(snaps: list[tuple[dt.date, dict]], hi: dt.date) -> dict:
    """The last snapshot taken on or before `hi` (empty if none)."""
    at = bisect.bisect_right([day for day, _ in snaps], hi)
    return dict(snaps[at - 1][1]) if at else {}


def _weeks(end: dt.date) -> list[tuple[dt.date, dt.date]]:
    monday = end - dt.timedelta(days=end.weekday())
    weeks = []
    for n in range(TREND_WEEKS - 1, -1, -1):
        start = monday - dt.timedelta(weeks=n)
        weeks.append((start, min(start + dt.timedelta(days=6), end)))
    return weeks


def targets() -> dict[str, Decimal | None]:
    """Each figure's target: the admin's, else the catalogue's default (one query)."""
    stored = dict(CultureTarget.objects.values_list("figure", "value"))
    return {f.key: stored.get(f.key, f.target) for f in catalogue.FIGURES}


def _pareto(user: Any, filters: Filters) -> tuple[dict[str, Any], Any]:
    """The top 20 % share from culture/value's precomputed ranking of the month,
    quarter or year holding the period's end (admins: all; managers: department)."""
    from culture.value import selectors as value
    from culture.value.periods import containing

    end = filters.end
    if filters.period == "year" or (filters.period == "custom" and filters.days > 92):
        period = containing("year", end)
    elif filters.period in ("quarter", "custom") and filters.days > 31:
        period = containing("quarter", end)
    else:
        period = containing("month", end)
    scope = value.scope_for(user)
    if (
        scope.rank_key is None
    ):  # no precomputed ranking for this scope: not computed here
        return {}, None
    result = value.pareto(period=period, view="customer", scope=scope)
    return (
        {"pareto_top_share": result.top_share, "pareto_core_count": result.core_count},
        value.freshness().get("revenue"),
    )


def _format(figure: catalogue.Figure, value: float | None) -> str:
    if value is None:
        return "—"
    if figure.unit == catalogue.PERCENT:
        return f"{value:.1f}%"
    if figure.unit == catalogue.POINTS:
        return f"{value:+.0f}"
    if figure.unit == catalogue.COUNT:
        return f"{value:,.0f}"
    if figure.unit == catalogue.SIGMA:
        return f"{value:.2f}σ"
    if figure.unit == catalogue.PER_100:
        return f"{value:.2f}"
    return f"{value:.1f}" if figure.unit == catalogue.PER_30_DAYS else f"{value:.2f}"


def _format_target(figure: catalogue.Figure, target: Decimal | None) -> str:
    if target is None:
        return "—"
    sign = "≥" if figure.direction == catalogue.HIGHER else "≤"
    return f"{sign} {_format(figure, float(target))}"


@dataclass
class FigureResult:
    figure: catalogue.Figure
    value: float | None
    display: str
    target: Decimal | None
    target_display: str
    met: bool | None
    detail: dict[str, Any]
    previous: float | None
    previous_display: str
    trend: list[dict[str, Any]]
    fresh: dt.datetime | None
    drill_url: str = ""
    chart: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.figure.key


def _chart(key: str, trend: list[dict[str, Any]]) -> dict[str, Any]:
    values = [t["value"] if t["value"] is None else round(t["value"], 2) for t in trend]
    return {
        "id": f"scorecard-trend-{key}",
        "height": 60,
        "label": _("近 %(n)s 周趋势") % {"n": TREND_WEEKS},
        "options": {
            "grid": {"left": 2, "right": 2, "top": 6, "bottom": 2},
            "tooltip": {"trigger": "axis"},
            "xAxis": {
                "type": "category",
                "show": False,
                "data": [t["label"] for t in trend],
            },
            "yAxis": {"type": "value", "show": False, "scale": True},
            "series": [
                {
                    "type": "line",
                    "data": values,
                    "smooth": True,
                    "symbolSize": 3,
                    "connectNulls": True,
                }
            ],
        },
    }


def scorecard(*, user: Any, filters: Filters) -> dict[str, Any]:
    """The scorecard's sections for these filters (see the module's docstring)."""
    goal = targets()
    fresh = rollups.freshness()
    week_bounds = _weeks(filters.end)
    current, previous, per_week = _daily_sums(filters, week_bounds)
    snaps = _snapshots(filters, min(filters.previous[0], week_bounds[0][0]))
    pareto, pareto_fresh = _pareto(user, filters)
    current.update(_last_snapshot(snaps, filters.end))
    current.update(pareto)
    previous.update(_last_snapshot(snaps, filters.previous[1]))
    weeks = []
    for lo, hi in week_bounds:
        week = dict(per_week.get(lo, {}))
        week.update(_last_snapshot(snaps, hi))
        weeks.append((lo, hi, week))
    sections = []
    for culture, members in catalogue.by_culture().items():
        results = []
        for figure in members:
            computed = catalogue.compute(figure.key, current, days=filters.days)
            value = computed["value"]
            if figure.source == "pareto":
                prev_value, trend = None, []
                at = pareto_fresh
            else:
                prev_value = catalogue.compute(figure.key, previous, days=filters.days)[
                    "value"
                ]
                trend = [
                    {
                        "label": f"{lo:%m-%d}",
                        "value": catalogue.compute(
                            figure.key, week, days=(hi - lo).days + 1
                        )["value"],
                    }
                    for lo, hi, week in weeks
                ]
                at = fresh.get(
                    rollups.SNAPSHOT if figure.source == "snapshot" else rollups.DAILY
                )
            target = goal[figure.key]
            result = FigureResult(
                figure=figure,
                value=value,
                display=_format(figure, value),
                target=target,
                target_display=_format_target(figure, target),
                met=catalogue.met(figure, value, target),
                detail=computed["detail"],
                previous=prev_value,
                previous_display=_format(figure, prev_value),
                trend=trend,
                fresh=at,
                drill_url=(
                    f"{reverse('scorecard:cases')}?{filters.query(figure=figure.drill)}"
                    if figure.drill
                    else ""
                ),
            )
            if figure.key == "sigma" and computed["detail"].get("perfect"):
                result.display = _("无缺陷")
                result.met = True
            if trend:
                result.chart = _chart(figure.key, trend)
            results.append(result)
        sections.append(
            {"key": culture, "label": catalogue.CULTURES[culture], "figures": results}
        )
    return {
        "sections": sections,
        "filters": filters,
        "departments": departments(filters),
        "freshness": fresh,
        "weeks": TREND_WEEKS,
    }


def departments(filters: Filters) -> list[dict[str, Any]]:
    """Per back-office department: work orders due (on time, late, overdue) and the
    desk's average rating, in the period (one query)."""
    rows = (
        ScorecardDaily.objects.filter(
            segment_id=filters.segment_id or 0,
            day__range=(filters.start, filters.end),
            department_id__gt=0,
        )
        .filter(**({"team_id": filters.team_id} if filters.team_id else {}))
        .filter(**({"region": filters.region} if filters.region else {}))
        .filter(
            ~Q(region=rollups.ALL)
            if filters.team_id or filters.region
            else Q(region=rollups.ALL)
        )
        .values("department_id")
        .annotate(
            on_time=_sum("wo_on_time"),
            late=_sum("wo_late"),
            overdue=_sum("wo_overdue"),
            rated=_sum("wo_rated"),
            rating_sum=_sum("wo_rating_sum"),
            name=_department_name(),
        )
        .order_by("department_id")
    )
    result = []
    for row in rows:
        due = row["on_time"] + row["late"] + row["overdue"]
        result.append(
            {
                "name": row["name"],
                "due": due,
                "on_time": catalogue.share(row["on_time"], due),
                "overdue": row["overdue"],
                "rated": row["rated"],
                "rating": row["rating_sum"] / row["rated"] if row["rated"] else None,
            }
        )
    return result


def _sum(name: str) -> Any:
    return Coalesce(Sum(name), 0, output_field=IntegerField())


def _department_name() -> Any:
    return Max(
        Subquery(
            Department.objects.filter(pk=OuterRef("department_id")).values("name")[:1]
        )
    )


# --- drill-downs --------------------------------------------------------------------------

DRILLS = OrderedDict(
    [
        ("unsatisfied", gettext_lazy("不满意的回答（满意度 ≤ 3 分）")),
        ("detractors", gettext_lazy("贬损者（推荐意愿 ≤ 6 分）")),
        ("open_recoveries", gettext_lazy("待补救的案例（当前）")),
        ("late_recoveries", gettext_lazy("未在 24 小时内完成的补救")),
        ("unowned", gettext_lazy("没有负责人的客户（当前）")),
        ("silent_ab", gettext_lazy("30 天内未联系的 A/B 级客户（当前）")),
        ("dormant", gettext_lazy("沉睡的客户（当前）")),
        ("unprofiled", gettext_lazy("一对一档案未填写的 A 级客户（当前）")),
        ("silent_a", gettext_lazy("30 天内未联系的 A 级客户（当前）")),
        ("late_work_orders", gettext_lazy("逾期的后台工单")),
        ("dealer_breaches", gettext_lazy("经销商的超时工单")),
        ("breached", gettext_lazy("SLA 超时的工单")),
        ("reopened", gettext_lazy("解决后 7 天内重开的工单")),
    ]
)


def _bounds(filters: Filters) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    lo = dt.datetime.combine(filters.start, dt.time.min, tzinfo=tz)
    hi = dt.datetime.combine(filters.end + dt.timedelta(1), dt.time.min, tzinfo=tz)
    return lo, hi


def _customer_filters(filters: Filters, prefix: str) -> Q:
    q = Q()
    if filters.region:
        q &= Q(**{f"{prefix}province__in": provinces_of(filters.region)})
    if filters.segment_id:
        members = SegmentMember.objects.filter(segment_id=filters.segment_id)
        q &= Q(**{f"{prefix}pk__in": members.values("customer_id")})
    return q


def _visible(user: Any, prefix: str) -> Q:
    """Customers the user may open (Customer.objects.visible_to). A department's
    manager: its teams and people as two small id subqueries on the row's own owner
    and team columns, so the newest cases are read by id without first listing
    every visible customer (at full size, half a million)."""
    scope = access.visibility_scope(user)
    if scope == "all":
        return Q()
    if scope == "department" and user.team_id:
        department = user.team.department_id
        teams = Team.objects.filter(department_id=department).values("pk")
        people = User.objects.filter(team__department_id=department).values("pk")
        return (
            Q(**{f"{prefix}owner_id": user.pk})
            | Q(**{f"{prefix}team_id__in": teams})
            | Q(**{f"{prefix}owner_id__in": people})
        )
    return Q(**{f"{prefix}pk__in": Customer.objects.visible_to(user).values("pk")})


def _drill_queryset(name: str, user: Any, filters: Filters) -> tuple[QuerySet, str]:
    """The rows behind a figure and the customer's path from them ('' if customers)."""
    lo, hi = _bounds(filters)
    team = {"team_id": filters.team_id} if filters.team_id else {}
    now = timezone.now()
    contacted = now - dt.timedelta(days=catalogue.CONTACT_DAYS)
    if name in ("unsatisfied", "detractors"):
        qs = Survey.objects.filter(answered_at__gte=lo, answered_at__lt=hi, **team)
        qs = (
            qs.filter(kind="csat", score__lte=3)
            if name == "unsatisfied"
            else qs.filter(kind="nps", score__lte=6)
        )
        return qs.select_related("customer", "ticket"), "customer__"
    if name in ("open_recoveries", "late_recoveries"):
        qs = RecoveryTask.objects.filter(**team)
        if name == "open_recoveries":
            qs = qs.filter(status="open")
        else:
            hours = dt.timedelta(hours=getattr(settings, "KEHU_RECOVERY_HOURS", 24))
            qs = qs.filter(created_at__gte=lo, created_at__lt=hi).filter(
                Q(status="done", closed_at__gt=F("created_at") + hours)
                | Q(status="open", due_at__lte=now)
            )
        return qs.select_related("customer", "survey"), "customer__"
    if name == "late_work_orders":
        qs = WorkOrder.objects.filter(due_at__gte=lo, due_at__lt=hi).filter(
            Q(status="done", completed_at__gt=F("due_at"))
            | Q(status__in=["open", "in_progress"], due_at__lt=now)
        )
        if filters.team_id:
            qs = qs.filter(ticket__team_id=filters.team_id)
        return qs.select_related("ticket__customer", "department"), "ticket__customer__"
    if name in ("breached", "dealer_breaches", "reopened"):
        qs = Ticket.objects.filter(merged_into__isnull=True, **team)
        if name == "reopened":
            reopen = TicketTransition.objects.filter(
                ticket=OuterRef("pk"),
                from_status__in=["resolved", "closed"],
            ).exclude(to_status__in=["resolved", "closed"])
            qs = qs.filter(resolved_at__gte=lo, resolved_at__lt=hi).filter(
                Exists(reopen)
            )
        else:
            qs = qs.filter(resolution_due_at__gte=lo, resolution_due_at__lt=hi).filter(
                Q(first_response_breached=True) | Q(resolution_breached=True)
            )
            if name == "dealer_breaches":
                qs = qs.filter(customer__kind__in=rollups.CHANNEL_KINDS)
        return qs.select_related("customer"), "customer__"
    customers = Customer.objects.filter(merged_into__isnull=True, is_verified=True)
    customers = customers.filter(**team)
    if name == "unowned":
        customers = customers.filter(owner__isnull=True)
    elif name == "dormant":
        customers = customers.filter(stage="dormant")
    elif name in ("silent_ab", "silent_a"):
        tiers = ["A", "B"] if name == "silent_ab" else ["A"]
        customers = customers.filter(tier__in=tiers).filter(
            Q(last_contacted_at__isnull=True) | Q(last_contacted_at__lt=contacted)
        )
    elif name == "unprofiled":
        filled = (
            CustomerProfile.objects.filter(customer=OuterRef("pk"))
            .exclude(preferred_channel="")
            .filter(
                ~Q(interests="")
                | ~Q(family_notes="")
                | ~Q(special_needs="")
                | ~Q(notes="")
            )
        )
        customers = customers.filter(tier="A").exclude(Exists(filled))
    return customers.select_related("owner"), ""


def _row(name: str, obj: Any) -> dict[str, Any]:
    """One drill-down row: when, the customer, what, and the detail."""
    if isinstance(obj, Survey):
        return {
            "at": obj.answered_at,
            "customer": obj.customer,
            "what": obj.ticket.reference if obj.ticket_id else obj.get_source_display(),
            "url": obj.ticket.get_absolute_url() if obj.ticket_id else "",
            "detail": f"{obj.get_kind_display()} {obj.score}"
            + (f" · {obj.comment[:80]}" if obj.comment else ""),
        }
    if isinstance(obj, RecoveryTask):
        return {
            "at": obj.due_at if obj.status == "open" else obj.called_back_at,
            "customer": obj.customer,
            "what": obj.get_status_display(),
            "url": "",
            "detail": obj.get_outcome_display() or obj.note[:80],
        }
    if isinstance(obj, WorkOrder):
        return {
            "at": obj.due_at,
            "customer": obj.ticket.customer,
            "what": obj.title,
            "url": obj.get_absolute_url(),
            "detail": f"{obj.department.name} · {obj.get_status_display()}",
        }
    if isinstance(obj, Ticket):
        return {
            "at": obj.resolution_due_at if name != "reopened" else obj.resolved_at,
            "customer": obj.customer,
            "what": obj.reference,
            "url": obj.get_absolute_url(),
            "detail": obj.subject[:80],
        }
    return {
        "at": obj.last_contacted_at,
        "customer": obj,
        "what": obj.get_tier_display(),
        "url": "",
        "detail": obj.owner.get_full_name() if obj.owner_id else "",
    }


def cases(
    *, user: Any, name: str, filters: Filters, before: int | None = None
) -> dict[str, Any]:
    """One page of the cases behind a figure, newest (highest id) first; `before`
    is the keyset cursor. Only customers the user may see."""
    qs, prefix = _drill_queryset(name, user, filters)
    qs = qs.filter(_customer_filters(filters, prefix)).filter(_visible(user, prefix))
    if before:
        qs = qs.filter(pk__lt=before)
    page = list(qs.order_by("-pk")[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    return {
        "name": name,
        "title": DRILLS[name],
        "rows": [_row(name, obj) for obj in page],
        "next": page[-1].pk if more else None,
        "filters": filters,
    }
