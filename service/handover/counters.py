"""The live board's counters (BoardCounter): bumped in the same transaction that
changes a case, a station visit or a defect, read by the board in one query.

Keys (one convention for every writer; the board and `rebuild` read the same):

    case:<UnitHandover.State>              cases in that state now
    station:<station id>:<StationVisit.State>   visits in that state now
    station:<station id>:wait_s            seconds waited (queued → started), summed
    station:<station id>:served            visits started (the wait's divisor)
    station:<station id>:service_s         seconds in service (started → finished)
    station:<station id>:done              visits finished
    hour:<YYYYMMDDHH>:arrived              check-ins in that local hour
    hour:<YYYYMMDDHH>:finished             cases that reached an outcome
    defect:severity:<P0|P1|P2>             defects recorded
    defect:category:<level-1 category id>  defects recorded, by trade
    defect:open                            defects not closed, void or force-closed
    fees:cents                             fees collected, in fen (voided lines out)
    rating:sum, rating:count               the quick satisfaction ratings

A counter moves only inside the caller's transaction (`bump` is an upsert that adds),
so a rolled-back change leaves no trace; concurrent bumps of one key queue on its row
for the length of the other transaction, no longer.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import connection


def bump(event_id: int, deltas: Mapping[str, int]) -> None:
    """Add each delta to its key (created at 0 when new); zero deltas are skipped.
    Keys are sorted so two transactions bumping the same keys lock them in one order."""
    changes = sorted((key, int(delta)) for key, delta in deltas.items() if delta)
    if not changes:
        return
    # One statement, not executemany: pghistory's context wrapper (an audited block)
    # breaks executemany's parameters.
    rows = ", ".join(["(%s, %s, %s)"] * len(changes))
    params: list[object] = []
    for key, delta in changes:
        params.extend((event_id, key, delta))
    sql = (
        "INSERT INTO handover_boardcounter (event_id, key, value) "  # noqa: S608
        f"VALUES {rows} ON CONFLICT (event_id, key) "  # placeholders only
        "DO UPDATE SET value = handover_boardcounter.value + EXCLUDED.value"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)  # nosec B608 - every value is a parameter


def read(event_id: int) -> dict[str, int]:
    from service.handover.models import BoardCounter

    return dict(
        BoardCounter.objects.filter(event_id=event_id).values_list("key", "value")
    )


# --- the recount ------------------------------------------------------------------------
#
# What each key counts, read from the rows (so every writer bumps the same thing):
#   case:<state>          every case row of the event (each round is a row)
#   station:<id>:<state>  every visit of the event's cases, by station and state
#   …:served / wait_s     visits with started_at; wait = started_at − queued_at, whole
#                         seconds truncated per visit, never below 0 (0 when never
#                         queued)
#   …:done / service_s    visits in state done (the state's key is the finished count:
#                         one bump, not two); service = finished_at − started_at, whole
#                         seconds per visit (none without started_at)
#   hour:…:arrived        cases not absent, by the local hour of checked_in_at
#   hour:…:finished       cases with an outcome (not open, not absent), by the local
#                         hour of outcome_at
#   defect:severity/category  every defect recorded at the event (event_id), any state
#   defect:open           those in Defect.OPEN_STATES
#   fees:cents            the sum of the event's cases' valid (not voided) FeePayment
#                         amounts, in fen
#   rating:sum/count      cases with a rating

_RECOUNT_SQL = """
WITH c AS (
    SELECT id, state, checked_in_at, outcome_at, rating
    FROM handover_unithandover WHERE event_id = %(event)s
), v AS (
    SELECT v.station_id, v.state, v.queued_at, v.started_at, v.finished_at
    FROM handover_stationvisit v JOIN c ON c.id = v.case_id
), d AS (
    SELECT d.severity, d.state, coalesce(gp.id, p.id, k.id) AS trade
    FROM defects_defect d
    JOIN defects_defectcategory k ON k.id = d.category_id
    LEFT JOIN defects_defectcategory p ON p.id = k.parent_id
    LEFT JOIN defects_defectcategory gp ON gp.id = p.parent_id
    WHERE d.event_id = %(event)s
)
SELECT 'case:' || state, count(*) FROM c GROUP BY state
UNION ALL
SELECT 'station:' || station_id || ':' || state, count(*) FROM v
GROUP BY station_id, state
UNION ALL
SELECT 'station:' || station_id || ':served', count(*) FROM v
WHERE started_at IS NOT NULL GROUP BY station_id
UNION ALL
SELECT 'station:' || station_id || ':wait_s',
       coalesce(sum(greatest(trunc(extract(epoch FROM started_at - queued_at)), 0)), 0)::bigint
FROM v WHERE started_at IS NOT NULL AND queued_at IS NOT NULL GROUP BY station_id
UNION ALL
SELECT 'station:' || station_id || ':service_s',
       coalesce(sum(greatest(trunc(extract(epoch FROM finished_at - started_at)), 0)), 0)::bigint
FROM v WHERE state = 'done' AND started_at IS NOT NULL AND finished_at IS NOT NULL
GROUP BY station_id
UNION ALL
SELECT 'hour:' || to_char(checked_in_at AT TIME ZONE %(tz)s, 'YYYYMMDDHH24')
       || ':arrived', count(*)
FROM c WHERE state <> 'absent' GROUP BY 1
UNION ALL
SELECT 'hour:' || to_char(outcome_at AT TIME ZONE %(tz)s, 'YYYYMMDDHH24')
       || ':finished', count(*)
FROM c WHERE outcome_at IS NOT NULL
  AND state NOT IN ('checked_in', 'in_progress', 'absent')
GROUP BY 1
UNION ALL
SELECT 'defect:severity:' || severity, count(*) FROM d GROUP BY severity
UNION ALL
SELECT 'defect:category:' || trade, count(*) FROM d GROUP BY trade
UNION ALL
SELECT 'defect:open', count(*) FROM d WHERE state = ANY(%(open)s)
UNION ALL
SELECT 'fees:cents', coalesce(sum(round(f.amount * 100)), 0)::bigint
FROM handover_feepayment f JOIN c ON c.id = f.case_id WHERE f.voided_at IS NULL
UNION ALL
SELECT 'rating:sum', coalesce(sum(rating), 0) FROM c WHERE rating IS NOT NULL
UNION ALL
SELECT 'rating:count', count(*) FROM c WHERE rating IS NOT NULL
"""


def recount(event_id: int) -> dict[str, int]:
    """Every key's value counted from the event's rows (zeros left out)."""
    from django.conf import settings

    from service.defects.models import Defect

    with connection.cursor() as cursor:
        cursor.execute(
            _RECOUNT_SQL,
            {
                "event": event_id,
                "tz": settings.TIME_ZONE,
                "open": [str(state) for state in Defect.OPEN_STATES],
            },
        )
        return {key: int(value) for key, value in cursor.fetchall() if value}


def rebuild(event_id: int) -> dict[str, int]:
    """Replace the event's counters by a recount, in one transaction.

    The counter table is locked against bumps first (SHARE ROW EXCLUSIVE waits for the
    transactions that already bumped and holds back new bumps until the commit), so a
    change committed before the lock is in the recount and one committed after it bumps
    on top of the recount: nothing is counted twice or lost."""
    from django.db import transaction

    from service.handover.models import BoardCounter

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "LOCK TABLE handover_boardcounter IN SHARE ROW EXCLUSIVE MODE"
            )
        values = recount(event_id)
        BoardCounter.objects.filter(event_id=event_id).delete()
        BoardCounter.objects.bulk_create(
            BoardCounter(event_id=event_id, key=key, value=value)
            for key, value in sorted(values.items())
        )
    return values


def recount_differs(event_id: int) -> dict[str, tuple[int, int]]:
    """{key: (counter, recount)} for every key whose counter is not its recount
    (a missing key counts as 0); empty when the board is right."""
    stored, counted = read(event_id), recount(event_id)
    return {
        key: (stored.get(key, 0), counted.get(key, 0))
        for key in sorted(stored.keys() | counted.keys())
        if stored.get(key, 0) != counted.get(key, 0)
    }
