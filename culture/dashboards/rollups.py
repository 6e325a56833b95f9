# ruff: noqa: S608 - the SQL here is assembled from this module's constants and model
# table names only; every value travels as a query parameter.
"""Keeping the dashboard's rollup tables current (docs/dashboards.md).

Three tables, each with a RollupState row saying how fresh it is:

- `daily_activity` (DailyActivity): per local day, owner and team, the counts and sums
  of the day. `refresh()` recomputes only the days touched since the last run: the days
  named by any version (old or new) of a source row that has a pghistory event newer than
  the table's watermark (the last event id read, per source), plus the days from the
  last run to today (a follow-up becomes overdue without any row changing). Each touched
  day is recomputed in SQL with one INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE,
  then the day's keys that no longer have any fact are deleted: running it twice changes
  nothing, and the result equals a full rebuild.
- `pipeline` (PipelineSnapshot) and `coverage` (CoverageSnapshot): today's picture of
  the open pipeline and of A-tier contact coverage, recomputed on every run (the open
  deals and the A-tier customers are read through their indexes, in SQL); earlier days
  keep the picture taken on that day.

- `monthly_activity` (MonthlyActivity): the daily rows summed per calendar month,
  owner and team, recomputed from the daily table for the months of the touched days
  (delete, then INSERT … SELECT … GROUP BY), so it always equals the daily rows it sums;
  the dashboard reads it for the whole months of a period longer than half a year.

`rebuild()` truncates `daily_activity` (and `monthly_activity`) and fills it with one INSERT … SELECT over all
history, then takes today's snapshots. Nothing is loaded into Python but the list of
touched days.

The refresh runs as a scheduled action (crm/scheduler: a row in the database that
Celery delivers and retries, never a bare beat job): each run schedules the next one
KEHU_ROLLUP_MINUTES later under a key named after its time slot, so a redelivery of the
same run schedules nothing twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crm.scheduler import services as scheduler
from culture.dashboards.models import (
    CoverageSnapshot,
    DailyActivity,
    PipelineSnapshot,
    RollupState,
)

DAILY, PIPELINE, COVERAGE = "daily_activity", "pipeline", "coverage"
TABLES = (DAILY, PIPELINE, COVERAGE)
REFRESH_KIND = "dashboards.rollups_refresh"
# Events younger than this are read again by the next run: a transaction still open
# when a run starts may commit an event id below the newest one the run saw.
LAG = timedelta(minutes=5)
LOCK_ID = 0x6B656875_0014  # pg_advisory_xact_lock: one refresh or rebuild at a time

# The pghistory event tables the daily table is computed from, by source.
SOURCES = {
    "customers": "customers.CustomerEvent",
    "contacts": "customers.ContactLogEvent",
    "followups": "customers.FollowUpEvent",
    "deals": "deals.DealEvent",
    "payments": "deals.PaymentEvent",
    "tickets": "service.TicketEvent",
}

METRICS = (
    "new_customers",
    "contacts",
    "followups_due",
    "followups_on_time",
    "followups_late",
    "followups_overdue",
    "deals_created",
    "deals_created_amount",
    "deals_won",
    "deals_won_amount",
    "payments",
    "revenue",
    "tickets_opened",
    "complaints_opened",
    "sla_met",
    "sla_breached",
)


@dataclass(frozen=True)
class Branch:
    """One source's contribution to the daily table."""

    table: str  # FROM clause: the source aliased, plus its joins
    column: str  # the timestamp (or date) that places a row on a day
    is_date: bool
    owner: str
    team: str
    where: str
    metrics: dict[str, str]


_DONE_ON_TIME = "f.status = 'done' AND f.done_at <= f.due_at"
_DONE_LATE = "f.status = 'done' AND f.done_at > f.due_at"
_RESOLVED = "t.status IN ('resolved', 'closed')"
_BREACHED = "(t.first_response_breached OR t.resolution_breached)"

BRANCHES = (
    Branch(
        "customers_customer AS c",
        "c.created_at",
        False,
        "c.owner_id",
        "c.team_id",
        "c.merged_into_id IS NULL AND c.is_verified",
        {"new_customers": "1"},
    ),
    Branch(
        "customers_contactlog AS k JOIN customers_customer AS c ON c.id = k.customer_id",
        "k.occurred_at",
        False,
        "k.author_id",
        "c.team_id",
        "TRUE",
        {"contacts": "1"},
    ),
    Branch(
        "customers_followup AS f JOIN customers_customer AS c ON c.id = f.customer_id",
        "f.due_at",
        False,
        "f.assignee_id",
        "c.team_id",
        "f.status <> 'cancelled'",
        {
            "followups_due": "1",
            "followups_on_time": f"CASE WHEN {_DONE_ON_TIME} THEN 1 ELSE 0 END",
            "followups_late": f"CASE WHEN {_DONE_LATE} THEN 1 ELSE 0 END",
            "followups_overdue": (
                "CASE WHEN f.status = 'open' AND f.due_at < %(now)s THEN 1 ELSE 0 END"
            ),
        },
    ),
    Branch(
        "deals_deal AS d",
        "d.created_at",
        False,
        "d.owner_id",
        "d.team_id",
        "TRUE",
        {"deals_created": "1", "deals_created_amount": "d.amount"},
    ),
    Branch(
        "deals_deal AS d",
        "d.closed_on",
        True,
        "d.owner_id",
        "d.team_id",
        "d.status = 'won'",
        {"deals_won": "1", "deals_won_amount": "d.amount"},
    ),
    Branch(
        "deals_payment AS p JOIN deals_deal AS d ON d.id = p.deal_id",
        "p.received_on",
        True,
        "d.owner_id",
        "d.team_id",
        "TRUE",
        {"payments": "1", "revenue": "p.amount"},
    ),
    Branch(
        "service_ticket AS t JOIN customers_customer AS c ON c.id = t.customer_id",
        "t.created_at",
        False,
        "c.owner_id",
        "c.team_id",
        "t.merged_into_id IS NULL",
        {
            "tickets_opened": "1",
            "complaints_opened": (
                "CASE WHEN t.ticket_type = 'complaint' THEN 1 ELSE 0 END"
            ),
        },
    ),
    Branch(
        "service_ticket AS t JOIN customers_customer AS c ON c.id = t.customer_id",
        "t.resolution_due_at",
        False,
        "c.owner_id",
        "c.team_id",
        "t.merged_into_id IS NULL",
        {
            "sla_met": (f"CASE WHEN {_RESOLVED} AND NOT {_BREACHED} THEN 1 ELSE 0 END"),
            "sla_breached": f"CASE WHEN {_BREACHED} THEN 1 ELSE 0 END",
        },
    ),
)


def _branch_sql(branch: Branch, *, incremental: bool) -> str:
    col = branch.column
    if incremental:
        join = (
            f"JOIN days AS dd ON dd.day = {col}"
            if branch.is_date
            else f"JOIN days AS dd ON {col} >= dd.lo AND {col} < dd.hi"
        )
        day = "dd.day"
    else:
        join = ""
        day = col if branch.is_date else f"({col} AT TIME ZONE %(tz)s)::date"
    values = ", ".join(f"{branch.metrics.get(m, '0')} AS {m}" for m in METRICS)
    return (
        f"SELECT {day} AS day, {branch.owner} AS owner_id, {branch.team} AS team_id, "
        f"{values} FROM {branch.table} {join} "
        f"WHERE {col} IS NOT NULL AND {branch.where}"
    )


def daily_sql(*, incremental: bool) -> str:
    """INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE for the daily table."""
    days = (
        "WITH days AS (SELECT d AS day, (d::timestamp AT TIME ZONE %(tz)s) AS lo, "
        "((d + 1)::timestamp AT TIME ZONE %(tz)s) AS hi "
        "FROM unnest(%(days)s::date[]) AS d), "
        if incremental
        else "WITH "
    )
    facts = " UNION ALL ".join(
        _branch_sql(b, incremental=incremental) for b in BRANCHES
    )
    sums = ", ".join(f"sum({m})" for m in METRICS)
    updates = ", ".join(f"{m} = EXCLUDED.{m}" for m in (*METRICS, "refreshed_at"))
    return (
        f"{days}facts AS ({facts}) "
        f"INSERT INTO dashboards_dailyactivity (day, owner_id, team_id, "
        f"{', '.join(METRICS)}, refreshed_at) "
        f"SELECT day, owner_id, team_id, {sums}, %(stamp)s FROM facts "
        "GROUP BY day, owner_id, team_id "
        f"ON CONFLICT (day, owner_id, team_id) DO UPDATE SET {updates}"
    )


# The monthly table from the daily one: every month (rebuild) or the months of the
# touched days (refresh: those months' rows deleted first, so a month whose daily rows
# are gone loses its rows too). A month's row is the plain sum of its daily rows.
def monthly_sql(*, incremental: bool) -> str:
    sums = ", ".join(f"sum({m})" for m in METRICS)
    where = (
        "WHERE day >= %(months_from)s AND day < %(months_to)s "
        "AND date_trunc('month', day)::date = ANY(%(months)s::date[]) "
        if incremental
        else ""
    )
    return (
        f"INSERT INTO dashboards_monthlyactivity (month, owner_id, team_id, "
        f"{', '.join(METRICS)}) "
        f"SELECT date_trunc('month', day)::date, owner_id, team_id, {sums} "
        f"FROM dashboards_dailyactivity {where}GROUP BY 1, 2, 3"
    )


PIPELINE_SQL = (
    "INSERT INTO dashboards_pipelinesnapshot (day, stage_id, owner_id, team_id, "
    "open_count, open_amount, weighted_amount, refreshed_at) "
    "SELECT %(today)s, d.stage_id, d.owner_id, d.team_id, count(*), sum(d.amount), "
    "round(sum(d.amount * s.probability) / 100, 2), %(stamp)s "
    "FROM deals_deal AS d JOIN deals_dealstage AS s ON s.id = d.stage_id "
    "WHERE d.status = 'open' GROUP BY d.stage_id, d.owner_id, d.team_id "
    "ON CONFLICT (day, stage_id, owner_id, team_id) DO UPDATE SET "
    "open_count = EXCLUDED.open_count, open_amount = EXCLUDED.open_amount, "
    "weighted_amount = EXCLUDED.weighted_amount, refreshed_at = EXCLUDED.refreshed_at"
)

COVERAGE_SQL = (
    "INSERT INTO dashboards_coveragesnapshot (day, owner_id, team_id, a_customers, "
    "contacted_7, contacted_30, contacted_90, refreshed_at) "
    "SELECT %(today)s, c.owner_id, c.team_id, count(*), "
    "count(*) FILTER (WHERE c.last_contacted_at >= %(now)s - interval '7 days'), "
    "count(*) FILTER (WHERE c.last_contacted_at >= %(now)s - interval '30 days'), "
    "count(*) FILTER (WHERE c.last_contacted_at >= %(now)s - interval '90 days'), "
    "%(stamp)s FROM customers_customer AS c "
    "WHERE c.tier = 'A' AND c.merged_into_id IS NULL AND c.is_verified "
    "GROUP BY c.owner_id, c.team_id "
    "ON CONFLICT (day, owner_id, team_id) DO UPDATE SET "
    "a_customers = EXCLUDED.a_customers, contacted_7 = EXCLUDED.contacted_7, "
    "contacted_30 = EXCLUDED.contacted_30, contacted_90 = EXCLUDED.contacted_90, "
    "refreshed_at = EXCLUDED.refreshed_at"
)


def _event_table(source: str) -> str:
    return apps.get_model(SOURCES[source])._meta.db_table


def _local(column: str) -> str:
    return f"({column} AT TIME ZONE %(tz)s)::date"


def touched_days_sql() -> str:
    """Every local day named by any version of a source row changed since its mark."""
    ev = {source: _event_table(source) for source in SOURCES}

    def versions(source: str, *columns: str, dates: tuple[str, ...] = ()) -> str:
        table = ev[source]
        changed = f"SELECT pgh_obj_id FROM {table} WHERE pgh_id > %(m_{source})s"
        days = [_local(f"e.{c}") for c in columns] + [f"e.{c}" for c in dates]
        return " UNION ".join(
            f"SELECT {d} AS day FROM {table} AS e WHERE e.pgh_obj_id IN ({changed})"
            for d in days
        )

    customers = ev["customers"]
    # A customer whose owner, team, merge or verification changed moves its new-customer
    # count and every contact, follow-up and ticket counted by its team or owner.
    moved = (
        "moved AS (SELECT DISTINCT pgh_obj_id AS id FROM ("
        "SELECT e.pgh_id, e.pgh_obj_id, e.pgh_label, ROW(e.owner_id, e.team_id, "
        "e.merged_into_id, e.is_verified, e.created_at) IS DISTINCT FROM "
        "lag(ROW(e.owner_id, e.team_id, e.merged_into_id, e.is_verified, e.created_at)) "
        "OVER (PARTITION BY e.pgh_obj_id ORDER BY e.pgh_id) AS changed "
        f"FROM {customers} AS e WHERE e.pgh_obj_id IN "
        f"(SELECT pgh_obj_id FROM {customers} WHERE pgh_id > %(m_customers)s)"
        ") AS h WHERE h.pgh_id > %(m_customers)s "
        "AND (h.changed OR h.pgh_label <> 'update'))"
    )
    parts = [
        f"SELECT {_local('e.created_at')} FROM {customers} AS e "
        "WHERE e.pgh_obj_id IN (SELECT id FROM moved)",
        f"SELECT {_local('k.occurred_at')} FROM customers_contactlog AS k "
        "WHERE k.customer_id IN (SELECT id FROM moved)",
        f"SELECT {_local('f.due_at')} FROM customers_followup AS f "
        "WHERE f.customer_id IN (SELECT id FROM moved)",
        f"SELECT {_local('t.created_at')} FROM service_ticket AS t "
        "WHERE t.customer_id IN (SELECT id FROM moved)",
        f"SELECT {_local('t.resolution_due_at')} FROM service_ticket AS t "
        "WHERE t.customer_id IN (SELECT id FROM moved)",
        versions("contacts", "occurred_at"),
        versions("followups", "due_at"),
        versions("deals", "created_at", dates=("closed_on",)),
        versions("payments", dates=("received_on",)),
        versions("tickets", "created_at", "resolution_due_at"),
        # A deal's payments count for its owner and team.
        "SELECT p.received_on FROM deals_payment AS p WHERE p.deal_id IN "
        f"(SELECT pgh_obj_id FROM {ev['deals']} WHERE pgh_id > %(m_deals)s)",
        # Follow-ups fall overdue as time passes, with no row changing.
        "SELECT s::date FROM generate_series(%(since)s::date, %(today)s::date, "
        "interval '1 day') AS s",
    ]
    union = " UNION ".join(f"({p})" for p in parts)
    return (
        f"WITH {moved} SELECT day FROM ({union}) AS u(day) "
        "WHERE day IS NOT NULL ORDER BY day"
    )


def _marks(cursor: Any, stamp: datetime) -> dict[str, int]:
    """Per source, the newest event id older than LAG (read again next time if younger)."""
    marks = {}
    for source in SOURCES:
        table = _event_table(source)
        cursor.execute(
            f"SELECT coalesce(max(pgh_id), 0) FROM {table} WHERE pgh_created_at < %s",  # noqa: S608  # nosec B608 # table names from the models' _meta, values bound
            [stamp - LAG],
        )
        marks[source] = cursor.fetchone()[0]
    return marks


def _today(now: datetime) -> date:
    return timezone.localtime(now).date()


def _states() -> dict[str, RollupState]:
    states = {s.name: s for s in RollupState.objects.filter(name__in=TABLES)}
    for name in TABLES:
        if name not in states:
            states[name], _ = RollupState.objects.get_or_create(name=name)
    return states


def _snapshots(cursor: Any, params: dict[str, Any]) -> None:
    cursor.execute(PIPELINE_SQL, params)
    cursor.execute(
        "DELETE FROM dashboards_pipelinesnapshot WHERE day = %(today)s "
        "AND refreshed_at < %(stamp)s",
        params,
    )
    cursor.execute(COVERAGE_SQL, params)
    cursor.execute(
        "DELETE FROM dashboards_coveragesnapshot WHERE day = %(today)s "
        "AND refreshed_at < %(stamp)s",
        params,
    )


def _params(now: datetime, stamp: datetime) -> dict[str, Any]:
    return {
        "tz": settings.TIME_ZONE,
        "now": now,
        "stamp": stamp,
        "today": _today(now),
    }


def refresh(*, now: datetime | None = None) -> dict[str, Any]:
    """Bring every rollup up to date, recomputing only the touched days.

    `now` (tests) fixes the clock the figures are computed against.
    """
    started = time.monotonic()
    stamp = timezone.now()
    now = now or stamp
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_ID])
        states = _states()
        daily = states[DAILY]
        if daily.last_updated_at is None:
            return rebuild(now=now, locked=True)
        params = _params(now, stamp)
        params["since"] = timezone.localtime(daily.last_updated_at).date()
        for source in SOURCES:
            params[f"m_{source}"] = int(daily.marks.get(source, 0))
        new_marks = _marks(cursor, stamp)
        cursor.execute(touched_days_sql(), params)
        days = [row[0] for row in cursor.fetchall()]
        params["days"] = days
        cursor.execute(daily_sql(incremental=True), params)
        cursor.execute(
            "DELETE FROM dashboards_dailyactivity WHERE day = ANY(%(days)s::date[]) "
            "AND refreshed_at < %(stamp)s",
            params,
        )
        params["months"] = months = sorted({day.replace(day=1) for day in days})
        if months:
            last = months[-1]
            params["months_from"] = months[0]
            params["months_to"] = (last.replace(day=28) + timedelta(days=4)).replace(
                day=1
            )
        else:
            params["months_from"] = params["months_to"] = _today(now)
        cursor.execute(
            "DELETE FROM dashboards_monthlyactivity "
            "WHERE month = ANY(%(months)s::date[])",
            params,
        )
        cursor.execute(monthly_sql(incremental=True), params)
        _snapshots(cursor, params)
        elapsed = int((time.monotonic() - started) * 1000)
        _save_states(states, stamp=stamp, marks=new_marks, days=len(days), ms=elapsed)
    return {"days": len(days), "ms": elapsed}


def rebuild(*, now: datetime | None = None, locked: bool = False) -> dict[str, Any]:
    """Empty the daily table and compute it again from all history; take today's
    snapshots. One INSERT … SELECT per table."""
    started = time.monotonic()
    stamp = timezone.now()
    now = now or stamp
    with transaction.atomic(), connection.cursor() as cursor:
        if not locked:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_ID])
        states = _states()
        params = _params(now, stamp)
        new_marks = _marks(cursor, stamp)
        cursor.execute("TRUNCATE dashboards_dailyactivity, dashboards_monthlyactivity")
        cursor.execute(daily_sql(incremental=False), params)
        cursor.execute(monthly_sql(incremental=False), params)
        _snapshots(cursor, params)
        # Fresh statistics: planned on the emptied table's, the dashboard read a
        # three-year range as if it held a few hundred rows.
        cursor.execute("ANALYZE dashboards_dailyactivity")
        cursor.execute("ANALYZE dashboards_monthlyactivity")
        cursor.execute("SELECT count(DISTINCT day) FROM dashboards_dailyactivity")
        days = cursor.fetchone()[0]
        elapsed = int((time.monotonic() - started) * 1000)
        _save_states(
            states, stamp=stamp, marks=new_marks, days=days, ms=elapsed, rebuilt=True
        )
    return {"days": days, "ms": elapsed}


def _save_states(
    states: dict[str, RollupState],
    *,
    stamp: datetime,
    marks: dict[str, int],
    days: int,
    ms: int,
    rebuilt: bool = False,
) -> None:
    for state in states.values():
        state.last_updated_at = stamp
        state.duration_ms = ms
        state.days_refreshed = days if state.name == DAILY else 1
        if state.name == DAILY:
            state.marks = marks
        if rebuilt:
            state.last_rebuilt_at = stamp
    RollupState.objects.bulk_update(
        states.values(),
        [
            "last_updated_at",
            "duration_ms",
            "days_refreshed",
            "marks",
            "last_rebuilt_at",
        ],
    )


# --- the scheduled action -----------------------------------------------------------


def interval() -> timedelta:
    return timedelta(minutes=getattr(settings, "KEHU_ROLLUP_MINUTES", 10))


def _slot_key(due_at: datetime) -> str:
    return f"dashboards:rollups:{int(due_at.timestamp())}"


def schedule_next(*, now: datetime | None = None) -> Any:
    """The next run, at the next slot boundary (idempotent per slot)."""
    now = now or timezone.now()
    step = int(interval().total_seconds())
    due = datetime.fromtimestamp(
        (int(now.timestamp()) // step + 1) * step, tz=timezone.get_current_timezone()
    )
    return scheduler.action_schedule(
        kind=REFRESH_KIND, target_id=0, due_at=due, key=_slot_key(due)
    )


def refresh_handler(action: Any) -> None:
    """Scheduled action: refresh, then arm the next run (a redelivery re-runs an
    idempotent refresh and finds the next run already scheduled)."""
    refresh()
    schedule_next()


def freshness() -> dict[str, datetime | None]:
    """When each table was last brought up to date (one query)."""
    return dict(
        RollupState.objects.filter(name__in=TABLES).values_list(
            "name", "last_updated_at"
        )
    )


__all__ = [
    "COVERAGE",
    "DAILY",
    "PIPELINE",
    "CoverageSnapshot",
    "DailyActivity",
    "PipelineSnapshot",
    "freshness",
    "rebuild",
    "refresh",
    "schedule_next",
]
