"""Celery adapter: the beat's tick only schedules durable actions (crm/scheduler);
the work itself runs in their handlers (culture/value/services.py)."""

from __future__ import annotations

from celery import shared_task

from culture.value import services


@shared_task(acks_late=True, ignore_result=True, time_limit=60)
def value_tick_task() -> None:
    services.value_tick()
