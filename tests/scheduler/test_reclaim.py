"""An expired `dispatched` row whose message is gone comes back even behind a backlog.

Each delivery message carries the lease its sweep gave its rows. The sweep task reads the
oldest messages still waiting in Redis and takes back an expired `dispatched` row only
when its lease ends before theirs: its own message is then no longer queued, so it was
lost (Redis restarted empty) or taken by a worker that died before claiming the row. A
row whose message still waits is not published again (that was the flood `make chaos`
found, tests/scheduler/test_backlog.py).

Before, such a row waited until the queue drained below one message. Against the suite's
Redis and the sweep task's own body, on a delivery queue of each test's own.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest

from crm.scheduler import services, tasks
from crm.scheduler.models import ScheduledAction
from tests.scheduler.conftest import LEASE, NOW

State = ScheduledAction.State
APP = tasks.action_deliver_many_task.app


def due_at(moment: datetime, n: int) -> ScheduledAction:
    return services.action_schedule(
        kind="tests.any", target_id=n, due_at=moment, key=f"tests.any:{n}"
    )


def queued(queue: str) -> list[tuple[list[int], str]]:
    """Each waiting message, oldest first: its ids and the lease it carries (read, not
    taken)."""
    with APP.pool.acquire(block=True, timeout=5) as conn:
        channel = conn.default_channel
        with channel.conn_or_acquire() as client:
            raw = client.lrange(queue, 0, -1)
    messages = []
    for item in reversed(raw):  # kombu pushes on the left and pops on the right
        message = json.loads(item)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append((args[0], message["headers"][services.LEASE_HEADER]))
    return messages


def lose_oldest_message(queue: str) -> list[int]:
    """The oldest message leaves the queue and is never delivered (taken by a worker
    killed before it claimed the rows, or gone with a Redis restart)."""
    with APP.pool.acquire(block=True, timeout=5) as conn:
        message = conn.default_channel.basic_get(queue, no_ack=True)
    return message.decode()[0][0]


def backlog_of_five(clock, sweep, start: int) -> list[ScheduledAction]:
    """Five actions falling due a second apart, each published by its own sweep: five
    messages that no worker takes (the workers are down or behind)."""
    actions = []
    for n in range(5):
        moment = NOW + timedelta(seconds=start + n)
        action = due_at(moment, 100 + n)
        clock.move_to(moment, tick=False)
        sweep()
        action.refresh_from_db()
        assert action.state == State.DISPATCHED
        actions.append(action)
    return actions


@pytest.mark.django_db
def test_a_row_whose_message_was_lost_comes_back_behind_a_backlog(clock, queue, sweep):
    lost = due_at(NOW - timedelta(minutes=1), 1)
    sweep()
    assert lose_oldest_message(queue) == [lost.pk]
    waiting = backlog_of_five(clock, sweep, start=5)
    assert tasks.waiting_deliveries() == 5

    # Its lease runs out while five newer messages still wait.
    clock.move_to(NOW + timedelta(seconds=LEASE + 1), tick=False)
    # The rule before: with more than one message waiting, it stayed where it was.
    assert services.actions_sweep(broker_backlog=tasks.waiting_deliveries()) == []

    sweep()

    lost.refresh_from_db()
    assert lost.state == State.DISPATCHED
    assert lost.lease_until == NOW + timedelta(seconds=2 * LEASE + 1)
    messages = queued(queue)
    assert [ids for ids, _lease in messages] == [[action.pk] for action in waiting] + [
        [lost.pk]
    ]
    assert messages[-1][1] == lost.lease_until.isoformat()
    for action in waiting:  # still on their way, untouched
        before = action.lease_until
        action.refresh_from_db()
        assert (action.state, action.lease_until) == (State.DISPATCHED, before)


@pytest.mark.django_db
def test_an_expired_row_whose_message_still_waits_is_not_published_again(
    clock, queue, sweep
):
    waiting = backlog_of_five(clock, sweep, start=0)
    assert tasks.reclaim_before() == waiting[0].lease_until  # the oldest message's

    # Every lease runs out; the workers have not taken a single message.
    clock.move_to(NOW + timedelta(minutes=5), tick=False)
    sweep()
    sweep()

    assert [ids for ids, _lease in queued(queue)] == [[a.pk] for a in waiting]
    for action in waiting:
        before = action.lease_until
        action.refresh_from_db()
        assert (action.state, action.lease_until) == (State.DISPATCHED, before)

    # A worker takes the oldest message and dies before claiming its row: that row,
    # and only that one, comes back.
    [first] = lose_oldest_message(queue)
    sweep()
    assert [ids for ids, _lease in queued(queue)] == [[a.pk] for a in waiting[1:]] + [
        [first]
    ]


@pytest.mark.django_db
def test_an_empty_queue_gives_back_every_expired_row_as_before(clock, queue, sweep):
    first = due_at(NOW - timedelta(minutes=2), 1)
    sweep()
    clock.move_to(NOW + timedelta(seconds=10), tick=False)
    second = due_at(NOW, 2)
    sweep()
    # Redis restarts empty: both messages are gone.
    with APP.pool.acquire(block=True, timeout=5) as conn:
        assert conn.default_channel.queue_purge(queue) == 2
    assert tasks.reclaim_before() == services.NOTHING_QUEUED

    clock.move_to(NOW + timedelta(seconds=LEASE + 11), tick=False)
    sweep()

    assert [ids for ids, _lease in queued(queue)] == [[first.pk, second.pk]]
    for action in (first, second):
        action.refresh_from_db()
        assert action.state == State.DISPATCHED
        assert action.lease_until == NOW + timedelta(seconds=2 * LEASE + 11)


def test_messages_without_a_lease_fall_back_to_counting(queue):
    """Another task's messages, or deliveries published before messages carried their
    lease, say nothing about any row: a queue of only such messages counts as no
    delivery waiting while the sweep can read all of it, and as unknown (today's
    count-based rule) when more wait than it reads."""
    for n in range(tasks.QUEUE_PEEK):
        tasks.action_deliver_task.apply_async(args=[n])
    assert tasks.reclaim_before() == services.NOTHING_QUEUED
    tasks.action_deliver_task.apply_async(args=[tasks.QUEUE_PEEK])
    assert tasks.reclaim_before() is None


def test_a_queue_redis_cannot_read_falls_back_to_counting(queue):
    with APP.pool.acquire(block=True, timeout=5) as conn:
        with conn.default_channel.conn_or_acquire() as client:
            client.set(queue, "not a list")
    try:
        assert tasks.reclaim_before() is None
    finally:
        with APP.pool.acquire(block=True, timeout=5) as conn:
            with conn.default_channel.conn_or_acquire() as client:
                client.delete(queue)
