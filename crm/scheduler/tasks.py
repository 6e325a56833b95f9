"""Celery adapters for the scheduled-action pipeline: ids in, services do the work."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings

from crm.scheduler import services

logger = logging.getLogger(__name__)

# How many of the oldest messages in the delivery queue the sweep reads for their lease.
# The sweep keeps about SWEEP_BATCH / DELIVERY_CHUNK (10) of its own there.
QUEUE_PEEK = 100


# A sweep that claimed all it was allowed to leaves due rows behind. Beat's next tick
# would take them KEHU_SWEEP_SECONDS later (500 rows per 15 s: 10,000 escalations due at
# once took five minutes to go out, whatever the workers' speed), so such a sweep asks
# for another one this soon: about the time the two worker processes take to deliver
# a sweep's 500. A follow-up that finds the backlog bound reached asks again (the burst
# is not over, the workers are behind); a sweep of beat's that finds it does not. At
# most one follow-up waits at a time (SWEEP_AGAIN_KEY, in the broker's Redis); the
# backlog bound still decides what each sweep claims.
SWEEP_AGAIN_SECONDS = 0.25
SWEEP_AGAIN_KEY = "kehu:scheduler:sweep-again"


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def actions_sweep_task(following: bool = False) -> int:
    backlog = waiting_deliveries()
    claimed = services.actions_sweep(
        broker_backlog=backlog, reclaim_before=reclaim_before()
    )
    limit = services.sweep_limit(backlog)
    if (limit > 0 and len(claimed) >= limit) or (limit <= 0 and following):
        sweep_again()
    return len(claimed)


def sweep_again() -> bool:
    """Publish a follow-up sweep in SWEEP_AGAIN_SECONDS, unless one already waits.
    False when none was published (one waits, or the broker could not be reached:
    beat's next tick sweeps then, as before)."""
    app = actions_sweep_task.app
    try:
        with app.pool.acquire(block=True, timeout=2) as conn:
            with conn.default_channel.conn_or_acquire() as client:
                # Expires when the follow-up is due: the follow-up may then ask again.
                first = client.set(
                    SWEEP_AGAIN_KEY, 1, nx=True, px=int(SWEEP_AGAIN_SECONDS * 1000)
                )
        if not first:
            return False
        # A follow-up lost or doubled by a restart costs nothing: beat sweeps anyway, and
        # two sweeps never claim the same row. 0.25 s, far within R7's 300 s.
        actions_sweep_task.apply_async(  # nosemgrep: kehu-no-broker-delay
            kwargs={"following": True},
            countdown=SWEEP_AGAIN_SECONDS,
            expires=SWEEP_AGAIN_SECONDS + settings.KEHU_SWEEP_SECONDS,
        )
    except Exception:  # noqa: BLE001 - no follow-up: beat's next tick sweeps
        logger.warning("could not ask for another sweep; beat's next one will do")
        return False
    return True


def waiting_deliveries() -> int:
    """Delivery messages (one id or a chunk each) published and not yet taken by a
    worker; 0 when the broker cannot say (an empty Redis queue does not exist at all,
    and a broker outage is no backlog)."""
    app = action_deliver_task.app
    try:
        with app.pool.acquire(block=True, timeout=2) as conn:
            return conn.default_channel.queue_declare(
                queue=app.conf.task_default_queue, passive=True
            ).message_count
    except Exception:  # noqa: BLE001 - unknown backlog: sweep as before
        return 0


def reclaim_before() -> datetime | None:
    """The earliest lease carried by a delivery message still waiting in Redis (kombu
    keeps a list per queue and priority, pushes on the left and pops on the right, so
    the oldest messages are the rightmost); `services.NOTHING_QUEUED` when none waits
    (after Redis restarted empty, or the workers took them all). None when the queue
    cannot be read, or its oldest QUEUE_PEEK messages carry no lease but more wait:
    the sweep then falls back to counting messages."""
    app = action_deliver_task.app
    queue = app.conf.task_default_queue
    try:
        with app.pool.acquire(block=True, timeout=2) as conn:
            channel = conn.default_channel
            keys = [channel._q_for_pri(queue, pri) for pri in channel.priority_steps]
            with channel.conn_or_acquire() as client, client.pipeline() as pipe:
                for key in dict.fromkeys(keys):
                    pipe.llen(key)
                    pipe.lrange(key, -QUEUE_PEEK, -1)
                replies = pipe.execute()
    except Exception:  # noqa: BLE001 - Redis unreadable (or not Redis): count instead
        return None
    leases = [
        lease
        for peeked in replies[1::2]
        for raw in peeked
        if (lease := _lease_of(raw)) is not None
    ]
    if leases:
        return min(leases)
    seen_all = all(length <= QUEUE_PEEK for length in replies[0::2])
    return services.NOTHING_QUEUED if seen_all else None


def _lease_of(raw: bytes | str) -> datetime | None:
    """The lease a queued delivery message carries; None for any other message (another
    task, or a delivery published before messages carried their lease)."""
    try:
        headers = json.loads(raw)["headers"]
        return datetime.fromisoformat(headers[services.LEASE_HEADER])
    except (ValueError, KeyError, TypeError):
        return None


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def action_deliver_task(action_id: int) -> bool:
    return services.action_deliver(action_id=action_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def action_deliver_many_task(action_ids: list[int]) -> int:
    return len(services.actions_deliver(action_ids=action_ids))
