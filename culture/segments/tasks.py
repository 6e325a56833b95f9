"""Celery adapters for segments: the daily sweep that schedules a refresh per segment."""

from __future__ import annotations

from celery import shared_task

from culture.segments import services


@shared_task(acks_late=True, ignore_result=True, time_limit=300)
def segments_daily_task() -> int:
    # One scheduled action per segment and day (idempotency key): a duplicated beat
    # tick schedules nothing twice, and the refreshes are durable rows.
    return services.segments_refresh_schedule()
