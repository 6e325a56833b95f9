"""The per-segment dashboard's rollup (value_segmentday): one row per segment and day,
computed in SQL from the membership history (SegmentMembershipEvent), payments,
contact logs, complaint tickets and the customers' stage history (pghistory).

Membership on a day: a customer is a member on day D when their last membership event
at or before the end of D is "entered". Size is the running sum of entered − left.
Each figure of a day counts only what members of that day did that day.

Kept by the scheduler: every value tick recomputes the last RECENT_DAYS days of each
segment refreshed since its snapshot (so within minutes of each refresh), the daily
job the last DAILY_DAYS days of every segment, and `value_rebuild --segments` the whole
HORIZON. A recomputation replaces the rows of its days, so any of them equals the
rebuild for those days (tests/value/test_segment_dashboard.py).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from culture.segments.models import Segment
from culture.value.models import SegmentDay, SegmentSnapshotState

HORIZON = 180  # days a dashboard can show
RECENT_DAYS = 2
DAILY_DAYS = 35
CHURN_STAGES = ("dormant", "lost")

_SQL = """
WITH ev AS (
    SELECT customer_id, action, at, id,
           (at AT TIME ZONE %(tz)s)::date AS d
    FROM segments_segmentmembershipevent WHERE segment_id = %(seg)s
),
spans AS (
    SELECT customer_id, since, until FROM (
        SELECT customer_id, action, d AS since,
               LEAD(d) OVER (PARTITION BY customer_id ORDER BY at, id) AS until
        FROM ev
    ) s WHERE action = 'entered' AND (until IS NULL OR until > since)
    UNION ALL
    -- Members with no history at all (rows older than the history): since joining.
    SELECT m.customer_id, (m.since AT TIME ZONE %(tz)s)::date, NULL
    FROM segments_segmentmember m
    WHERE m.segment_id = %(seg)s
      AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.customer_id = m.customer_id)
),
days AS (
    SELECT generate_series(%(start)s::date, %(end)s::date, '1 day')::date AS d
),
moves AS (
    SELECT d, COUNT(*) FILTER (WHERE action = 'entered') AS entered,
              COUNT(*) FILTER (WHERE action = 'left') AS left_
    FROM ev WHERE d <= %(end)s GROUP BY d
),
starts AS (SELECT since AS d, COUNT(*) AS n FROM spans GROUP BY 1),
ends AS (SELECT until AS d, COUNT(*) AS n FROM spans WHERE until IS NOT NULL GROUP BY 1),
size AS (
    -- Spans begun by the day minus spans ended by it: over a few hundred grouped
    -- days, not over every member.
    SELECT days.d,
           COALESCE((SELECT SUM(n) FROM starts WHERE starts.d <= days.d), 0)
         - COALESCE((SELECT SUM(n) FROM ends WHERE ends.d <= days.d), 0) AS size
    FROM days
),
revenue AS (
    SELECT p.received_on AS d, SUM(p.amount) AS amount
    FROM spans s JOIN deals_payment p ON p.customer_id = s.customer_id
     AND p.received_on >= s.since AND (s.until IS NULL OR p.received_on < s.until)
    WHERE p.received_on BETWEEN %(start)s AND %(end)s
    GROUP BY 1
),
contacts AS (
    SELECT x.d, COUNT(*) AS n FROM (
        SELECT (c.occurred_at AT TIME ZONE %(tz)s)::date AS d, s.since, s.until
        FROM spans s JOIN customers_contactlog c ON c.customer_id = s.customer_id
        WHERE c.occurred_at >= %(start_at)s AND c.occurred_at < %(end_at)s
    ) x WHERE x.d >= x.since AND (x.until IS NULL OR x.d < x.until) GROUP BY 1
),
complaints AS (
    SELECT x.d, COUNT(*) AS n FROM (
        SELECT (t.created_at AT TIME ZONE %(tz)s)::date AS d, s.since, s.until
        FROM spans s JOIN service_ticket t ON t.customer_id = s.customer_id
        WHERE t.ticket_type = 'complaint'
          AND t.created_at >= %(start_at)s AND t.created_at < %(end_at)s
    ) x WHERE x.d >= x.since AND (x.until IS NULL OR x.d < x.until) GROUP BY 1
),
churn AS (
    SELECT x.d, COUNT(*) AS n FROM (
        SELECT (e.pgh_created_at AT TIME ZONE %(tz)s)::date AS d, e.stage,
               LAG(e.stage) OVER (PARTITION BY e.pgh_obj_id ORDER BY e.pgh_id)
                 AS before,
               s.since, s.until
        FROM spans s JOIN customers_customerevent e ON e.pgh_obj_id = s.customer_id
    ) x
    WHERE x.stage = ANY(%(churn)s) AND x.before IS NOT NULL
      AND NOT x.before = ANY(%(churn)s)
      AND x.d BETWEEN %(start)s AND %(end)s
      AND x.d >= x.since AND (x.until IS NULL OR x.d < x.until)
    GROUP BY 1
)
INSERT INTO value_segmentday (segment_id, day, size, entered, "left", revenue,
                              contacts, complaints, churned)
SELECT %(seg)s, days.d, size.size, COALESCE(moves.entered, 0),
       COALESCE(moves.left_, 0), COALESCE(revenue.amount, 0),
       COALESCE(contacts.n, 0), COALESCE(complaints.n, 0), COALESCE(churn.n, 0)
FROM days
JOIN size ON size.d = days.d
LEFT JOIN moves ON moves.d = days.d
LEFT JOIN revenue ON revenue.d = days.d
LEFT JOIN contacts ON contacts.d = days.d
LEFT JOIN complaints ON complaints.d = days.d
LEFT JOIN churn ON churn.d = days.d
"""


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    zone = timezone.get_current_timezone()
    return (
        datetime.combine(start, datetime.min.time(), zone),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), zone),
    )


def snapshot_compute(*, segment_id: int, days: int, now: datetime | None = None) -> int:
    """Recompute the last `days` days (today included) of one segment."""
    now = now or timezone.now()
    end = timezone.localdate(now)
    start = end - timedelta(days=days - 1)
    start_at, end_at = _bounds(start, end)
    params = {
        "seg": segment_id,
        "tz": settings.TIME_ZONE,
        "start": start,
        "end": end,
        "start_at": start_at,
        "end_at": end_at,
        "churn": list(CHURN_STAGES),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        SegmentDay.objects.filter(
            segment_id=segment_id, day__gte=start, day__lte=end
        ).delete()
        cursor.execute(_SQL, params)
        SegmentDay.objects.filter(
            segment_id=segment_id, day__lt=end - timedelta(days=HORIZON - 1)
        ).delete()
        SegmentSnapshotState.objects.update_or_create(
            segment_id=segment_id, defaults={"computed_at": now}
        )
        return cursor.rowcount


def snapshots_after_refresh(*, now: datetime | None = None) -> int:
    """The last RECENT_DAYS days of every segment refreshed since its snapshot."""
    now = now or timezone.now()
    stale = Segment.objects.filter(
        Q(refreshed_at__isnull=False)
        & (
            Q(snapshot_state__isnull=True)
            | Q(refreshed_at__gt=F("snapshot_state__computed_at"))
        )
    ).values_list("pk", flat=True)
    ids = list(stale)
    for pk in ids:
        snapshot_compute(segment_id=pk, days=RECENT_DAYS, now=now)
    return len(ids)


def snapshots_daily(now: datetime | None = None) -> int:
    """The daily job: the last DAILY_DAYS days of every segment."""
    now = now or timezone.now()
    ids = list(Segment.objects.values_list("pk", flat=True))
    for pk in ids:
        snapshot_compute(segment_id=pk, days=DAILY_DAYS, now=now)
    return len(ids)


def snapshots_rebuild(*, now: datetime | None = None) -> int:
    """Every segment's whole HORIZON."""
    now = now or timezone.now()
    ids = list(Segment.objects.values_list("pk", flat=True))
    for pk in ids:
        snapshot_compute(segment_id=pk, days=HORIZON, now=now)
    return len(ids)
