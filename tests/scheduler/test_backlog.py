"""The sweep does not flood a broker whose workers are behind (found by `make chaos`).

With the worker killed every 20 s and slow to boot, each sweep re-published every
`dispatched` row whose lease had run out while its message still waited in Redis: after
three minutes the queue held 19,500 messages for 4,000 rows, and the workers that came
back spent their time on copies. The sweep now keeps at most SWEEP_BATCH rows waiting
(a message carries up to DELIVERY_CHUNK of them) and does not take back an expired
`dispatched` row whose message still waits (test_reclaim.py); these tests call the
service with the queue's length only, the rule when the queue cannot be read: take such
a row back only when the queue is nearly empty.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from crm.scheduler import services, tasks
from crm.scheduler.models import ScheduledAction
from tests.scheduler.conftest import LEASE, NOW

State = ScheduledAction.State


def due(n: int, minutes_ago: int = 1) -> ScheduledAction:
    return services.action_schedule(
        kind="tests.any",
        target_id=n,
        due_at=NOW - timedelta(minutes=minutes_ago, seconds=n),
        key=f"tests.any:{n}",
    )


@pytest.mark.django_db
def test_a_full_broker_queue_gets_nothing_more(clock):
    # A waiting message carries up to a chunk of ids: SWEEP_BATCH rows fill the queue.
    full = services.SWEEP_BATCH // services.DELIVERY_CHUNK
    actions = [due(n) for n in range(services.DELIVERY_CHUNK + 5)]
    assert services.actions_sweep(broker_backlog=full) == []
    assert services.actions_sweep(broker_backlog=full + 7) == []
    assert set(ScheduledAction.objects.values_list("state", flat=True)) == {
        State.PENDING
    }
    # Room for one more message: one chunk of the oldest is claimed.
    claimed = services.actions_sweep(broker_backlog=full - 1)
    oldest_first = [action.pk for action in reversed(actions)]
    assert claimed == oldest_first[: services.DELIVERY_CHUNK]


@pytest.mark.django_db
def test_expired_dispatched_row_still_queued_is_not_published_again(clock):
    action = due(1)
    assert services.actions_sweep() == [action.pk]
    clock.shift(timedelta(seconds=LEASE + 1))

    # Its message waits behind others: publishing it again would only add a copy.
    busy = services.RECLAIM_QUEUED_BELOW
    assert services.actions_sweep(broker_backlog=busy) == []
    action.refresh_from_db()
    assert action.state == State.DISPATCHED

    # The queue is empty (Redis restarted, or the message was lost): take it back.
    assert services.actions_sweep(broker_backlog=0) == [action.pk]
    action.refresh_from_db()
    assert action.state == State.DISPATCHED
    assert action.lease_until == NOW + timedelta(seconds=2 * LEASE + 1)


@pytest.mark.django_db
def test_worker_dead_while_sending_is_taken_back_even_with_a_backlog(clock):
    action = due(1)
    services.actions_sweep()
    # A worker claimed it and died mid-delivery: no message of it is left anywhere.
    ScheduledAction.objects.filter(pk=action.pk).update(state=State.SENDING)
    clock.shift(timedelta(seconds=LEASE + 1))
    assert services.actions_sweep(broker_backlog=services.RECLAIM_QUEUED_BELOW) == [
        action.pk
    ]


def test_waiting_deliveries_counts_the_messages_in_the_real_broker():
    """Against the suite's Redis, on a queue of this test's own."""
    app = tasks.action_deliver_task.app
    queue = f"kehu-test-backlog-{uuid.uuid4().hex}"
    default = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        assert tasks.waiting_deliveries() == 0  # an empty queue does not even exist
        for n in range(3):
            tasks.action_deliver_task.apply_async(args=[n], queue=queue)
        assert tasks.waiting_deliveries() == 3
    finally:
        with app.pool.acquire(block=True, timeout=5) as conn:
            conn.default_channel.queue_purge(queue)
            conn.default_channel.queue_delete(queue)
        app.conf.task_default_queue = default
