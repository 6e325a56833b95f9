"""The managers' dashboard, read from the rollup tables only (docs/dashboards.md).

`dashboard(user=..., filters=...)` answers with a fixed number of queries whatever the
size of the data: the teams of the filter, the freshness of the rollups, the daily
activity of the period (one row per day), the same per salesperson, the pipeline
snapshot and the coverage snapshot of the period's last day.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.db import connection
from django.db.models import (
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.accounts import access
from crm.accounts.models import Team, User
from crm.accounts.roles import Role
from crm.core import bounds
from culture.dashboards import rollups
from culture.dashboards.models import (
    CoverageSnapshot,
    DailyActivity,
    MonthlyActivity,
    PipelineSnapshot,
)
from culture.deals.models import Deal, DealStage, Payment
from customers.models import ContactLog, Customer, FollowUp
from service.models import Ticket, TicketType

PERIODS = OrderedDict(
    [
        ("week", gettext_lazy("本周")),
        ("month", gettext_lazy("本月")),
        ("quarter", gettext_lazy("本季度")),
        ("year", gettext_lazy("本年")),
        ("custom", gettext_lazy("自定义")),
    ]
)
COVERAGE_DAYS = (7, 30, 90)
MAX_SPAN_DAYS = 3 * 366  # a custom range covers at most three years
DEFAULT_PERIOD = "quarter"


@dataclass(frozen=True)
class Filters:
    period: str
    start: dt.date
    end: dt.date
    team_id: int | None = None
    owner_id: int | None = None
    days: int = 30
    notes: tuple[str, ...] = field(default=())

    def query(self, **extra: Any) -> str:
        """These filters (and `extra`) as a query string."""
        params: dict[str, Any] = {"period": self.period, "days": self.days}
        if self.period == "custom":
            params.update(start=self.start.isoformat(), end=self.end.isoformat())
        if self.team_id:
            params["team"] = self.team_id
        if self.owner_id:
            params["owner"] = self.owner_id
        params.update({k: v for k, v in extra.items() if v not in (None, "")})
        return urlencode(params)


def period_bounds(period: str, today: dt.date) -> tuple[dt.date, dt.date]:
    if period == "week":
        return today - dt.timedelta(days=today.weekday()), today
    if period == "month":
        return today.replace(day=1), today
    if period == "year":
        return today.replace(month=1, day=1), today
    first_month = (today.month - 1) // 3 * 3 + 1
    return today.replace(month=first_month, day=1), today


def filters_from(data: Any, *, user: Any, teams: list[Team]) -> Filters:
    """The dashboard's filters from the query string, every value bounded: an unknown
    period is the default one, a team outside the user's teams is ignored, a custom
    range is put in order and cut to three years (BadParameter, a 400, only for what
    is not a date at all)."""
    params = bounds.Params(data)
    today = timezone.localdate()
    period = params.choice("period", PERIODS, default=DEFAULT_PERIOD)
    notes: list[str] = []
    if period == "custom":
        start = params.date("start")
        end = params.date("end")
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
    owner_id = None
    if user.role == Role.SALES:
        owner_id = user.pk  # a salesperson sees their own share
    else:
        owner_id = params.integer("owner", min_value=1, max_value=bounds.INT_MAX)
    days = params.integer("days", min_value=1, max_value=365, default=30)
    if days not in COVERAGE_DAYS:
        days = 30
    return Filters(period, start, end, team_id, owner_id, days, tuple(notes))


def teams_for(user: Any) -> list[Team]:
    """The teams a user may filter by: a manager's department's, all for an admin,
    none for a salesperson (their own share only). One query (none for sales)."""
    if user.role == Role.ADMIN:
        return list(Team.objects.order_by("name"))
    if user.role == Role.MANAGER and user.team_id:
        return list(
            Team.objects.filter(department__teams=user.team_id).order_by("name")
        )
    return []


def _scope(user: Any) -> Q:
    """`access.owner_filter`'s rule for rollup rows, without joins: a department is
    its teams and its people as two id subqueries (the rows keep owner and team)."""
    scope = access.visibility_scope(user)
    if scope == "all":
        return Q()
    if scope is None:
        return Q(pk__in=[])
    mine = Q(owner_id=user.pk)
    if scope == "own" or not user.team_id:
        return mine
    if scope == "team":
        return mine | Q(team_id=user.team_id)
    department = user.team.department_id
    teams = Team.objects.filter(department_id=department).values("pk")
    people = User.objects.filter(team__department_id=department).values("pk")
    return mine | Q(team_id__in=teams) | Q(owner_id__in=people)


def _scoped(queryset: Any, user: Any, filters: Filters) -> Any:
    queryset = queryset.filter(_scope(user))
    if filters.team_id:
        queryset = queryset.filter(team_id=filters.team_id)
    if filters.owner_id:
        queryset = queryset.filter(owner_id=filters.owner_id)
    return queryset


def _money(value: Any) -> float:
    """Chart amounts in 万元 (ten thousand yuan), as managers read them."""
    return round(float(value or 0) / 10_000, 1)


def _int_sum(name: str) -> Coalesce:
    return Coalesce(Sum(name), 0, output_field=IntegerField())


def _dec_sum(name: str) -> Coalesce:
    return Coalesce(
        Sum(name),
        Decimal(0),
        output_field=DecimalField(max_digits=18, decimal_places=2),
    )


DAILY_SUMS = (
    "new_customers",
    "contacts",
    "followups_due",
    "followups_on_time",
    "followups_late",
    "followups_overdue",
    "deals_created",
    "deals_won",
    "payments",
    "tickets_opened",
    "complaints_opened",
    "sla_met",
    "sla_breached",
)
DAILY_MONEY = ("deals_created_amount", "deals_won_amount", "revenue")


def _bucket(day: dt.date, span_days: int) -> tuple[dt.date, str]:
    """The chart bucket a day falls in: days for a month or less, weeks (from
    Monday) for half a year or less, else months."""
    if span_days <= 31:
        return day, day.strftime("%m-%d")
    if span_days <= 184:
        monday = day - dt.timedelta(days=day.weekday())
        return monday, monday.strftime("%m-%d")
    first = day.replace(day=1)
    return first, first.strftime("%Y-%m")


def _ratio(part: int | float, whole: int | float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _drill(figure: str, filters: Filters, **extra: Any) -> str:
    return f"{reverse('dashboards:drill')}?{filters.query(figure=figure, **extra)}"


def _customers_url(**params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{reverse('customers:customer_list')}?{query}"


def dashboard(*, user: Any, filters: Filters, teams: list[Team]) -> dict[str, Any]:
    """Every figure of the dashboard for `user` under `filters` (five queries)."""
    freshness = rollups.freshness()
    span = (filters.end - filters.start).days + 1
    by_day, people = _daily_sums(*_activity(user, filters, span))
    pipeline = _pipeline(user, filters)
    coverage = _coverage(user, filters)
    totals = {n: sum(row[n] for row in by_day) for n in (*DAILY_SUMS, *DAILY_MONEY)}
    return {
        "filters": filters,
        "teams": teams,
        "periods": list(PERIODS.items()),
        "coverage_days": COVERAGE_DAYS,
        "is_sales": user.role == Role.SALES,
        "freshness": {
            "daily": freshness.get(rollups.DAILY),
            "pipeline": freshness.get(rollups.PIPELINE),
            "coverage": freshness.get(rollups.COVERAGE),
        },
        "totals": totals,
        "kpis": _kpis(totals, coverage, filters),
        "pipeline": pipeline,
        "people": _people(people, filters),
        "coverage": coverage,
        "charts": _charts(by_day, span, pipeline, people, coverage, filters),
    }


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _activity(user: Any, filters: Filters, span: int) -> tuple[Any, Any]:
    """The period's rows: daily ones, except that a period charted by month (over
    184 days) reads its whole months from the monthly table (one row per month and
    person, each the sum of that month's daily rows) and only the days of the
    partial months at its ends from the daily one."""
    daily = _scoped(DailyActivity.objects.all(), user, filters).filter(
        day__gte=filters.start, day__lte=filters.end
    )
    if span <= 184:
        return daily, None
    first = filters.start if filters.start.day == 1 else _next_month(filters.start)
    after = _next_month(filters.end)
    if after - dt.timedelta(days=1) != filters.end:
        after = filters.end.replace(day=1)
    if first >= after:
        return daily, None
    monthly = _scoped(MonthlyActivity.objects.all(), user, filters).filter(
        month__gte=first, month__lt=after
    )
    # Only the partial months' days: each end's condition only when that end is
    # partial (an OR with an empty side read the whole period's daily rows).
    ends = [Q(day__lt=first)] if first > filters.start else []
    ends += [Q(day__gte=after)] if after <= filters.end else []
    if not ends:
        return daily.filter(day__gt=filters.end), monthly  # no partial month
    condition = ends[0] if len(ends) == 1 else ends[0] | ends[1]
    return daily.filter(condition), monthly


def _daily_sums(
    daily: Any, monthly: Any = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The period's sums per day (or month, for the monthly rows) and per person in
    one scan of the rollup rows (GROUPING SETS): two GROUP BYs read a three-year
    range of a department twice (~100,000 rows each at full size). Grouped by
    hashing, sorted here: at most one row per day and per person."""
    names = (*DAILY_SUMS, *DAILY_MONEY)
    columns = ", ".join(names)
    inner, params = daily.values("day", "owner_id", *names).query.sql_with_params()
    params = list(params)
    if monthly is not None:
        months, more = monthly.values(
            "month", "owner_id", *names
        ).query.sql_with_params()
        inner = (
            f"SELECT day, owner_id, {columns} FROM ({inner}) a UNION ALL "  # noqa: S608  # nosec B608 # column names from DAILY_SUMS, the querysets' own SQL, values bound
            f"SELECT month, owner_id, {columns} FROM ({months}) b"
        )
        params += list(more)
    sums = ", ".join(f"COALESCE(SUM(d.{n}), 0) AS {n}" for n in names)
    user_table = User._meta.db_table
    sql = (
        f"SELECT GROUPING(d.day) AS per_person, d.day, d.owner_id,"  # noqa: S608  # nosec B608 # column names from DAILY_SUMS, the table from the model's _meta, values bound
        f" u.display_name, u.username, {sums}"
        f" FROM ({inner}) d LEFT JOIN {user_table} u ON u.id = d.owner_id"
        " GROUP BY GROUPING SETS ((d.day), (d.owner_id, u.display_name, u.username))"
    )
    by_day: list[dict[str, Any]] = []
    people: list[dict[str, Any]] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for per_person, day, owner, display_name, username, *values in cursor:
            row = dict(zip(names, values, strict=True))
            if per_person:
                row.update(
                    owner=owner,
                    owner__display_name=display_name,
                    owner__username=username,
                )
                people.append(row)
            else:
                row["day"] = day
                by_day.append(row)
    by_day.sort(key=lambda r: r["day"])
    people.sort(
        key=lambda r: (r["owner__display_name"] or "", r["owner__username"] or "")
    )
    return by_day, people


def _pipeline(user: Any, filters: Filters) -> dict[str, Any]:
    """The open pipeline on the last snapshot day up to the period's end (one query)."""
    last_day = (
        PipelineSnapshot.objects.filter(day__lte=filters.end)
        .order_by("-day")
        .values("day")[:1]
    )
    rows = list(
        _scoped(PipelineSnapshot.objects.all(), user, filters)
        .filter(day=Subquery(last_day))
        .values("day", "stage", "stage__name", "stage__position")
        .annotate(
            count=_int_sum("open_count"),
            amount=_dec_sum("open_amount"),
            weighted=_dec_sum("weighted_amount"),
        )
        .order_by("stage__position", "stage")
    )
    return {
        "day": rows[0]["day"] if rows else None,
        "stages": rows,
        "count": sum(r["count"] for r in rows),
        "amount": sum((r["amount"] for r in rows), Decimal(0)),
        "weighted": sum((r["weighted"] for r in rows), Decimal(0)),
    }


def _coverage(user: Any, filters: Filters) -> dict[str, Any]:
    """A-tier coverage per salesperson on the last snapshot day (one query)."""
    last_day = (
        CoverageSnapshot.objects.filter(day__lte=filters.end)
        .order_by("-day")
        .values("day")[:1]
    )
    column = f"contacted_{filters.days}"
    rows = list(
        _scoped(CoverageSnapshot.objects.all(), user, filters)
        .filter(day=Subquery(last_day))
        .values("day", "owner", "owner__display_name", "owner__username")
        .annotate(total=_int_sum("a_customers"), contacted=_int_sum(column))
        .order_by("owner__display_name", "owner__username", "owner")
    )
    total = sum(r["total"] for r in rows)
    contacted = sum(r["contacted"] for r in rows)
    for row in rows:
        row["name"] = _person(row)
        row["share"] = _ratio(row["contacted"], row["total"])
        row["url"] = _customers_url(
            tier="A",
            owner=row["owner"],
            team=filters.team_id,
            days_since_contact=filters.days,
        )
    return {
        "day": rows[0]["day"] if rows else None,
        "people": rows,
        "total": total,
        "contacted": contacted,
        "share": _ratio(contacted, total),
        "url": _customers_url(
            tier="A", team=filters.team_id, days_since_contact=filters.days
        ),
    }


def _person(row: dict[str, Any]) -> str:
    if not row.get("owner"):
        return _("无负责人")
    return row.get("owner__display_name") or row.get("owner__username") or ""


def _people(rows: list[dict[str, Any]], filters: Filters) -> list[dict[str, Any]]:
    for row in rows:
        row["name"] = _person(row)
        done = row["followups_on_time"] + row["followups_late"]
        row["on_time_share"] = _ratio(row["followups_on_time"], done)
        row["sla_share"] = _ratio(row["sla_met"], row["sla_met"] + row["sla_breached"])
    return rows


def _kpis(
    totals: dict[str, Any], coverage: dict[str, Any], filters: Filters
) -> dict[str, Any]:
    done = totals["followups_on_time"] + totals["followups_late"]
    sla = totals["sla_met"] + totals["sla_breached"]
    return {
        "on_time_share": _ratio(totals["followups_on_time"], done),
        "sla_share": _ratio(totals["sla_met"], sla),
        "coverage_share": coverage["share"],
    }


def _charts(
    by_day: list[dict[str, Any]],
    span: int,
    pipeline: dict[str, Any],
    people: list[dict[str, Any]],
    coverage: dict[str, Any],
    filters: Filters,
) -> dict[str, dict[str, Any]]:
    buckets: OrderedDict[dt.date, dict[str, Any]] = OrderedDict()
    months: OrderedDict[dt.date, Decimal] = OrderedDict()
    for row in by_day:
        start, label = _bucket(row["day"], span)
        bucket = buckets.setdefault(
            start, {"label": label, **{n: 0 for n in DAILY_SUMS}}
        )
        for name in DAILY_SUMS:
            bucket[name] += row[name]
        month = row["day"].replace(day=1)
        months[month] = months.get(month, Decimal(0)) + row["revenue"]

    def end_of(start: dt.date) -> dt.date:
        if span <= 31:
            last = start
        elif span <= 184:
            last = start + dt.timedelta(days=6)
        else:
            last = _month_end(start)
        return min(last, filters.end)

    def custom(figure: str, start: dt.date, **extra: Any) -> str:
        scoped = Filters(
            "custom",
            max(start, filters.start),
            end_of(start),
            filters.team_id,
            filters.owner_id,
            filters.days,
        )
        return _drill(figure, scoped, **extra)

    labels = [b["label"] for b in buckets.values()]
    trend = {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [_("新客户"), _("联系次数")], "top": 0},
        "grid": {"left": 40, "right": 40, "top": 36, "bottom": 28},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": [{"type": "value"}, {"type": "value", "splitLine": {"show": False}}],
        "series": [
            {
                "name": _("新客户"),
                "type": "line",
                "data": [
                    {"value": b["new_customers"], "url": custom("new", start)}
                    for start, b in buckets.items()
                ],
            },
            {
                "name": _("联系次数"),
                "type": "line",
                "yAxisIndex": 1,
                "data": [
                    {"value": b["contacts"], "url": custom("contacts", start)}
                    for start, b in buckets.items()
                ],
            },
        ],
    }
    names = [p["name"] for p in people]
    followups = {
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"data": [_("按时完成"), _("逾期完成"), _("逾期未完成")], "top": 0},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": names, "inverse": True},
        "color": ["#198754", "#fd7e14", "#dc3545"],
        "series": [
            {
                "name": label,
                "type": "bar",
                "stack": "followups",
                "barMaxWidth": 28,
                "data": [
                    {
                        "value": p[column],
                        "url": _drill(figure, filters, owner=p["owner"] or ""),
                    }
                    for p in people
                ],
            }
            for label, column, figure in (
                (_("按时完成"), "followups_on_time", "followups_on_time"),
                (_("逾期完成"), "followups_late", "followups_late"),
                (_("逾期未完成"), "followups_overdue", "followups_overdue"),
            )
        ],
    }
    stages = pipeline["stages"]
    pipeline_chart = {
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"data": [_("未成交金额"), _("加权预测")], "top": 0},
        "grid": {"left": 8, "right": 16, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": [s["stage__name"] for s in stages]},
        "yAxis": {"type": "value", "name": _("万元")},
        "color": ["#0d6efd", "#6f42c1"],
        "series": [
            {
                "name": _("未成交金额"),
                "type": "bar",
                "data": [
                    {
                        "value": _money(s["amount"]),
                        "url": _drill("pipeline", filters, stage=s["stage"]),
                    }
                    for s in stages
                ],
            },
            {
                "name": _("加权预测"),
                "type": "bar",
                "data": [
                    {
                        "value": _money(s["weighted"]),
                        "url": _drill("pipeline", filters, stage=s["stage"]),
                    }
                    for s in stages
                ],
            },
        ],
    }
    coverage_chart = {
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "grid": {"left": 8, "right": 48, "top": 16, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "value", "max": 100, "axisLabel": {"formatter": "{value}%"}},
        "yAxis": {
            "type": "category",
            "data": [p["name"] for p in coverage["people"]],
            "inverse": True,
        },
        "series": [
            {
                "name": _("覆盖率"),
                "type": "bar",
                "barMaxWidth": 28,
                "label": {"show": True, "position": "right", "formatter": "{c}%"},
                "itemStyle": {"color": "#20c997"},
                "data": [
                    {"value": p["share"] or 0, "url": p["url"]}
                    for p in coverage["people"]
                ],
            }
        ],
    }
    service = {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [_("投诉"), _("SLA 达成率")], "top": 0},
        "grid": {"left": 40, "right": 48, "top": 36, "bottom": 28},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": [
            {"type": "value"},
            {
                "type": "value",
                "max": 100,
                "axisLabel": {"formatter": "{value}%"},
                "splitLine": {"show": False},
            },
        ],
        "color": ["#dc3545", "#0dcaf0"],
        "series": [
            {
                "name": _("投诉"),
                "type": "bar",
                "data": [
                    {
                        "value": b["complaints_opened"],
                        "url": custom("complaints", start),
                    }
                    for start, b in buckets.items()
                ],
            },
            {
                "name": _("SLA 达成率"),
                "type": "line",
                "yAxisIndex": 1,
                "connectNulls": True,
                "data": [
                    {
                        "value": _ratio(b["sla_met"], b["sla_met"] + b["sla_breached"]),
                        "url": custom("sla_breached", start),
                    }
                    for start, b in buckets.items()
                ],
            },
        ],
    }
    revenue = {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 8, "right": 16, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": [m.strftime("%Y-%m") for m in months]},
        "yAxis": {"type": "value", "name": _("万元")},
        "series": [
            {
                "name": _("回款"),
                "type": "bar",
                "barMaxWidth": 48,
                "itemStyle": {"color": "#fd7e14"},
                "data": [
                    {"value": _money(amount), "url": custom("revenue", month)}
                    for month, amount in months.items()
                ],
            }
        ],
    }
    height = max(220, 36 * len(people) + 80)
    total = {n: sum(b[n] for b in buckets.values()) for n in DAILY_SUMS}
    return {
        "pipeline": {
            "id": "chart-pipeline",
            "options": pipeline_chart,
            "height": 300,
            "empty": not stages,
            "label": _("商机阶段与加权预测"),
        },
        "trend": {
            "id": "chart-trend",
            "options": trend,
            "height": 300,
            "empty": not (total["new_customers"] or total["contacts"]),
            "label": _("新客户与联系次数"),
        },
        "followups": {
            "id": "chart-followups",
            "options": followups,
            "height": height,
            "empty": not total["followups_due"],
            "label": _("跟进按时与逾期（按销售）"),
        },
        "coverage": {
            "id": "chart-coverage",
            "options": coverage_chart,
            "height": max(220, 36 * len(coverage["people"]) + 60),
            "empty": not coverage["people"],
            "label": _("大客户覆盖率"),
        },
        "service": {
            "id": "chart-service",
            "options": service,
            "height": 300,
            "empty": not (
                total["complaints_opened"] or total["sla_met"] or total["sla_breached"]
            ),
            "label": _("投诉与 SLA 达成率"),
        },
        "revenue": {
            "id": "chart-revenue",
            "options": revenue,
            "height": 300,
            "empty": not months or not any(months.values()),
            "label": _("月度回款"),
        },
    }


def _month_end(first: dt.date) -> dt.date:
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def home_dashboard(*, user: Any) -> dict[str, Any]:
    """The manager's home: the dashboard with its default filters."""
    teams = teams_for(user)
    filters = filters_from({}, user=user, teams=teams)
    return dashboard(user=user, filters=filters, teams=teams)


# --- the customers behind a figure --------------------------------------------------

FIGURES = {
    "pipeline": gettext_lazy("商机阶段中的客户（进行中的商机）"),
    "new": gettext_lazy("新客户"),
    "contacts": gettext_lazy("有联系记录的客户"),
    "followups_on_time": gettext_lazy("跟进按时完成的客户"),
    "followups_late": gettext_lazy("跟进逾期完成的客户"),
    "followups_overdue": gettext_lazy("跟进逾期未完成的客户"),
    "complaints": gettext_lazy("有投诉的客户"),
    "sla_breached": gettext_lazy("工单 SLA 超时的客户"),
    "revenue": gettext_lazy("有回款的客户"),
}
DRILL_PAGE = 50


def drill_customers(
    *,
    user: Any,
    figure: str,
    filters: Filters,
    stage_id: int | None,
    before: int | None,
) -> dict[str, Any]:
    """The customers behind one figure (the source rows, not the rollups: a page of
    50, newest first, keyset by id; one query plus the stage's name)."""
    lo, hi = bounds.local_bounds(filters.start, filters.end)
    hi = hi + dt.timedelta(microseconds=1)
    customers = Customer.objects.visible_to(user).filter(merged_into__isnull=True)
    on_customer = {}
    if filters.owner_id:
        on_customer["owner_id"] = filters.owner_id
    if filters.team_id:
        on_customer["team_id"] = filters.team_id
    stage = None
    if figure == "pipeline":
        deals = Deal.objects.filter(customer=OuterRef("pk"), status=Deal.Status.OPEN)
        if stage_id:
            deals = deals.filter(stage_id=stage_id)
            stage = DealStage.objects.filter(pk=stage_id).first()
        if filters.owner_id:
            deals = deals.filter(owner_id=filters.owner_id)
        if filters.team_id:
            deals = deals.filter(team_id=filters.team_id)
        customers = customers.filter(Exists(deals))
    elif figure == "new":
        customers = customers.filter(
            created_at__gte=lo, created_at__lt=hi, **on_customer
        )
    elif figure == "contacts":
        contacts = ContactLog.objects.filter(
            customer=OuterRef("pk"), occurred_at__gte=lo, occurred_at__lt=hi
        )
        if filters.owner_id:
            contacts = contacts.filter(author_id=filters.owner_id)
        if filters.team_id:
            customers = customers.filter(team_id=filters.team_id)
        customers = customers.filter(Exists(contacts))
    elif figure.startswith("followups_"):
        followups = FollowUp.objects.filter(
            customer=OuterRef("pk"), due_at__gte=lo, due_at__lt=hi
        )
        if figure == "followups_on_time":
            followups = followups.filter(status="done", done_at__lte=F("due_at"))
        elif figure == "followups_late":
            followups = followups.filter(status="done", done_at__gt=F("due_at"))
        else:
            followups = followups.filter(status="open", due_at__lt=timezone.now())
        if filters.owner_id:
            followups = followups.filter(assignee_id=filters.owner_id)
        if filters.team_id:
            customers = customers.filter(team_id=filters.team_id)
        customers = customers.filter(Exists(followups))
    elif figure == "complaints":
        tickets = Ticket.objects.filter(
            customer=OuterRef("pk"),
            ticket_type=TicketType.COMPLAINT,
            created_at__gte=lo,
            created_at__lt=hi,
            merged_into__isnull=True,
        )
        customers = customers.filter(Exists(tickets), **on_customer)
    elif figure == "sla_breached":
        tickets = Ticket.objects.filter(
            Q(first_response_breached=True) | Q(resolution_breached=True),
            customer=OuterRef("pk"),
            resolution_due_at__gte=lo,
            resolution_due_at__lt=hi,
            merged_into__isnull=True,
        )
        customers = customers.filter(Exists(tickets), **on_customer)
    else:  # revenue
        payments = Payment.objects.filter(
            customer=OuterRef("pk"),
            received_on__gte=filters.start,
            received_on__lte=filters.end,
        )
        if filters.owner_id:
            payments = payments.filter(deal__owner_id=filters.owner_id)
        if filters.team_id:
            payments = payments.filter(deal__team_id=filters.team_id)
        customers = customers.filter(Exists(payments))
    if before:
        customers = customers.filter(pk__lt=before)
    rows = list(
        customers.select_related("owner", "team").order_by("-pk")[: DRILL_PAGE + 1]
    )
    more = len(rows) > DRILL_PAGE
    rows = rows[:DRILL_PAGE]
    return {
        "figure": figure,
        "figure_label": FIGURES[figure],
        "stage": stage,
        "customers": rows,
        "next_before": rows[-1].pk if more else None,
        "filters": filters,
    }
