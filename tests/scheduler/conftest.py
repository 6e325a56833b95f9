"""What every scheduler test shares: a frozen moment, a short lease, a delivery queue of
the test's own in the real Redis, and the sweep task's body."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from crm.scheduler import tasks

APP = tasks.action_deliver_many_task.app

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
LEASE = 30


@pytest.fixture(autouse=True)
def short_lease(settings):
    settings.KEHU_ACTION_LEASE_SECONDS = LEASE


@pytest.fixture
def clock(time_machine):
    """Frozen at NOW; `clock.shift(seconds)` moves it on."""
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def queue() -> Iterator[str]:
    """The delivery queue, in the real Redis, for this test alone."""
    name = f"kehu-test-reclaim-{uuid.uuid4().hex}"
    default = APP.conf.task_default_queue
    APP.conf.task_default_queue = name
    try:
        yield name
    finally:
        with APP.pool.acquire(block=True, timeout=5) as conn:
            conn.default_channel.queue_purge(name)
            conn.default_channel.queue_delete(name)
        APP.conf.task_default_queue = default


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """What beat runs: the sweep task's body, publishing after commit as in production."""

    def run() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            tasks.actions_sweep_task()

    return run
