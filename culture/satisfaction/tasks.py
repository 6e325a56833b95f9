"""Celery adapters for satisfaction surveys: the hourly sweep that marks surveys whose
link no longer opens as expired (one UPDATE; running it twice changes nothing)."""

from __future__ import annotations

from celery import shared_task

from culture.satisfaction import services


@shared_task(acks_late=True, ignore_result=True, time_limit=300)
def surveys_expire_task() -> int:
    return services.surveys_expire()
