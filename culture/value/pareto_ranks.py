"""The precomputed Pareto rankings (value_paretorank, value_paretosummary): for every
period (month, quarter, year) with revenue, both views and every scope a value page
reads (the whole company, a department, an owner), the paying customers ranked by
revenue with their cumulative revenue, and the figures of that ranking.

Built from the monthly rollup (value_customerrevenue), never from the payments: the
full rebuild runs inside `rollups.revenue_rebuild`, and `rollups.revenue_refresh`
recomputes the rankings of the periods and scopes its touched (customer, month) pairs
fall in. A ranking is recomputed whole (delete and insert, one statement per period),
so an incremental refresh gives exactly the rows of a rebuild (tests/value).

Scope keys follow selectors.scope_for: `all` (admins), `dept:<id>` (a manager with
department visibility: customers whose team is in the department or whose owner's
team is) and `owner:<id>` (sales: their own customers); only verified customers not
merged into another. A customer's scopes are read when its periods are recomputed, so
a reassignment reaches the rankings at the next rebuild (the daily backstop) or the
next payment of that period in the new scope. Definitions: docs/value.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.apps import apps
from django.db import connection

from culture.value import periods
from culture.value.models import (
    CustomerRevenue,
    ParetoRank,
    ParetoScopeSize,
    ParetoSummary,
)

CHANNEL_KINDS = ("dealer", "distributor", "agent", "wholesaler")
CORE_SHARE = "0.8"


def _tables() -> dict[str, str]:
    customer = apps.get_model("customers", "Customer")
    team = apps.get_model("accounts", "Team")
    user = apps.get_model("accounts", "User")
    return {
        "rollup": CustomerRevenue._meta.db_table,
        "rank": ParetoRank._meta.db_table,
        "summary": ParetoSummary._meta.db_table,
        "size": ParetoScopeSize._meta.db_table,
        "customer": customer._meta.db_table,
        "team": team._meta.db_table,
        "user": user._meta.db_table,
    }


# One period's rankings, every view and scope (or only the scopes named): the period's
# revenue per customer from the rollup, each paying customer once per scope it is in,
# numbered within (view, scope).
_RANK = """
INSERT INTO {rank} (kind, start, view, scope, rank, customer_id, revenue, cum)
WITH rev AS (
    SELECT r.customer_id AS cid, SUM(r.amount) AS amount,
           SUM(r.channel_amount) AS channel_amount
    FROM {rollup} r
    WHERE r.month >= %(start)s AND r.month < %(end)s
      AND (r.amount > 0 OR r.channel_amount > 0)
    GROUP BY r.customer_id
),
scoped AS (
    SELECT k.scope, rev.cid, v.view, v.revenue
    FROM rev
    JOIN {customer} c ON c.id = rev.cid
    LEFT JOIN {team} t ON t.id = c.team_id
    LEFT JOIN {user} u ON u.id = c.owner_id
    LEFT JOIN {team} ut ON ut.id = u.team_id
    CROSS JOIN LATERAL (VALUES
        ('all'),
        ('owner:' || c.owner_id),
        ('dept:' || t.department_id),
        ('dept:' || NULLIF(ut.department_id, t.department_id))
    ) k(scope)
    CROSS JOIN LATERAL (VALUES
        ('customer', rev.amount), ('channel', rev.channel_amount)
    ) v(view, revenue)
    WHERE c.is_verified AND c.merged_into_id IS NULL
      AND k.scope IS NOT NULL AND v.revenue > 0 {only}
)
SELECT %(kind)s, %(start)s, view, scope, ROW_NUMBER() OVER w, cid, revenue,
       SUM(revenue) OVER (w ROWS UNBOUNDED PRECEDING)
FROM scoped
WINDOW w AS (PARTITION BY view, scope ORDER BY revenue DESC, cid)
"""

# The figures of the rankings just written: payers, total, the size of the 80 % set
# (the smallest rank whose cumulative revenue reaches 80 % of the total) and, for the
# channel view's denominator, the ranked customers of a non-channel kind. One pass in
# the ranking's own index order (no join: the kind is looked up for channel rows only).
_SUMMARY = """
INSERT INTO {summary} (kind, start, view, scope, payers, total, core_count,
                       other_payers, entered, "left", stayed)
SELECT kind, start, view, scope, COUNT(*), MAX(cum),
       MIN(rank) FILTER (WHERE cum >= {core} * total),
       COUNT(*) FILTER (WHERE CASE WHEN view = 'channel' THEN EXISTS (
           SELECT 1 FROM {customer} c
           WHERE c.id = r.customer_id AND c.kind <> ALL(%(channel_kinds)s)
       ) ELSE false END),
       0, 0, 0
FROM (
    SELECT kind, start, view, scope, rank, customer_id, cum,
           MAX(cum) OVER (PARTITION BY view, scope) AS total
    FROM {rank}
    WHERE kind = %(kind)s AND start = %(start)s {only}
) r
GROUP BY kind, start, view, scope
"""

# How each summary's 80 % set changed since the previous period of the same kind (same
# view and scope): stayed = in both sets; entered and left are the rest of each set.
_MOVES = """
UPDATE {summary} s SET
    stayed = m.stayed,
    entered = s.core_count - m.stayed,
    "left" = COALESCE(p.core_count, 0) - m.stayed
FROM {summary} s2
LEFT JOIN {summary} p ON p.kind = s2.kind AND p.start = %(previous)s
     AND p.view = s2.view AND p.scope = s2.scope
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS stayed
    FROM {rank} c
    JOIN {rank} pr ON pr.kind = c.kind AND pr.start = %(previous)s
         AND pr.view = c.view AND pr.scope = c.scope AND pr.customer_id = c.customer_id
    WHERE c.kind = s2.kind AND c.start = s2.start AND c.view = s2.view
      AND c.scope = s2.scope AND c.rank <= s2.core_count
      AND pr.rank <= COALESCE(p.core_count, 0)
) m
WHERE s.id = s2.id AND s2.kind = %(kind)s AND s2.start = %(start)s {only_s2}
"""


# Customers per scope key (the denominators), as the rankings assign them.
_SIZES = """
INSERT INTO {size} (scope, customers, channel_customers)
SELECT k.scope, COUNT(*), COUNT(*) FILTER (WHERE c.kind = ANY(%(channel_kinds)s))
FROM {customer} c
LEFT JOIN {team} t ON t.id = c.team_id
LEFT JOIN {user} u ON u.id = c.owner_id
LEFT JOIN {team} ut ON ut.id = u.team_id
CROSS JOIN LATERAL (VALUES
    ('all'),
    ('owner:' || c.owner_id),
    ('dept:' || t.department_id),
    ('dept:' || NULLIF(ut.department_id, t.department_id))
) k(scope)
WHERE c.is_verified AND c.merged_into_id IS NULL AND k.scope IS NOT NULL
GROUP BY k.scope
"""


def count_scopes() -> None:
    """Count every scope's customers again (one pass over the customers)."""
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {t['size']}")  # noqa: S608  # nosec B608 # table name from the model's _meta
        cursor.execute(_SIZES.format(**t), {"channel_kinds": list(CHANNEL_KINDS)})


def _scope_filter(alias: str, scopes: list[str] | None) -> str:
    if scopes is None:
        return ""
    column = f"{alias}.scope" if alias else "scope"
    return f"AND {column} = ANY(%(scopes)s)"


def rank_period(period: periods.Period, *, scopes: list[str] | None = None) -> None:
    """(Re)compute one period's rankings and summaries, for every scope or only
    `scopes`, and the set changes of this period and of the next one (whose previous
    period this is). The caller holds the transaction."""
    _rank_rows(period, scopes)
    _summaries(period, scopes)
    for target in (period, period.next()):
        _moves(target, scopes)


def _params(period: periods.Period, scopes: list[str] | None) -> dict:
    return {
        "kind": period.kind,
        "start": period.start,
        "end": period.end,
        "scopes": scopes,
        "channel_kinds": list(CHANNEL_KINDS),
    }


def _rank_rows(period: periods.Period, scopes: list[str] | None) -> None:
    t = _tables()
    params = _params(period, scopes)
    only = _scope_filter("", scopes)
    with connection.cursor() as cursor:
        for table in (t["rank"], t["summary"]):
            cursor.execute(
                f"DELETE FROM {table} WHERE kind = %(kind)s"  # noqa: S608  # nosec B608 # table names from the models' _meta, values bound
                f" AND start = %(start)s {only}",
                params,
            )
        cursor.execute(_RANK.format(only=_scope_filter("k", scopes), **t), params)


def _summaries(period: periods.Period, scopes: list[str] | None) -> None:
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(
            _SUMMARY.format(core=CORE_SHARE, only=_scope_filter("", scopes), **t),
            _params(period, scopes),
        )


def _moves(period: periods.Period, scopes: list[str] | None) -> None:
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(
            _MOVES.format(only_s2=_scope_filter("s2", scopes), **t),
            {
                "kind": period.kind,
                "start": period.start,
                "previous": period.previous().start,
                "scopes": scopes,
            },
        )


def _periods_between(first: date, last: date) -> list[periods.Period]:
    """Every month, quarter and year from the one holding `first` to the one holding
    `last`, oldest first."""
    out = []
    for kind in periods.KINDS:
        period = periods.containing(kind, first)
        while period.start <= last:
            out.append(period)
            period = period.next()
    return out


def rebuild() -> int:
    """Every period's rankings from the rollup; returns the ranking rows written. The
    caller holds the transaction (revenue_rebuild)."""
    t = _tables()
    with connection.cursor() as cursor:
        # DELETE, not TRUNCATE: TRUNCATE's exclusive lock would hold every value
        # page until the rebuild commits; deleted, the old rows stay readable.
        cursor.execute(f"DELETE FROM {t['rank']}")  # noqa: S608  # nosec B608 # table name from the model's _meta
        cursor.execute(f"DELETE FROM {t['summary']}")  # noqa: S608  # nosec B608 # table name from the model's _meta
        cursor.execute(f"SELECT MIN(month), MAX(month) FROM {t['rollup']}")  # noqa: S608  # nosec B608 # table name from the model's _meta
        first, last = cursor.fetchone()
    count_scopes()
    if first is None:
        return 0
    every = _periods_between(first, last)
    # In passes, with fresh statistics between them: the summaries and the set
    # changes read the rankings by index, which a plan made on the emptied tables'
    # statistics would not.
    for period in every:
        _rank_rows(period, None)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {t['rank']}")
    for period in every:
        _summaries(period, None)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {t['summary']}")
    for period in every:
        _moves(period, None)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {t['rank']}")  # noqa: S608  # nosec B608 # table name from the model's _meta
        return cursor.fetchone()[0]


def refresh(touched_table: str) -> int:
    """Recompute the rankings that the (cid, m) pairs in `touched_table` (the revenue
    refresh's temp table) fall in: each touched month's month, quarter and year, for
    the scopes those customers are in now. Returns the rankings recomputed."""
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT m FROM {touched_table}")  # noqa: S608  # nosec B608 # our own temp table's name
        months = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""SELECT DISTINCT k.scope FROM {touched_table} v
            JOIN {t["customer"]} c ON c.id = v.cid
            LEFT JOIN {t["team"]} tm ON tm.id = c.team_id
            LEFT JOIN {t["user"]} u ON u.id = c.owner_id
            LEFT JOIN {t["team"]} ut ON ut.id = u.team_id
            CROSS JOIN LATERAL (VALUES ('all'), ('owner:' || c.owner_id),
                ('dept:' || tm.department_id), ('dept:' || ut.department_id)) k(scope)
            WHERE k.scope IS NOT NULL"""  # noqa: S608  # nosec B608 # table names from the models' _meta and our temp table
        )
        scopes = sorted(row[0] for row in cursor.fetchall())
    if not months or not scopes:
        return 0
    touched = _touched_periods(months)
    for period in touched:
        rank_period(period, scopes=scopes)
    return len(touched)


def _touched_periods(months: Iterable[date]) -> list[periods.Period]:
    found = {periods.containing(kind, m) for m in months for kind in periods.KINDS}
    return sorted(found, key=lambda p: (periods.KINDS.index(p.kind), p.start))
