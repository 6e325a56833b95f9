"""The state of the three services Kehu needs: PostgreSQL, Redis and a Celery worker.

A probe must answer, 200 or 503, within a couple of seconds, however many come at once
and whatever is down (issue 11, finding 13: `/healthz` hung for good after 30 parallel
requests, each pinging the workers through the Celery app's shared broker connection
pool). So every check has its own timeout, and the worker ping, the one check that
waits for other processes, runs at most once at a time: in a thread of its own, on a
broker connection of its own, while every request waits for its answer at most
PING_TIMEOUT + PING_GRACE seconds and then reuses it for REUSE_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import connection, transaction

from crm.celery import app as celery_app

logger = logging.getLogger(__name__)

PING_TIMEOUT = 1.0  # how long the workers have to answer a ping
PING_GRACE = 0.5  # connecting and publishing, on top of PING_TIMEOUT
# A ping answered this recently is the answer for every probe meanwhile: 30 probes at
# once cost one ping, and a dead worker is seen within a few seconds.
REUSE_SECONDS = 2.0
STATEMENT_TIMEOUT_MS = 1000


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # noqa: BLE001 - any failure means "down" for a health probe
        return False


def redis_ok() -> bool:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001
        return False


def _ping_workers(timeout: float) -> bool:
    """Ping on a broker connection of this call's own: the app's shared pool is not
    safe to use from many threads at once, and a ping that hangs must not keep a
    pooled connection from everyone else."""
    conn = celery_app.connection_for_write(
        transport_options={
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout + PING_GRACE,
        }
    )
    try:
        # Fail now if Redis went away since redis_ok(): publishing would retry.
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        return bool(celery_app.control.ping(timeout=timeout, connection=conn))
    finally:
        conn.release()


@dataclass
class _WorkerProbe:
    """One ping at a time, shared by every probe that asks while it runs."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    result: bool = False
    answered_at: float = float("-inf")
    running: threading.Event | None = None
    started_at: float = float("-inf")

    def check(self, timeout: float) -> bool:
        asked_at = time.monotonic()
        with self.lock:
            if asked_at - self.answered_at < REUSE_SECONDS:
                return self.result
            # A ping stuck past its own deadline is abandoned (its thread is a daemon
            # and ends when its sockets time out): start a fresh one.
            stuck = asked_at - self.started_at > timeout + 2 * PING_GRACE
            if self.running is None or stuck:
                self.running = done = threading.Event()
                self.started_at = asked_at
                threading.Thread(
                    target=self._ping,
                    args=(done, timeout),
                    name="healthz-worker-ping",
                    daemon=True,
                ).start()
            running = self.running
        running.wait(timeout + PING_GRACE)
        with self.lock:
            # An answer that came while this probe waited; none means "no worker".
            if self.answered_at > asked_at - REUSE_SECONDS:
                return self.result
            return False

    def _ping(self, done: threading.Event, timeout: float) -> None:
        try:
            ok = _ping_workers(timeout)
        except Exception:  # noqa: BLE001 - a broker error means "no worker" here
            logger.warning("healthz: worker ping failed", exc_info=True)
            ok = False
        with self.lock:
            if self.running is done:
                self.result, self.answered_at = ok, time.monotonic()
                self.running = None
        done.set()

    def forget(self) -> None:
        with self.lock:
            self.answered_at = float("-inf")
            self.running = None


_worker_probe = _WorkerProbe()


def worker_ok(timeout: float = PING_TIMEOUT) -> bool:
    return _worker_probe.check(timeout)


def forget() -> None:
    """Drop the remembered ping answer (tests that start and stop workers)."""
    _worker_probe.forget()


def actions_needing_review() -> int | None:
    """Scheduled actions parked for an admin (crm/scheduler); None when unknown.

    Reported, not a failure: one poisoned action is no reason for a load balancer to
    take the whole application out of service.
    """
    from crm.scheduler.models import ScheduledAction

    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            return ScheduledAction.objects.filter(
                state=ScheduledAction.State.NEEDS_REVIEW
            ).count()
    except Exception:  # noqa: BLE001
        return None


def status() -> dict[str, bool]:
    db = database_ok()
    broker = redis_ok()
    # Without a broker a worker cannot be asked; skip the slow ping.
    worker = worker_ok() if broker else False
    return {"database": db, "redis": broker, "celery_worker": worker}


def details() -> dict[str, int | None]:
    """What /healthz reports besides up or down."""
    return {"actions_needs_review": actions_needing_review()}
