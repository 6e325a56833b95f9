"""`service.escalation_sweep`: 10,000 SLA breaches fall due at once; how long until every
one is claimed and escalated?

setup (not timed) writes one pending `service.sla_breach` ScheduledAction, due now, for
each of the N open, running tickets whose next deadline comes first, keyed exactly as
service.services._schedule_clocks keys them (`ticket:<id>:<metric>:breach:<due epoch>`,
the metric being the clock that runs first), so the handler finds the clock still
running and really escalates: it flags the ticket, raises its escalation level and
notifies the team lead and the assignee (in-app and e-mail; the bench mails to the
dummy backend).

run (timed) is what the worker side does, in this one process:
1. the sweep: crm.scheduler.services.actions_sweep, in its batches of 500, until it
   claims nothing more. Publishing the claimed ids to Celery is replaced by collecting
   them: the bench must not put tasks on a broker that a development worker of
   another database could consume;
2. delivery: crm.scheduler.services.action_deliver for every claimed id, one after
   the other (Celery workers would run them in parallel).
It returns both times, the number of actions and of notifications they created.

teardown (not timed) puts everything back as seed_scale left it: the actions, their
notifications and the audit rows go, the tickets' breach flags and escalation levels
are restored. A run that died half-way is cleaned up by the next setup.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection, transaction

KIND = "service.sla_breach"
COUNT = {"full": 10_000, "small": 100}  # 1 % of the open tickets' scale at small
BACKUP = "bench_sweep_backup"


def count_for(fixtures: Any) -> int:
    return COUNT.get(getattr(fixtures, "size", "full"), COUNT["full"])


def setup(fixtures: Any) -> None:
    teardown(fixtures)  # whatever an interrupted run left
    limit = count_for(fixtures)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {BACKUP} (id bigint PRIMARY KEY, "
            "first_response_breached boolean, resolution_breached boolean, "
            "escalation_level smallint, metric text, due timestamptz)"
        )
        # The open tickets with a running clock, whichever breaches first; the clock
        # is the first response while unanswered, else the resolution (as the queues).
        cursor.execute(
            f"INSERT INTO {BACKUP} SELECT t.id, t.first_response_breached, "  # noqa: S608
            "t.resolution_breached, t.escalation_level, c.metric, c.due "
            "FROM service_ticket AS t CROSS JOIN LATERAL (SELECT "
            "CASE WHEN t.first_responded_at IS NULL "
            "AND t.first_response_due_at IS NOT NULL THEN 'first_response' "
            "ELSE 'resolution' END AS metric, "
            "CASE WHEN t.first_responded_at IS NULL "
            "AND t.first_response_due_at IS NOT NULL THEN t.first_response_due_at "
            "ELSE t.resolution_due_at END AS due) AS c "
            "WHERE t.status NOT IN ('resolved', 'closed') AND t.paused_at IS NULL "
            "AND t.sla_policy_id IS NOT NULL AND c.due IS NOT NULL "
            "ORDER BY c.due, t.id LIMIT %s",
            [limit],
        )
        cursor.execute(
            "INSERT INTO scheduler_scheduledaction (kind, target_id, due_at, state, "  # noqa: S608
            "attempts, idempotency_key, last_error, created_at) "
            "SELECT %s, b.id, now() - interval '1 second', 'pending', 0, "
            "'ticket:' || b.id || ':' || b.metric || ':breach:' "
            "|| floor(extract(epoch FROM b.due))::bigint, '', now() "
            f"FROM {BACKUP} AS b",
            [KIND],
        )
        created = cursor.rowcount
    if created < limit:
        raise RuntimeError(
            f"only {created} open tickets with a running SLA clock (wanted {limit})"
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scheduler_scheduledaction")


def run(fixtures: Any) -> dict[str, Any]:
    from crm.notifications.models import Notification
    from crm.scheduler import services as scheduler

    claimed: list[int] = []
    publish = scheduler._publish  # noqa: SLF001 - the broker hop is replaced, see above
    scheduler._publish = claimed.extend  # noqa: SLF001
    try:
        start = time.perf_counter()
        batches = 0
        while scheduler.actions_sweep():
            batches += 1
        swept = time.perf_counter()
        delivered = sum(
            1 for action_id in claimed if scheduler.action_deliver(action_id=action_id)
        )
        done = time.perf_counter()
    finally:
        scheduler._publish = publish  # noqa: SLF001
    notified = Notification.objects.filter(idempotency_key__contains=":breach:").count()
    return {
        "actions": len(claimed),
        "delivered": delivered,
        "notifications": notified,
        "sweep_batches": batches,
        # What the runner reports as this repetition's time (the count above is not).
        "elapsed_ms": round((done - start) * 1000, 1),
        "sweep_ms": round((swept - start) * 1000, 1),
        "deliver_ms": round((done - swept) * 1000, 1),
        "rps": round(len(claimed) / (done - start), 1) if claimed else 0.0,
    }


def teardown(fixtures: Any) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [BACKUP])
        if cursor.fetchone()[0] is None:
            return
        # No audit rows for putting the bench data back.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "DELETE FROM notifications_notification "
            "WHERE idempotency_key LIKE 'ticket:%:breach:%'"
        )
        cursor.execute(
            f"DELETE FROM scheduler_scheduledaction WHERE kind = %s AND target_id IN "  # noqa: S608
            f"(SELECT id FROM {BACKUP})",
            [KIND],
        )
        cursor.execute(
            f"DELETE FROM service_ticketevent WHERE pgh_obj_id IN (SELECT id FROM {BACKUP})"  # noqa: S608
        )
        cursor.execute(
            "UPDATE service_ticket AS t SET "  # noqa: S608
            "first_response_breached = b.first_response_breached, "
            "resolution_breached = b.resolution_breached, "
            f"escalation_level = b.escalation_level FROM {BACKUP} AS b WHERE t.id = b.id"
        )
        cursor.execute(f"DROP TABLE {BACKUP}")
