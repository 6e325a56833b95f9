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
   them, batch by batch: the bench must not put tasks on a broker that a development
   worker of another database could consume;
2. delivery: each sweep batch cut into messages of DELIVERY_CHUNK ids as
   crm.scheduler.services._publish cuts it, and for each message what the Celery task
   `action_deliver_many_task` does with it: crm.scheduler.services.actions_deliver
   (one statement claims the chunk, one loads it, the kind's batch handler --
   service.services.sla_escalate_many -- escalates it, one UPDATE marks it done).
   After the sweep, the messages go to as many processes as the deployed Celery
   worker runs (crm.launcher.WORKER_PROCESSES, `-c 2`), each with its own database
   connection, each taking the next message when done with one, as Celery's prefork
   pool does; the broker hop is not in the figure, nor is beat's pacing (one sweep
   per KEHU_SWEEP_SECONDS and its follow-ups; bench/sweep_burst.py measures that).
   With KEHU_SWEEP_WORKERS=1 they run one after the other in this process (the
   method of the figures before session 16).
It returns both times, the statements of each part (and per action), the number of
actions, of delivery messages and of notifications they created, and the CPU time of
the delivering processes.

teardown (not timed) puts everything back as seed_scale left it: the actions, their
notifications and the audit rows go, the tickets' breach flags and escalation levels
are restored. A run that died half-way is cleaned up by the next setup.

KEHU_SWEEP_COUNT=N in the environment sweeps N actions whatever the size. The small
data has only about 170 open tickets with a running clock; to sweep 10,000 there, first
reopen closed ones in a bench database of your own (never the shared kehu_bench):

    DJANGO_SETTINGS_MODULE=crm.settings.bench BENCH_DATABASE_URL=postgres://.../mine \
    python -m bench.sweep reopen 10000
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from django.db import connection, transaction

KIND = "service.sla_breach"
COUNT = {"full": 10_000, "small": 100}  # 1 % of the open tickets' scale at small
BACKUP = "bench_sweep_backup"


def count_for(fixtures: Any) -> int:
    override = os.environ.get("KEHU_SWEEP_COUNT", "")
    if override:
        return int(override)
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
    _warm_process()


class _Counter:
    """An execute_wrapper that counts statements (beside the runner's own QueryStats)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self, execute: Any, sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def workers() -> int:
    """How many processes deliver: KEHU_SWEEP_WORKERS, else the deployed worker's."""
    from crm.launcher import WORKER_PROCESSES

    return max(1, int(os.environ.get("KEHU_SWEEP_WORKERS") or WORKER_PROCESSES))


_pool: ProcessPoolExecutor | None = None


def _worker_start(database: str) -> None:
    # A fresh interpreter (spawn): Django set up as in the runner, from the same
    # environment, on the runner's database (a test's is not the settings' name).
    import django

    django.setup()
    connection.settings_dict["NAME"] = database


def _warm_process() -> None:
    """What a worker that has run for a while has done already: connected, and loaded
    the URLconf (the handler's first `reverse()` imports every app's views, ~0.5 s)."""
    from django.urls import reverse

    connection.ensure_connection()
    reverse("service:ticket_detail", args=["0"])


def _warm(seconds: float) -> int:
    _warm_process()
    time.sleep(seconds)  # so that each warm-up call lands on its own process
    return os.getpid()


def _deliver_message(ids: list[int]) -> tuple[int, int, float]:
    """One delivery message, as `action_deliver_many_task` runs it: how many actions
    it delivered, its statements and its CPU seconds."""
    from crm.scheduler import services as scheduler

    counter = _Counter()
    cpu = time.process_time()
    with connection.execute_wrapper(counter):
        delivered = len(scheduler.actions_deliver(action_ids=ids))
    return delivered, counter.count, time.process_time() - cpu


def _workers_pool(count: int) -> ProcessPoolExecutor:
    """The delivering processes, started and connected before the timed part."""
    global _pool  # noqa: PLW0603 - one pool for every repetition of the run
    if _pool is None:
        _pool = ProcessPoolExecutor(
            max_workers=count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(connection.settings_dict["NAME"],),
        )
        atexit.register(_pool.shutdown)
        pids = set(_pool.map(_warm, [0.5] * count))
        if len(pids) != count:
            raise RuntimeError(f"{len(pids)} delivering processes started, not {count}")
    return _pool


def close_workers() -> None:
    """Stop the delivering processes (the run's end does it too)."""
    global _pool  # noqa: PLW0603
    if _pool is not None:
        _pool.shutdown()
        atexit.unregister(_pool.shutdown)
        _pool = None


def run(fixtures: Any) -> dict[str, Any]:
    from crm.notifications.models import Notification
    from crm.scheduler import services as scheduler

    count = workers()
    pool = _workers_pool(count) if count > 1 else None
    batches: list[list[int]] = []

    def collect(ids: list[int], **_: Any) -> None:
        batches.append(list(ids))

    publish = scheduler._publish  # noqa: SLF001 - the broker hop is replaced, see above
    scheduler._publish = collect  # noqa: SLF001
    claim_statements = _Counter()
    try:
        start = time.perf_counter()
        with connection.execute_wrapper(claim_statements):
            while scheduler.actions_sweep():
                pass
        swept = time.perf_counter()
        # The messages _publish would have sent: each batch cut into chunks. They are
        # delivered after the sweep, not during it: in the worker the sweep takes one
        # of the processes while it runs.
        messages = [
            batch[i : i + scheduler.DELIVERY_CHUNK]
            for batch in batches
            for i in range(0, len(batch), scheduler.DELIVERY_CHUNK)
        ]
        if pool is None:
            results = [_deliver_message(message) for message in messages]
        else:
            results = list(pool.map(_deliver_message, messages))
        done = time.perf_counter()
    finally:
        scheduler._publish = publish  # noqa: SLF001
    actions = sum(len(batch) for batch in batches)
    delivered = sum(result[0] for result in results)
    deliver_statements = sum(result[1] for result in results)
    notified = Notification.objects.filter(idempotency_key__contains=":breach:").count()
    return {
        "workers": count,
        "actions": actions,
        "delivered": delivered,
        "notifications": notified,
        "sweep_batches": len(batches),
        "chunks": len(messages),
        # What the runner reports as this repetition's time (the count above is not).
        "elapsed_ms": round((done - start) * 1000, 1),
        "sweep_ms": round((swept - start) * 1000, 1),
        "deliver_ms": round((done - swept) * 1000, 1),
        "deliver_cpu_ms": round(sum(result[2] for result in results) * 1000, 1),
        "sweep_queries": claim_statements.count,
        "deliver_queries": deliver_statements,
        "queries_per_action": (
            round((claim_statements.count + deliver_statements) / actions, 2)
            if actions
            else 0.0
        ),
        "rps": round(actions / (done - start), 1) if actions else 0.0,
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


def reopen(count: int) -> int:
    """Make at least `count` tickets open with a running resolution clock, by resuming
    paused ones and reopening closed and resolved ones (most recently created first;
    the small data's 10,000 tickets then all run), for KEHU_SWEEP_COUNT at
    small size. Changes the data for good: for a bench database of your own only.
    Returns how many tickets it reopened."""
    from django.conf import settings

    if connection.settings_dict["NAME"] == settings.BENCH_DATABASE_NAME:
        raise SystemExit("refusing to reopen tickets in the shared bench database")
    with transaction.atomic(), connection.cursor() as cursor:
        # Bench data, not a business change: no audit rows.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "SELECT count(*) FROM service_ticket WHERE status NOT IN "
            "('resolved', 'closed') AND paused_at IS NULL AND sla_policy_id IS NOT NULL "
            "AND (resolution_due_at IS NOT NULL OR (first_responded_at IS NULL "
            "AND first_response_due_at IS NOT NULL))"
        )
        missing = count - cursor.fetchone()[0]
        if missing <= 0:
            return 0
        cursor.execute(
            "UPDATE service_ticket SET status = 'in_progress', resolved_at = NULL, "
            "closed_at = NULL, paused_at = NULL WHERE id IN (SELECT id FROM "
            "service_ticket WHERE (status IN ('resolved', 'closed') "
            "OR paused_at IS NOT NULL) AND sla_policy_id IS NOT NULL "
            "AND resolution_due_at IS NOT NULL "
            "ORDER BY paused_at IS NULL, created_at DESC, id LIMIT %s)",
            [missing],
        )
        reopened = cursor.rowcount
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE service_ticket")
    return reopened


if __name__ == "__main__":
    if sys.argv[1:2] != ["reopen"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.sweep reopen N")
    import django

    django.setup()
    sys.stdout.write(f"reopened {reopen(int(sys.argv[2]))} tickets\n")
