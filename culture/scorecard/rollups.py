# ruff: noqa: S608 - the SQL here is assembled from this module's constants and model
# table names only; every value travels as a query parameter.
"""Keeping the scorecard's rollup tables current (docs/scorecard.md).

- `daily` (ScorecardDaily): per local day, team, region (大区), segment (0 = all) and
  back-office department (0 but for work orders), the counts the daily figures are
  made of. Facts are placed on the day of their own timestamp: a survey on the day it
  was sent and (its answer) the day it was answered, a ticket's SLA outcome on its
  resolution due day, a resolution on its resolved day, a work order on its due day
  (and its rating on its completion day), a recovery on the day it was opened, a
  contact with a key account on the day it happened. Every fact is written once for
  segment 0 and once more for each segment its customer is a member of.
- `snapshot` (ScorecardSnapshot): today's picture of the customers (owned, contacted,
  dormant, key accounts' profiles), the open recoveries and the assets under warranty,
  taken on every run; earlier days keep the picture taken on that day.

`refresh()` recomputes the touched days only: the days from a week before the last
run to today (answers, sends and recoveries happen "now"; a reply or a reopen within
the week after a resolution changes that resolution's day), and every day named by
any version of a ticket, work order, recovery or contact row changed since the last
run (pghistory events after the watermark), by a survey row added since, or by the
facts of a customer whose team, region, tier or kind changed or who joined or left a
segment. One INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE for those days, then
their keys without facts are deleted: running it twice changes nothing, and the
result equals `rebuild()` (tests/scorecard/test_rollups.py).

The refresh is a scheduled action (crm/scheduler) re-arming itself every
KEHU_ROLLUP_MINUTES under a key named after its time slot, as the dashboard's.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crm.scheduler import services as scheduler
from culture.scorecard.figures import CONTACT_DAYS
from culture.scorecard.models import ScorecardState
from culture.segments.rules import MACRO_REGIONS

DAILY, SNAPSHOT = "daily", "snapshot"
TABLES = (DAILY, SNAPSHOT)
REFRESH_KIND = "scorecard.rollups_refresh"
LAG = timedelta(minutes=5)
# The statements are large (nine branches, CASEs, correlated subqueries): JIT compiling
# them took 8.8 s of an 11.5 s rebuild at 10,000 tickets, for no faster execution.
NO_JIT = "SET LOCAL jit = off"
LOCK_ID = 0x6B656875_0016  # pg_advisory_xact_lock: one refresh or rebuild at a time
# Days before the last run recomputed on every run (see the module's docstring).
WINDOW_DAYS = 7
CHANNEL_KINDS = ("dealer", "distributor", "wholesaler", "agent")
# The daily table also holds, per day, segment and department, the total over every
# team and region under this region (team NULL): the page without a team or region
# filter reads one row a day instead of one per team and region.
ALL = "*"

# The pghistory event tables whose changes name touched days.
SOURCES = {
    "customers": "customers.CustomerEvent",
    "contacts": "customers.ContactLogEvent",
    "tickets": "service.TicketEvent",
    "work_orders": "service.WorkOrderEvent",
    "recoveries": "satisfaction.RecoveryTaskEvent",
}

METRICS = (
    "surveys_sent",
    "surveys_answered",
    "csat_answers",
    "csat_satisfied",
    "nps_answers",
    "nps_promoters",
    "nps_detractors",
    "dealer_csat_answers",
    "dealer_csat_satisfied",
    "recoveries_settled",
    "recoveries_24h",
    "sla_met",
    "sla_breached",
    "sla_defects",
    "dealer_sla_met",
    "dealer_sla_breached",
    "resolved",
    "first_contact",
    "reopened",
    "warranty_repairs",
    "wo_on_time",
    "wo_late",
    "wo_overdue",
    "wo_rated",
    "wo_rating_sum",
    "ka_contacts",
    "ka_contacts_viewed",
)
# Counted for channel customers only (kind dealer, distributor, wholesaler, agent): a
# copy of the base metric, made in the keyed step.
DEALER_METRICS = {
    "dealer_csat_answers": "csat_answers",
    "dealer_csat_satisfied": "csat_satisfied",
    "dealer_sla_met": "sla_met",
    "dealer_sla_breached": "sla_breached",
}
FACT_METRICS = tuple(m for m in METRICS if m not in DEALER_METRICS)

SNAPSHOT_METRICS = (
    "customers",
    "owned",
    "dormant",
    "ab_customers",
    "ab_contacted",
    "a_customers",
    "a_contacted",
    "a_profiled",
    "recoveries_open",
    "recoveries_overdue",
    "units_in_warranty",
)


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def region_sql(column: str) -> str:
    """The 大区 of a province column (full or short names), '' when none matches."""
    whens = []
    for macro, shorts in MACRO_REGIONS.items():
        likes = " OR ".join(f"{column} LIKE {_lit(short + '%%')}" for short in shorts)
        whens.append(f"WHEN {likes} THEN {_lit(macro)}")
    return f"CASE {' '.join(whens)} ELSE '' END"


def _table(label: str) -> str:
    return apps.get_model(label)._meta.db_table


# --- the daily facts ------------------------------------------------------------------

_RESOLVED = "t.status IN ('resolved', 'closed')"
_BREACHED = "(t.first_response_breached OR t.resolution_breached)"
_REOPEN = (
    "EXISTS (SELECT 1 FROM service_tickettransition AS o WHERE o.ticket_id = t.id "
    "AND o.from_status IN ('resolved', 'closed') "
    "AND o.to_status NOT IN ('resolved', 'closed'){extra})"
)
_REOPEN_7 = _REOPEN.format(
    extra=" AND EXISTS (SELECT 1 FROM service_tickettransition AS r "
    "WHERE r.ticket_id = t.id AND r.to_status IN ('resolved', 'closed') "
    "AND r.created_at <= o.created_at "
    "AND r.created_at >= o.created_at - interval '7 days')"
)
_REPLIES = (
    "(SELECT count(*) FROM service_ticketmessage AS m WHERE m.ticket_id = t.id "
    "AND m.kind IN ('reply', 'call'))"
)


def _branches() -> list[tuple[str, str, str, str, str, str, dict[str, str]]]:
    """(FROM, day column, team, customer, department, WHERE, metrics)."""
    access_log = _table("core.AccessLog")
    viewed = (
        f"CASE WHEN EXISTS (SELECT 1 FROM {access_log} AS l "
        "WHERE l.user_id = k.author_id AND l.action = 'customer_viewed' "
        "AND l.object_type = 'customer' AND l.object_id = k.customer_id "
        "AND l.created_at <= k.occurred_at "
        "AND l.created_at >= k.occurred_at - interval '24 hours') THEN 1 ELSE 0 END"
    )
    return [
        (
            "satisfaction_survey AS s",
            "s.sent_at",
            "s.team_id",
            "s.customer_id",
            "0",
            "TRUE",
            {"surveys_sent": "1"},
        ),
        (
            "satisfaction_survey AS s",
            "s.answered_at",
            "s.team_id",
            "s.customer_id",
            "0",
            "s.score IS NOT NULL",
            {
                "surveys_answered": "1",
                "csat_answers": "CASE WHEN s.kind = 'csat' THEN 1 ELSE 0 END",
                "csat_satisfied": (
                    "CASE WHEN s.kind = 'csat' AND s.score >= 4 THEN 1 ELSE 0 END"
                ),
                "nps_answers": "CASE WHEN s.kind = 'nps' THEN 1 ELSE 0 END",
                "nps_promoters": (
                    "CASE WHEN s.kind = 'nps' AND s.score >= 9 THEN 1 ELSE 0 END"
                ),
                "nps_detractors": (
                    "CASE WHEN s.kind = 'nps' AND s.score <= 6 THEN 1 ELSE 0 END"
                ),
            },
        ),
        (
            # As culture/satisfaction/recovery_selectors.py: of the tasks opened on
            # the day, those settled (done, or past their due time) and those
            # recorded within KEHU_RECOVERY_HOURS of opening.
            "satisfaction_recoverytask AS r",
            "r.created_at",
            "r.team_id",
            "r.customer_id",
            "0",
            "TRUE",
            {
                "recoveries_settled": (
                    "CASE WHEN r.status = 'done' OR r.due_at <= %(now)s "
                    "THEN 1 ELSE 0 END"
                ),
                "recoveries_24h": (
                    "CASE WHEN r.status = 'done' AND r.closed_at <= r.created_at "
                    "+ %(recovery_hours)s * interval '1 hour' THEN 1 ELSE 0 END"
                ),
            },
        ),
        (
            "service_ticket AS t",
            "t.resolution_due_at",
            "t.team_id",
            "t.customer_id",
            "0",
            "t.merged_into_id IS NULL",
            {
                "sla_met": f"CASE WHEN {_RESOLVED} AND NOT {_BREACHED} THEN 1 ELSE 0 END",
                "sla_breached": f"CASE WHEN {_BREACHED} THEN 1 ELSE 0 END",
                "sla_defects": (
                    "t.first_response_breached::int + t.resolution_breached::int"
                ),
            },
        ),
        (
            "service_ticket AS t",
            "t.resolved_at",
            "t.team_id",
            "t.customer_id",
            "0",
            "t.merged_into_id IS NULL",
            {
                "resolved": "1",
                "reopened": f"CASE WHEN {_REOPEN_7} THEN 1 ELSE 0 END",
                "first_contact": (
                    f"CASE WHEN NOT {_REOPEN.format(extra='')} AND {_REPLIES} <= 1 "
                    "THEN 1 ELSE 0 END"
                ),
            },
        ),
        (
            "service_ticket AS t JOIN service_asset AS a ON a.id = t.asset_id",
            "t.created_at",
            "t.team_id",
            "t.customer_id",
            "0",
            "t.merged_into_id IS NULL AND t.ticket_type = 'repair' "
            "AND a.warranty_until >= (t.created_at AT TIME ZONE %(tz)s)::date",
            {"warranty_repairs": "1"},
        ),
        (
            "service_workorder AS w JOIN service_ticket AS t ON t.id = w.ticket_id",
            "w.due_at",
            "t.team_id",
            "t.customer_id",
            "w.department_id",
            "w.status <> 'rejected'",
            {
                "wo_on_time": (
                    "CASE WHEN w.status = 'done' AND w.completed_at <= w.due_at "
                    "THEN 1 ELSE 0 END"
                ),
                "wo_late": (
                    "CASE WHEN w.status = 'done' AND w.completed_at > w.due_at "
                    "THEN 1 ELSE 0 END"
                ),
                "wo_overdue": (
                    "CASE WHEN w.status IN ('open', 'in_progress') "
                    "AND w.due_at < %(now)s THEN 1 ELSE 0 END"
                ),
            },
        ),
        (
            "service_workorder AS w JOIN service_ticket AS t ON t.id = w.ticket_id",
            "w.completed_at",
            "t.team_id",
            "t.customer_id",
            "w.department_id",
            "w.status = 'done' AND w.rating IS NOT NULL",
            {"wo_rated": "1", "wo_rating_sum": "w.rating"},
        ),
        (
            "customers_contactlog AS k JOIN customers_customer AS kc "
            "ON kc.id = k.customer_id",
            "k.occurred_at",
            "kc.team_id",
            "k.customer_id",
            "0",
            "kc.tier = 'A'",
            {"ka_contacts": "1", "ka_contacts_viewed": viewed},
        ),
    ]


def _branch_sql(branch: tuple, *, incremental: bool) -> str:
    table, col, team, customer, department, where, metrics = branch
    if incremental:
        join = f"JOIN days AS dd ON {col} >= dd.lo AND {col} < dd.hi"
        day = "dd.day"
    else:
        join = ""
        day = f"({col} AT TIME ZONE %(tz)s)::date"
    values = ", ".join(f"{metrics.get(m, '0')} AS {m}" for m in FACT_METRICS)
    return (
        f"SELECT {day} AS day, {team} AS team_id, {customer} AS customer_id, "
        f"{department} AS department_id, {values} FROM {table} {join} "
        f"WHERE {col} IS NOT NULL AND {where}"
    )


def _keyed(facts: str, metrics: tuple[str, ...], derived: dict[str, str]) -> str:
    """Each fact with its customer's region, once for segment 0 and once per segment
    the customer is a member of."""
    channel = ", ".join(_lit(k) for k in CHANNEL_KINDS)
    values = ", ".join(f"f.{m}" for m in metrics if m not in derived)
    extra = "".join(
        f", CASE WHEN c.kind IN ({channel}) THEN f.{base} ELSE 0 END AS {name}"
        for name, base in derived.items()
    )
    return (
        f"keyed AS (SELECT f.day, f.team_id, {region_sql('c.province')} AS region, "
        f"seg.segment_id, f.department_id, {values}{extra} "
        f"FROM ({facts}) AS f JOIN customers_customer AS c ON c.id = f.customer_id "
        "CROSS JOIN LATERAL (SELECT 0 UNION ALL SELECT m.segment_id "
        "FROM segments_segmentmember AS m WHERE m.customer_id = f.customer_id) "
        "AS seg(segment_id))"
    )


def daily_sql(*, incremental: bool) -> str:
    days = (
        "WITH days AS (SELECT d AS day, (d::timestamp AT TIME ZONE %(tz)s) AS lo, "
        "((d + 1)::timestamp AT TIME ZONE %(tz)s) AS hi "
        "FROM unnest(%(days)s::date[]) AS d), "
        if incremental
        else "WITH "
    )
    facts = " UNION ALL ".join(
        _branch_sql(b, incremental=incremental) for b in _branches()
    )
    ordered = [m for m in METRICS if m not in DEALER_METRICS] + list(DEALER_METRICS)
    keyed = _keyed(facts, tuple(FACT_METRICS), DEALER_METRICS)
    sums = ", ".join(f"sum({m})" for m in ordered)
    updates = ", ".join(f"{m} = EXCLUDED.{m}" for m in (*ordered, "refreshed_at"))
    return (
        f"{days}{keyed} "
        "INSERT INTO scorecard_scorecarddaily (day, team_id, region, segment_id, "
        f"department_id, {', '.join(ordered)}, refreshed_at) "
        "SELECT day, team_id, coalesce(region, %(all)s), segment_id, department_id, "
        f"{sums}, %(stamp)s FROM keyed "
        "GROUP BY GROUPING SETS ((day, team_id, region, segment_id, department_id), "
        "(day, segment_id, department_id)) "
        "ON CONFLICT (day, team_id, region, segment_id, department_id) "
        f"DO UPDATE SET {updates}"
    )


# --- today's snapshot -----------------------------------------------------------------


def snapshot_sql() -> str:
    def row(**values: str) -> str:
        return ", ".join(f"{values.get(m, '0')} AS {m}" for m in SNAPSHOT_METRICS)

    contacted = f"c0.last_contacted_at >= %(now)s - interval '{CONTACT_DAYS} days'"
    profiled = (
        "EXISTS (SELECT 1 FROM customers_customerprofile AS p "
        "WHERE p.customer_id = c0.id AND p.preferred_channel <> '' AND "
        "(p.interests <> '' OR p.family_notes <> '' OR p.special_needs <> '' "
        "OR p.notes <> ''))"
    )
    customers = (
        "SELECT c0.id AS customer_id, c0.team_id, "
        + row(
            customers="1",
            owned="(c0.owner_id IS NOT NULL)::int",
            dormant="(c0.stage = 'dormant')::int",
            ab_customers="(c0.tier IN ('A', 'B'))::int",
            ab_contacted=f"(c0.tier IN ('A', 'B') AND coalesce({contacted}, false))::int",
            a_customers="(c0.tier = 'A')::int",
            a_contacted=f"(c0.tier = 'A' AND coalesce({contacted}, false))::int",
            a_profiled=f"(c0.tier = 'A' AND {profiled})::int",
        )
        + " FROM customers_customer AS c0 "
        "WHERE c0.merged_into_id IS NULL AND c0.is_verified"
    )
    recoveries = (
        "SELECT r.customer_id, r.team_id, "
        + row(recoveries_open="1", recoveries_overdue="(r.due_at < %(now)s)::int")
        + " FROM satisfaction_recoverytask AS r WHERE r.status = 'open'"
    )
    assets = (
        "SELECT a.customer_id, ac.team_id, "
        + row(units_in_warranty="1")
        + " FROM service_asset AS a JOIN customers_customer AS ac "
        "ON ac.id = a.customer_id WHERE a.warranty_until >= %(today)s"
    )
    facts = f"{customers} UNION ALL {recoveries} UNION ALL {assets}"
    keyed = (
        _keyed(facts, SNAPSHOT_METRICS, {})
        .replace("SELECT f.day, ", "SELECT %(today)s::date AS day, ")
        .replace(", f.department_id", "")
    )
    sums = ", ".join(f"sum({m})" for m in SNAPSHOT_METRICS)
    updates = ", ".join(
        f"{m} = EXCLUDED.{m}" for m in (*SNAPSHOT_METRICS, "refreshed_at")
    )
    return (
        f"WITH {keyed} INSERT INTO scorecard_scorecardsnapshot (day, team_id, region, "
        f"segment_id, {', '.join(SNAPSHOT_METRICS)}, refreshed_at) "
        f"SELECT day, team_id, region, segment_id, {sums}, %(stamp)s FROM keyed "
        "GROUP BY day, team_id, region, segment_id "
        "ON CONFLICT (day, team_id, region, segment_id) DO UPDATE SET " + updates
    )


def _snapshot(cursor: Any, params: dict[str, Any]) -> None:
    cursor.execute(snapshot_sql(), params)
    cursor.execute(
        "DELETE FROM scorecard_scorecardsnapshot WHERE day = %(today)s "
        "AND refreshed_at < %(stamp)s",
        params,
    )


# --- touched days ---------------------------------------------------------------------


def _local(column: str) -> str:
    return f"({column} AT TIME ZONE %(tz)s)::date"


def touched_days_sql() -> str:
    ev = {source: _table(label) for source, label in SOURCES.items()}
    membership = _table("segments.SegmentMembershipEvent")

    def versions(source: str, *columns: str) -> str:
        table = ev[source]
        changed = f"SELECT pgh_obj_id FROM {table} WHERE pgh_id > %(m_{source})s"
        return " UNION ".join(
            f"SELECT {_local('e.' + c)} AS day FROM {table} AS e "
            f"WHERE e.pgh_obj_id IN ({changed})"
            for c in columns
        )

    customers = ev["customers"]
    moved = (
        "moved AS (SELECT DISTINCT pgh_obj_id AS id FROM ("
        "SELECT e.pgh_id, e.pgh_obj_id, e.pgh_label, "
        "ROW(e.team_id, e.province, e.tier, e.kind) IS DISTINCT FROM "
        "lag(ROW(e.team_id, e.province, e.tier, e.kind)) "
        "OVER (PARTITION BY e.pgh_obj_id ORDER BY e.pgh_id) AS changed "
        f"FROM {customers} AS e WHERE e.pgh_obj_id IN "
        f"(SELECT pgh_obj_id FROM {customers} WHERE pgh_id > %(m_customers)s)"
        ") AS h WHERE h.pgh_id > %(m_customers)s "
        "AND (h.changed OR h.pgh_label <> 'update') "
        f"UNION SELECT customer_id FROM {membership} WHERE id > %(m_membership)s)"
    )
    of_moved = "IN (SELECT id FROM moved)"
    parts = [
        # Separate selects, each through an index (an OR would read every survey).
        f"SELECT {_local('s.sent_at')} FROM satisfaction_survey AS s "
        f"WHERE s.customer_id {of_moved}",
        f"SELECT {_local('s.answered_at')} FROM satisfaction_survey AS s "
        f"WHERE s.customer_id {of_moved}",
        f"SELECT {_local('s.sent_at')} FROM satisfaction_survey AS s "
        "WHERE s.id > %(m_surveys)s",
        f"SELECT {_local('s.answered_at')} FROM satisfaction_survey AS s "
        "WHERE s.id > %(m_surveys)s",
        f"SELECT {_local('r.created_at')} FROM satisfaction_recoverytask AS r "
        f"WHERE r.customer_id {of_moved}",
        f"SELECT {_local('t.resolution_due_at')} FROM service_ticket AS t "
        f"WHERE t.customer_id {of_moved}",
        f"SELECT {_local('t.resolved_at')} FROM service_ticket AS t "
        f"WHERE t.customer_id {of_moved}",
        f"SELECT {_local('t.created_at')} FROM service_ticket AS t "
        f"WHERE t.customer_id {of_moved}",
        f"SELECT {_local('w.due_at')} FROM service_workorder AS w "
        f"JOIN service_ticket AS t ON t.id = w.ticket_id WHERE t.customer_id {of_moved}",
        f"SELECT {_local('w.completed_at')} FROM service_workorder AS w "
        f"JOIN service_ticket AS t ON t.id = w.ticket_id WHERE t.customer_id {of_moved}",
        f"SELECT {_local('k.occurred_at')} FROM customers_contactlog AS k "
        f"WHERE k.customer_id {of_moved}",
        versions("tickets", "resolution_due_at", "resolved_at", "created_at"),
        versions("work_orders", "due_at", "completed_at"),
        versions("recoveries", "created_at"),
        versions("contacts", "occurred_at"),
        # A work order's ticket moving team moves the work order's days.
        f"SELECT {_local('w.due_at')} FROM service_workorder AS w WHERE w.ticket_id IN "
        f"(SELECT pgh_obj_id FROM {ev['tickets']} WHERE pgh_id > %(m_tickets)s)",
        f"SELECT {_local('w.completed_at')} FROM service_workorder AS w "
        "WHERE w.ticket_id IN "
        f"(SELECT pgh_obj_id FROM {ev['tickets']} WHERE pgh_id > %(m_tickets)s)",
        "SELECT s::date FROM generate_series(%(since)s::date, %(today)s::date, "
        "interval '1 day') AS s",
    ]
    union = " UNION ".join(f"({p})" for p in parts)
    return (
        f"WITH {moved} SELECT day FROM ({union}) AS u(day) "
        "WHERE day IS NOT NULL ORDER BY day"
    )


def _marks(cursor: Any, stamp: datetime) -> dict[str, int]:
    """Per source, the newest id older than LAG (younger ones are read again)."""
    marks = {}
    tables = {
        source: (_table(label), "pgh_id", "pgh_created_at")
        for source, label in SOURCES.items()
    }
    tables["membership"] = (_table("segments.SegmentMembershipEvent"), "id", "at")
    tables["surveys"] = ("satisfaction_survey", "id", "created_at")
    for source, (table, key, at) in tables.items():
        cursor.execute(
            f"SELECT coalesce(max({key}), 0) FROM {table} WHERE {at} < %s",  # noqa: S608  # nosec B608 # table and column names from this module and the models' _meta, values bound
            [stamp - LAG],
        )
        marks[source] = cursor.fetchone()[0]
    return marks


MARKS = (*SOURCES, "membership", "surveys")


def _today(now: datetime) -> date:
    return timezone.localtime(now).date()


def _params(now: datetime, stamp: datetime) -> dict[str, Any]:
    return {
        "tz": settings.TIME_ZONE,
        "now": now,
        "stamp": stamp,
        "today": _today(now),
        "all": ALL,
        "recovery_hours": getattr(settings, "KEHU_RECOVERY_HOURS", 24),
    }


def _states() -> dict[str, ScorecardState]:
    states = {s.name: s for s in ScorecardState.objects.filter(name__in=TABLES)}
    for name in TABLES:
        if name not in states:
            states[name], _ = ScorecardState.objects.get_or_create(name=name)
    return states


def refresh(*, now: datetime | None = None) -> dict[str, Any]:
    """Bring both tables up to date, recomputing only the touched days."""
    started = time.monotonic()
    stamp = timezone.now()
    now = now or stamp
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_ID])
        cursor.execute(NO_JIT)
        states = _states()
        daily = states[DAILY]
        if daily.last_updated_at is None:
            return rebuild(now=now, locked=True)
        params = _params(now, stamp)
        params["since"] = timezone.localtime(daily.last_updated_at).date() - timedelta(
            days=WINDOW_DAYS
        )
        for source in MARKS:
            params[f"m_{source}"] = int(daily.marks.get(source, 0))
        new_marks = _marks(cursor, stamp)
        cursor.execute(touched_days_sql(), params)
        days = [row[0] for row in cursor.fetchall()]
        params["days"] = days
        cursor.execute(daily_sql(incremental=True), params)
        cursor.execute(
            "DELETE FROM scorecard_scorecarddaily WHERE day = ANY(%(days)s::date[]) "
            "AND refreshed_at < %(stamp)s",
            params,
        )
        _snapshot(cursor, params)
        elapsed = int((time.monotonic() - started) * 1000)
        _save(states, stamp=stamp, marks=new_marks, days=len(days), ms=elapsed)
    return {"days": len(days), "ms": elapsed}


def rebuild(*, now: datetime | None = None, locked: bool = False) -> dict[str, Any]:
    """Empty the daily table and compute it from all history; take today's snapshot."""
    started = time.monotonic()
    stamp = timezone.now()
    now = now or stamp
    with transaction.atomic(), connection.cursor() as cursor:
        if not locked:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_ID])
        cursor.execute(NO_JIT)
        states = _states()
        params = _params(now, stamp)
        new_marks = _marks(cursor, stamp)
        cursor.execute("TRUNCATE scorecard_scorecarddaily")
        cursor.execute(daily_sql(incremental=False), params)
        _snapshot(cursor, params)
        cursor.execute("ANALYZE scorecard_scorecarddaily")
        cursor.execute("SELECT count(DISTINCT day) FROM scorecard_scorecarddaily")
        days = cursor.fetchone()[0]
        elapsed = int((time.monotonic() - started) * 1000)
        _save(states, stamp=stamp, marks=new_marks, days=days, ms=elapsed, rebuilt=True)
    return {"days": days, "ms": elapsed}


def _save(
    states: dict[str, ScorecardState],
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
    ScorecardState.objects.bulk_update(
        states.values(),
        [
            "last_updated_at",
            "duration_ms",
            "days_refreshed",
            "marks",
            "last_rebuilt_at",
        ],
    )


# --- the scheduled action -------------------------------------------------------------


def interval() -> timedelta:
    return timedelta(minutes=getattr(settings, "KEHU_ROLLUP_MINUTES", 10))


def schedule_next(*, now: datetime | None = None) -> Any:
    now = now or timezone.now()
    step = int(interval().total_seconds())
    due = datetime.fromtimestamp(
        (int(now.timestamp()) // step + 1) * step, tz=timezone.get_current_timezone()
    )
    return scheduler.action_schedule(
        kind=REFRESH_KIND,
        target_id=0,
        due_at=due,
        key=f"scorecard:rollups:{int(due.timestamp())}",
    )


def refresh_handler(action: Any) -> None:
    refresh()
    schedule_next()


def freshness() -> dict[str, datetime | None]:
    return dict(
        ScorecardState.objects.filter(name__in=TABLES).values_list(
            "name", "last_updated_at"
        )
    )
