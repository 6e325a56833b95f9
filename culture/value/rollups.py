"""The monthly revenue rollup (value_customerrevenue): a full rebuild and the
incremental refresh, both in SQL.

The incremental refresh reads the payments' history events (pghistory, one per insert,
update and delete of a payment) after its watermark, finds every (customer, month) pair
they touch, in both views and before and after an update, and recomputes exactly those
pairs from the payments table. Recomputing a pair is idempotent, so each run also
re-reads the last OVERLAP events: a payment whose transaction committed after a later
one (event ids are taken at insert, not at commit) is still counted. The daily job's
full rebuild is the backstop. tests/value/test_rollups.py checks incremental == rebuild.
"""

from __future__ import annotations

from datetime import datetime

from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from culture.value import pareto_ranks
from culture.value.models import CustomerRevenue, RollupState

REVENUE = "customer_revenue"
OVERLAP = 1_000
# Events read per run at most: a huge import is caught up over several runs.
BATCH = 200_000

_AGGREGATE = """
WITH touched AS ({pairs}),
cust AS (
    SELECT p.customer_id AS cid, date_trunc('month', p.received_on)::date AS m,
           SUM(p.amount) AS amount, COUNT(*) AS payments
    FROM {payment} p {cust_join}
    GROUP BY 1, 2
),
chan AS (
    SELECT p.channel_id AS cid, date_trunc('month', p.received_on)::date AS m,
           SUM(p.amount) AS amount, COUNT(*) AS payments
    FROM {payment} p {chan_join}
    WHERE p.channel_id IS NOT NULL
    GROUP BY 1, 2
)
INSERT INTO {rollup} (month, customer_id, amount, payments, channel_amount,
                      channel_payments)
SELECT COALESCE(cust.m, chan.m), COALESCE(cust.cid, chan.cid),
       COALESCE(cust.amount, 0), COALESCE(cust.payments, 0),
       COALESCE(chan.amount, 0), COALESCE(chan.payments, 0)
FROM cust FULL OUTER JOIN chan ON chan.cid = cust.cid AND chan.m = cust.m
"""


def _tables() -> dict[str, str]:
    payment = apps.get_model("deals", "Payment")
    event = apps.get_model("deals", "PaymentEvent")
    return {
        "payment": payment._meta.db_table,
        "event": event._meta.db_table,
        "rollup": CustomerRevenue._meta.db_table,
    }


def _state() -> RollupState:
    state, _created = RollupState.objects.get_or_create(name=REVENUE)
    return state


def revenue_rebuild(*, now: datetime | None = None) -> int:
    """Recompute the whole rollup from the payments; returns the rows written."""
    t = _tables()
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # The watermark first: events after it are read again by the next refresh,
        # which is harmless (recomputing a pair is idempotent).
        cursor.execute(f"SELECT COALESCE(MAX(pgh_id), 0) FROM {t['event']}")  # noqa: S608  # nosec B608 # table names from the models' _meta, values bound
        watermark = cursor.fetchone()[0]
        cursor.execute(f"DELETE FROM {t['rollup']}")  # noqa: S608  # nosec B608 # table names from the models' _meta, values bound
        sql = _AGGREGATE.format(pairs="SELECT 1", cust_join="", chan_join="", **t)
        cursor.execute(sql)
        rows = cursor.rowcount
        # Fresh statistics: planned on an empty table's, the Pareto query would
        # walk the rollup row by row.
        cursor.execute(f"ANALYZE {t['rollup']}")
        pareto_ranks.rebuild()
        RollupState.objects.update_or_create(
            name=REVENUE,
            defaults={"watermark": watermark, "refreshed_at": now, "rebuilt_at": now},
        )
    return rows


def revenue_refresh(*, now: datetime | None = None) -> int:
    """Bring the rollup up to date from the payment events after the watermark;
    returns the number of (customer, month) pairs recomputed."""
    t = _tables()
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        state = (
            RollupState.objects.select_for_update(no_key=True)
            .filter(name=REVENUE)
            .first()
        )
        if state is None:
            state = _state()
            state = RollupState.objects.select_for_update(no_key=True).get(name=REVENUE)
        low = max(0, state.watermark - OVERLAP)
        cursor.execute(
            f"SELECT COALESCE(MAX(pgh_id), %s) FROM ("  # noqa: S608  # nosec B608 # table names from the models' _meta, values bound
            f" SELECT pgh_id FROM {t['event']} WHERE pgh_id > %s"
            f" ORDER BY pgh_id LIMIT %s) e",
            [state.watermark, low, BATCH],
        )
        high = max(cursor.fetchone()[0], state.watermark)
        # Every pair an event names, and the pair of the event before it for the same
        # payment (an update that moved it to another customer or month).
        pairs_sql = f"""
            WITH ev AS (
                SELECT pgh_id, pgh_obj_id, customer_id, channel_id, received_on
                FROM {t["event"]} WHERE pgh_id > %s AND pgh_id <= %s
            ),
            prev AS (
                SELECT p.customer_id, p.channel_id, p.received_on FROM ev
                JOIN LATERAL (
                    SELECT e2.customer_id, e2.channel_id, e2.received_on
                    FROM {t["event"]} e2
                    WHERE e2.pgh_obj_id = ev.pgh_obj_id AND e2.pgh_id < ev.pgh_id
                    ORDER BY e2.pgh_id DESC LIMIT 1
                ) p ON true
            ),
            rows AS (
                SELECT customer_id, channel_id, received_on FROM ev
                UNION ALL SELECT customer_id, channel_id, received_on FROM prev
            )
            SELECT DISTINCT cid, date_trunc('month', received_on)::date AS m FROM (
                SELECT customer_id AS cid, received_on FROM rows
                UNION ALL
                SELECT channel_id, received_on FROM rows WHERE channel_id IS NOT NULL
            ) x
        """  # noqa: S608
        # Dropped explicitly too: inside an outer transaction (tests, a caller's
        # atomic block) ON COMMIT has not come yet when the next refresh runs.
        cursor.execute("DROP TABLE IF EXISTS value_touched")
        cursor.execute(
            "CREATE TEMP TABLE value_touched ON COMMIT DROP AS " + pairs_sql,
            [low, high],
        )
        cursor.execute("ANALYZE value_touched")
        cursor.execute("SELECT COUNT(*) FROM value_touched")
        touched = cursor.fetchone()[0]
        if touched:
            cursor.execute(
                f"DELETE FROM {t['rollup']} r USING value_touched v"  # noqa: S608  # nosec B608 # table names from the models' _meta, values bound
                " WHERE r.customer_id = v.cid AND r.month = v.m"
            )
            sql = _AGGREGATE.format(
                pairs="SELECT cid, m FROM value_touched",
                cust_join="JOIN touched v ON v.cid = p.customer_id"
                " AND v.m = date_trunc('month', p.received_on)::date",
                chan_join="JOIN touched v ON v.cid = p.channel_id"
                " AND v.m = date_trunc('month', p.received_on)::date",
                **t,
            )
            cursor.execute(sql)
            pareto_ranks.refresh("value_touched")
        # The denominators follow new, reassigned and merged customers every run.
        pareto_ranks.count_scopes()
        cursor.execute("DROP TABLE value_touched")
        RollupState.objects.filter(name=REVENUE).update(
            watermark=high, refreshed_at=now
        )
    return touched


def freshness(name: str = REVENUE) -> datetime | None:
    state = RollupState.objects.filter(name=name).first()
    return state.refreshed_at if state else None
