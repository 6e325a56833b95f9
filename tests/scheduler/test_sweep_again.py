"""A sweep that claimed all it was allowed asks for another one right away (issue 18).

Beat sweeps every KEHU_SWEEP_SECONDS (15 s) and a sweep claims at most SWEEP_BATCH (500)
rows, so 10,000 escalations due at once went out over five minutes, however fast the
workers were. A full sweep now publishes one follow-up sweep in SWEEP_AGAIN_SECONDS;
one waits at a time; a sweep that left nothing due behind it publishes none, nor does
one of beat's that the backlog bound stopped (a follow-up stopped so asks again). Against the suite's Redis (the sweep queue and a delivery
queue of the test's own) and the sweep task's own body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.conf import settings

from crm.scheduler import services, tasks
from crm.scheduler.models import ScheduledAction
from tests.scheduler.conftest import NOW

APP = tasks.actions_sweep_task.app
SWEEP_QUEUE = settings.CELERY_TASK_ROUTES[tasks.actions_sweep_task.name]["queue"]


def _client_call(method: str, *args: object) -> object:
    with APP.pool.acquire(block=True, timeout=5) as conn:
        with conn.default_channel.conn_or_acquire() as client:
            return getattr(client, method)(*args)


@pytest.fixture
def sweep_queue() -> Iterator[None]:
    """The sweep queue and the follow-up key, empty before and after."""
    _client_call("delete", SWEEP_QUEUE, tasks.SWEEP_AGAIN_KEY)
    yield
    _client_call("delete", SWEEP_QUEUE, tasks.SWEEP_AGAIN_KEY)


def follow_ups() -> list[dict]:
    """The sweeps waiting in the sweep queue: their headers."""
    raw = _client_call("lrange", SWEEP_QUEUE, 0, -1)
    return [json.loads(message)["headers"] for message in raw]


def due(count: int, start: int = 0) -> None:
    ScheduledAction.objects.bulk_create(
        ScheduledAction(
            kind="tests.any",
            target_id=n,
            due_at=NOW - timedelta(minutes=1),
            idempotency_key=f"tests.any:{n}",
        )
        for n in range(start, start + count)
    )


@pytest.mark.django_db
def test_a_full_sweep_asks_for_one_follow_up_sweep(clock, queue, sweep, sweep_queue):
    due(services.SWEEP_BATCH + 20)
    sweep()
    waiting = follow_ups()
    assert [h["task"] for h in waiting] == [tasks.actions_sweep_task.name]
    assert "'following': True" in waiting[0]["kwargsrepr"]
    assert datetime.fromisoformat(waiting[0]["eta"]) == NOW + timedelta(
        seconds=tasks.SWEEP_AGAIN_SECONDS
    )
    assert waiting[0]["expires"] is not None

    # Beat's tick before the follow-up ran: the workers took the deliveries, more due
    # rows are left, but one follow-up already waits.
    _client_call("delete", queue)
    due(services.SWEEP_BATCH, start=10_000)
    sweep()
    assert len(follow_ups()) == 1


@pytest.mark.django_db
def test_the_follow_up_that_finds_the_rest_asks_for_none(
    clock, queue, sweep, sweep_queue
):
    due(services.SWEEP_BATCH + 20)
    sweep()
    _client_call(
        "delete", queue, SWEEP_QUEUE
    )  # the follow-up runs, the workers deliver
    clock.shift(tasks.SWEEP_AGAIN_SECONDS)
    _client_call("delete", tasks.SWEEP_AGAIN_KEY)  # as its expiry would have done

    sweep()

    assert ScheduledAction.objects.filter(state="pending").count() == 0
    assert follow_ups() == []


@pytest.mark.django_db
def test_behind_the_backlog_bound_only_a_follow_up_asks_again(
    clock, queue, sweep, sweep_queue, django_capture_on_commit_callbacks
):
    due(services.SWEEP_BATCH + 20)
    sweep()  # ten messages of 50 now wait in the delivery queue
    _client_call("delete", SWEEP_QUEUE, tasks.SWEEP_AGAIN_KEY)
    assert tasks.waiting_deliveries() == services.SWEEP_BATCH // services.DELIVERY_CHUNK

    sweep()  # beat's: it leaves the rest to its next tick
    assert ScheduledAction.objects.filter(state="pending").count() == 20
    assert follow_ups() == []

    # A follow-up during a burst the workers are behind on: the burst goes on.
    with django_capture_on_commit_callbacks(execute=True):
        tasks.actions_sweep_task(following=True)
    assert ScheduledAction.objects.filter(state="pending").count() == 20
    assert [h["task"] for h in follow_ups()] == [tasks.actions_sweep_task.name]


@pytest.mark.django_db
def test_a_small_sweep_asks_for_none(clock, queue, sweep, sweep_queue):
    due(3)
    sweep()
    assert ScheduledAction.objects.filter(state="dispatched").count() == 3
    assert follow_ups() == []
