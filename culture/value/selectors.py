"""The value pages' reads: Pareto per period (both views), the 80 % set and how it
changed, the RFM grid and its cells, tier changes. Each runs a fixed number of
queries, in SQL over the monthly rollup (value_customerrevenue), never over all
customers in Python. Definitions: docs/value.md."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Avg, Count, Q, QuerySet, Sum

from crm.accounts import access
from crm.accounts.models import Team, User
from crm.accounts.roles import Role
from culture.value import rollups
from culture.value.models import (
    CustomerValue,
    ParetoRank,
    ParetoScopeSize,
    ParetoSummary,
    RfmCell,
    RollupState,
    TierChange,
    rfm_segment_of,
)
from culture.value.periods import Period
from customers.models import Customer

VIEWS = ("customer", "channel")
CHANNEL_KINDS = (
    Customer.Kind.DEALER,
    Customer.Kind.DISTRIBUTOR,
    Customer.Kind.AGENT,
    Customer.Kind.WHOLESALER,
)
TOP_SHARE = Decimal("0.2")
CORE_SHARE = Decimal("0.8")
CURVE_POINTS = 200
PAGE_SIZE = 50
SET_CHANGES = ("entered", "left", "stayed")


# --- scope ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The customers a user's value figures are about (the denominator)."""

    queryset: QuerySet
    is_all: bool  # every verified customer: the rollup needs no join
    key: str
    # The scope's precomputed Pareto rankings (pareto_ranks), when it has them.
    rank_key: str | None = None


def scope_for(user: Any) -> Scope:
    """Admins: every verified customer; managers: their department's (visible_to);
    sales: the customers they own (their share). Merged duplicates never count."""
    base = Customer.objects.filter(is_verified=True, merged_into__isnull=True)
    if user.role == Role.ADMIN:
        return Scope(base, True, "all", rank_key="all")
    if user.role == Role.MANAGER:
        if access.visibility_scope(user) == "department" and user.team_id:
            # visible_to's department rule as id subqueries on the customer's own
            # owner and team columns: no join through team and owner per rollup row.
            department = user.team.department_id
            customers = base.filter(
                Q(owner=user)
                | Q(team__in=Team.objects.filter(department_id=department).values("pk"))
                | Q(
                    owner__in=User.objects.filter(
                        team__department_id=department
                    ).values("pk")
                )
            )
            return Scope(
                customers, False, f"user:{user.pk}", rank_key=f"dept:{department}"
            )
        # Other visibility settings (team, own, all): computed directly.
        customers = Customer.objects.visible_to(user).filter(
            is_verified=True, merged_into__isnull=True
        )
        return Scope(customers, False, f"user:{user.pk}")
    if user.role == Role.SALES:
        return Scope(
            base.filter(owner=user),
            False,
            f"owner:{user.pk}",
            rank_key=f"owner:{user.pk}",
        )
    return Scope(base.none(), False, "none")


def _scope_sql(scope: Scope) -> tuple[str, list[Any]]:
    sql, params = scope.queryset.values("id").query.sql_with_params()
    return sql, list(params)


# --- Pareto -----------------------------------------------------------------------------


def _column(view: str) -> str:
    return "channel_amount" if view == "channel" else "amount"


def _ranked(name: str, period: Period, view: str, scope: Scope) -> tuple[str, list]:
    """CTEs `<name>_rev` and `<name>` (cid, revenue, rn, cum, total) for one period:
    customers with revenue, ranked by revenue descending (ties: lower id first)."""
    column = _column(view)
    rollup = "value_customerrevenue"
    join, params = "", []
    if not scope.is_all:
        scope_sql, params = _scope_sql(scope)
        join = f"JOIN ({scope_sql}) s ON s.id = r.customer_id"
    sql = f"""
        {name}_rev AS (
            SELECT r.customer_id AS cid, SUM(r.{column}) AS revenue
            FROM {rollup} r {join}
            WHERE r.month >= %s AND r.month < %s AND r.{column} > 0
            GROUP BY r.customer_id
        ),
        {name} AS (
            SELECT cid, revenue,
                   ROW_NUMBER() OVER w AS rn,
                   SUM(revenue) OVER (w ROWS UNBOUNDED PRECEDING) AS cum,
                   SUM(revenue) OVER () AS total
            FROM {name}_rev
            WINDOW w AS (ORDER BY revenue DESC, cid)
        ),
        {name}_core AS (
            SELECT cid, rn, revenue FROM {name}
            WHERE rn <= (SELECT MIN(rn) FROM {name} WHERE cum >= %s * total)
        )
    """  # noqa: S608
    return sql, [*params, period.start, period.end, CORE_SHARE]


def _denominator(view: str, scope: Scope, ranked: str) -> tuple[str, list]:
    """Customers in scope (customer view); channel-kind customers in scope plus any
    other in-scope customer with channel revenue in the period (channel view)."""
    scope_sql, params = _scope_sql(scope)
    if view == "customer":
        return f"SELECT COUNT(*) FROM ({scope_sql}) d", params  # noqa: S608
    kinds = ", ".join(["%s"] * len(CHANNEL_KINDS))
    sql = f"""SELECT
        (SELECT COUNT(*) FROM customers_customer c
         WHERE c.id IN ({scope_sql}) AND c.kind IN ({kinds}))
      + (SELECT COUNT(*) FROM {ranked} x JOIN customers_customer c ON c.id = x.cid
         WHERE c.kind NOT IN ({kinds}))"""  # noqa: S608
    return sql, [*params, *CHANNEL_KINDS, *CHANNEL_KINDS]


@dataclass
class Pareto:
    period: Period
    view: str
    customers: int = 0  # the denominator: customers in scope
    payers: int = 0  # of them, with revenue in the period
    total: Decimal = Decimal(0)
    top_count: int = 0  # the top 20 % of customers: ceil(0.2 × customers)
    top_revenue: Decimal = Decimal(0)
    core_count: int = 0  # customers making up 80 % of revenue
    entered: int = 0
    left: int = 0
    stayed: int = 0
    curve: list[list[float]] = field(default_factory=list)

    @property
    def top_share(self) -> float | None:
        return float(self.top_revenue / self.total) if self.total else None

    @property
    def core_share_of_customers(self) -> float | None:
        return self.core_count / self.customers if self.customers else None

    @property
    def zero_revenue(self) -> int:
        return max(0, self.customers - self.payers)


def pareto_direct(*, period: Period, view: str, scope: Scope) -> Pareto:
    """The figures and the curve of one period and view, computed from the rollup in
    one query (scopes without precomputed rankings; the reference in tests)."""
    cur_sql, cur_params = _ranked("cur", period, view, scope)
    prev_sql, prev_params = _ranked("prev", period.previous(), view, scope)
    den_sql, den_params = _denominator(view, scope, "cur")
    sql = f"""
        WITH {cur_sql}, {prev_sql},
        den AS ({den_sql}),
        summary AS (
            SELECT (SELECT * FROM den) AS n,
                   (SELECT COUNT(*) FROM cur) AS payers,
                   (SELECT COALESCE(SUM(revenue), 0) FROM cur_rev) AS total
        ),
        k AS (SELECT GREATEST(1, CEIL(%s * n))::bigint AS k20 FROM summary),
        moves AS (
            SELECT COUNT(*) FILTER (WHERE p.cid IS NULL) AS entered,
                   COUNT(*) FILTER (WHERE c.cid IS NULL) AS left_,
                   COUNT(*) FILTER (WHERE c.cid IS NOT NULL AND p.cid IS NOT NULL)
                     AS stayed
            FROM cur_core c FULL OUTER JOIN prev_core p ON p.cid = c.cid
        )
        SELECT 0 AS part, s.n, s.payers, s.total, k.k20,
               (SELECT cum FROM cur WHERE rn = LEAST(k.k20, s.payers)),
               (SELECT COUNT(*) FROM cur_core),
               m.entered, m.left_, m.stayed
        FROM summary s, k, moves m
        UNION ALL
        -- The curve, sampled in SQL: every step-th rank and the last one.
        SELECT 1, c.rn, c.cum, NULL, NULL, NULL, NULL, NULL, NULL, NULL
        FROM cur c, summary s
        WHERE c.rn %% GREATEST(1, CEIL(s.payers / %s::numeric))::bigint = 0
           OR c.rn = s.payers
        ORDER BY 1, 2
    """  # noqa: S608
    result = Pareto(period=period, view=view)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [*cur_params, *prev_params, *den_params, TOP_SHARE, CURVE_POINTS - 1],
        )
        rows = cursor.fetchall()
        (
            _part,
            result.customers,
            result.payers,
            total,
            result.top_count,
            top_revenue,
            result.core_count,
            result.entered,
            result.left,
            result.stayed,
        ) = rows[0]
    result.total = Decimal(total or 0)
    result.top_revenue = Decimal(top_revenue or 0)
    n = result.customers or result.payers
    result.curve = [[0.0, 0.0]] + [
        [round(rn * 100 / n, 2), round(float(cum * 100 / result.total), 2)]
        for _part, rn, cum, *_rest in rows[1:]
    ]
    if result.customers and result.payers < result.customers:
        result.curve.append([100.0, 100.0])  # customers with no revenue: flat at 100 %
    return result


@dataclass
class Row:
    customer: Customer
    rank: int
    revenue: Decimal
    previous: Decimal | None = None


def core_customers_direct(
    *, period: Period, view: str, scope: Scope, after: int = 0, limit: int = PAGE_SIZE
) -> tuple[list[Row], int | None]:
    """One page of the customers making up 80 % of revenue, by rank (keyset: the
    rank after which the page starts); two queries."""
    cur_sql, params = _ranked("cur", period, view, scope)
    sql = f"""WITH {cur_sql}
        SELECT cid, rn, revenue FROM cur_core WHERE rn > %s ORDER BY rn LIMIT %s"""  # noqa: S608
    return _rows(sql, [*params, after, limit + 1], limit)


def set_changes_direct(
    *,
    period: Period,
    view: str,
    scope: Scope,
    which: str,
    after: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[list[Row], int | None]:
    """Customers who entered, left or stayed in the 80 % set since the previous
    period; keyset on the rank in the period that orders the list (the previous one
    for those who left)."""
    cur_sql, cur_params = _ranked("cur", period, view, scope)
    prev_sql, prev_params = _ranked("prev", period.previous(), view, scope)
    if which == "entered":
        select = """SELECT c.cid, c.rn, c.revenue, pr.revenue FROM cur_core c
            LEFT JOIN prev_core p ON p.cid = c.cid
            LEFT JOIN prev pr ON pr.cid = c.cid
            WHERE p.cid IS NULL AND c.rn > %s ORDER BY c.rn"""
    elif which == "left":
        select = """SELECT p.cid, p.rn, COALESCE(cr.revenue, 0), p.revenue
            FROM prev_core p
            LEFT JOIN cur_core c ON c.cid = p.cid
            LEFT JOIN cur cr ON cr.cid = p.cid
            WHERE c.cid IS NULL AND p.rn > %s ORDER BY p.rn"""
    else:
        select = """SELECT c.cid, c.rn, c.revenue, p.revenue FROM cur_core c
            JOIN prev_core p ON p.cid = c.cid WHERE c.rn > %s ORDER BY c.rn"""
    sql = f"WITH {cur_sql}, {prev_sql} {select} LIMIT %s"
    return _rows(sql, [*cur_params, *prev_params, after, limit + 1], limit)


# --- Pareto from the precomputed rankings (pareto_ranks) -----------------------------


def _key(period: Period, view: str, scope: Scope) -> list[Any]:
    return [period.kind, period.start, view, scope.rank_key]


_KEY = "kind = %s AND start = %s AND view = %s AND scope = %s"


def pareto(*, period: Period, view: str, scope: Scope) -> Pareto:
    """The figures and the curve of one period and view: read by rank from the
    precomputed ranking, the denominator from the scope's counted size (three
    queries whatever the data size); scopes without one are computed directly."""
    if scope.rank_key is None:
        return pareto_direct(period=period, view=view, scope=scope)
    result = Pareto(period=period, view=view)
    summary = (
        ParetoSummary.objects.filter(
            kind=period.kind, start=period.start, view=view, scope=scope.rank_key
        )
        .values_list(
            "payers", "total", "core_count", "other_payers", "entered", "left", "stayed"
        )
        .first()
    )
    other_payers = 0
    if summary:
        (
            result.payers,
            result.total,
            result.core_count,
            other_payers,
            result.entered,
            result.left,
            result.stayed,
        ) = summary
    size = (
        ParetoScopeSize.objects.filter(scope=scope.rank_key)
        .values_list("customers", "channel_customers")
        .first()
    ) or (0, 0)
    result.customers = size[1] + other_payers if view == "channel" else size[0]
    result.top_count = max(1, math.ceil(TOP_SHARE * result.customers))
    top_rank = min(result.top_count, result.payers)
    step = max(1, math.ceil(result.payers / (CURVE_POINTS - 1))) if result.payers else 1
    samples = [*range(step, result.payers + 1, step)]
    if result.payers and (not samples or samples[-1] != result.payers):
        samples.append(result.payers)
    cums = {}
    if result.payers:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT rank, cum FROM {ParetoRank._meta.db_table}"  # noqa: S608  # nosec B608 # table name from the model's _meta, values bound
                f" WHERE {_KEY} AND rank = ANY(%s)",
                [*_key(period, view, scope), [*samples, top_rank]],
            )
            cums = dict(cursor.fetchall())
    result.top_revenue = Decimal(cums.get(top_rank) or 0)
    n = result.customers or result.payers
    result.curve = [[0.0, 0.0]] + [
        [round(rn * 100 / n, 2), round(float(cums[rn] * 100 / result.total), 2)]
        for rn in samples
    ]
    if result.customers and result.payers < result.customers:
        result.curve.append([100.0, 100.0])  # customers with no revenue: flat at 100 %
    return result


def _core_count_sql() -> str:
    return f"(SELECT core_count FROM {ParetoSummary._meta.db_table} WHERE {_KEY})"  # noqa: S608  # nosec B608 # table name from the model's _meta


def core_customers(
    *, period: Period, view: str, scope: Scope, after: int = 0, limit: int = PAGE_SIZE
) -> tuple[list[Row], int | None]:
    """One page of the customers making up 80 % of revenue, by rank (keyset: the
    rank after which the page starts); two queries."""
    if scope.rank_key is None:
        return core_customers_direct(
            period=period, view=view, scope=scope, after=after, limit=limit
        )
    key = _key(period, view, scope)
    sql = f"""SELECT customer_id, rank, revenue FROM {ParetoRank._meta.db_table}
        WHERE {_KEY} AND rank > %s AND rank <= {_core_count_sql()}
        ORDER BY rank LIMIT %s"""  # noqa: S608  # nosec B608 # table names from the models' _meta, values bound
    return _rows(sql, [*key, after, *key, limit + 1], limit)


def set_changes(
    *,
    period: Period,
    view: str,
    scope: Scope,
    which: str,
    after: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[list[Row], int | None]:
    """Customers who entered, left or stayed in the 80 % set since the previous
    period, read from both periods' rankings; keyset on the rank in the period that
    orders the list (the previous one for those who left)."""
    if scope.rank_key is None:
        return set_changes_direct(
            period=period, view=view, scope=scope, which=which, after=after, limit=limit
        )
    cur = _key(period, view, scope)
    prev = _key(period.previous(), view, scope)
    ranks = ParetoRank._meta.db_table
    core = _core_count_sql()
    join = "o.kind = %s AND o.start = %s AND o.view = %s AND o.scope = %s"
    if which == "entered":
        # In this period's set; in the previous ranking below its set, or not at all.
        params = [*prev, *cur, *cur, after, *prev]
        select = f"""SELECT c.customer_id, c.rank, c.revenue, o.revenue
            FROM {ranks} c LEFT JOIN {ranks} o ON {join} AND o.customer_id = c.customer_id
            WHERE c.{_KEY.replace(" AND ", " AND c.")} AND c.rank <= {core}
              AND c.rank > %s AND (o.rank IS NULL OR o.rank > {core})
            ORDER BY c.rank"""  # noqa: S608  # nosec B608
    elif which == "left":
        params = [*cur, *prev, *prev, after, *cur]
        select = f"""SELECT c.customer_id, c.rank, COALESCE(o.revenue, 0), c.revenue
            FROM {ranks} c LEFT JOIN {ranks} o ON {join} AND o.customer_id = c.customer_id
            WHERE c.{_KEY.replace(" AND ", " AND c.")} AND c.rank <= {core}
              AND c.rank > %s AND (o.rank IS NULL OR o.rank > {core})
            ORDER BY c.rank"""  # noqa: S608  # nosec B608
    else:
        params = [*prev, *cur, *cur, after, *prev]
        select = f"""SELECT c.customer_id, c.rank, c.revenue, o.revenue
            FROM {ranks} c JOIN {ranks} o ON {join} AND o.customer_id = c.customer_id
            WHERE c.{_KEY.replace(" AND ", " AND c.")} AND c.rank <= {core}
              AND c.rank > %s AND o.rank <= {core}
            ORDER BY c.rank"""  # noqa: S608  # nosec B608
    return _rows(f"{select} LIMIT %s", [*params, limit + 1], limit)


def _rows(sql: str, params: list, limit: int) -> tuple[list[Row], int | None]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        raw = cursor.fetchall()
    more = len(raw) > limit
    raw = raw[:limit]
    customers = Customer.objects.select_related("owner").in_bulk([r[0] for r in raw])
    rows = [
        Row(
            customer=customers[r[0]],
            rank=r[1],
            revenue=Decimal(r[2] or 0),
            previous=Decimal(r[3]) if len(r) > 3 and r[3] is not None else None,
        )
        for r in raw
        if r[0] in customers
    ]
    return rows, (raw[-1][1] if more and raw else None)


# --- RFM --------------------------------------------------------------------------------


def _values(scope: Scope) -> QuerySet:
    values = CustomerValue.objects.all()
    if not scope.is_all:
        values = values.filter(customer__in=scope.queryset)
    return values


def rfm_grid(*, scope: Scope) -> dict[str, Any]:
    """The 5 × 5 R × F grid: customers, mean and total monetary per cell (one query):
    the scope's ≤ 25 precomputed cells (value_rfmcell), or, for a scope without them,
    aggregated from its scores."""
    if scope.rank_key is not None:
        cells = {
            (cell.r_score, cell.f_score): {
                "r_score": cell.r_score,
                "f_score": cell.f_score,
                "n": cell.customers,
                "m": cell.monetary / cell.customers if cell.customers else None,
                "total": cell.monetary,
            }
            for cell in RfmCell.objects.filter(scope=scope.rank_key)
        }
    else:
        cells = {
            (row["r_score"], row["f_score"]): row
            for row in _values(scope)
            .values("r_score", "f_score")
            .annotate(n=Count("customer"), m=Avg("monetary"), total=Sum("monetary"))
            .order_by()
        }
    return {"cells": cells, "scored": sum(c["n"] for c in cells.values())}


def rfm_cell(
    *, scope: Scope, r: int, f: int, after: int = 0, limit: int = PAGE_SIZE
) -> tuple[list[CustomerValue], int | None]:
    """One page of a grid cell's customers, by customer id (keyset)."""
    values = list(
        _values(scope)
        .filter(r_score=r, f_score=f, customer_id__gt=after)
        .select_related("customer", "customer__owner")
        .order_by("customer_id")[: limit + 1]
    )
    more = len(values) > limit
    values = values[:limit]
    return values, (values[-1].customer_id if more else None)


def rfm_segments(
    *, scope: Scope, grid: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Customers and monetary per RFM segment. A segment is a union of grid cells, so
    a scope with precomputed cells sums them (from `grid` when the caller has read
    it: no query)."""
    if scope.rank_key is not None:
        grid = grid or rfm_grid(scope=scope)
        rows: dict[str, dict[str, Any]] = {}
        for (r, f), cell in grid["cells"].items():
            row = rows.setdefault(rfm_segment_of(r, f), {"n": 0, "total": 0})
            row["n"] += cell["n"]
            row["total"] += cell["total"] or 0
    else:
        rows = {
            row["segment"]: row
            for row in _values(scope)
            .values("segment")
            .annotate(n=Count("customer"), total=Sum("monetary"))
            .order_by()
        }
    return [
        {
            "segment": value,
            "label": label,
            "n": rows.get(value, {}).get("n", 0),
            "total": rows.get(value, {}).get("total") or 0,
        }
        for value, label in CustomerValue.Segment.choices
    ]


# --- tiers ------------------------------------------------------------------------------


def tier_changes(
    *, scope: Scope, before: int | None = None, limit: int = PAGE_SIZE
) -> tuple[list[TierChange], int | None]:
    """Newest tier changes of customers in scope, keyset on id descending."""
    changes = TierChange.objects.select_related("customer", "customer__owner")
    if not scope.is_all:
        changes = changes.filter(customer__in=scope.queryset)
    if before:
        changes = changes.filter(id__lt=before)
    rows = list(changes.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].pk if more else None)


# --- freshness --------------------------------------------------------------------------


def freshness() -> dict[str, datetime | None]:
    """When each rollup was last brought up to date (one query)."""
    states = {s.name: s for s in RollupState.objects.all()}

    def at(name: str) -> datetime | None:
        state = states.get(name)
        return state.refreshed_at if state else None

    return {
        "revenue": at(rollups.REVENUE),
        "rfm": at(RFM_STATE),
        "tiers": at(TIERS_STATE),
    }


RFM_STATE = "rfm"
TIERS_STATE = "tiers"
