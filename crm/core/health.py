"""The state of the three services Kehu needs: PostgreSQL, Redis and a Celery worker."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection

from crm.celery import app as celery_app


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
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


def worker_ok(timeout: float = 1.0) -> bool:
    try:
        return bool(celery_app.control.ping(timeout=timeout))
    except Exception:  # noqa: BLE001
        return False


def status() -> dict[str, bool]:
    db = database_ok()
    broker = redis_ok()
    # Without a broker a worker cannot be asked; skip the slow ping.
    worker = worker_ok() if broker else False
    return {"database": db, "redis": broker, "celery_worker": worker}
