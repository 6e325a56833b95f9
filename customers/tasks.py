"""Celery adapters for customers: the daily pool and key-account jobs."""

from __future__ import annotations

from celery import shared_task

from customers import services


@shared_task(acks_late=True, ignore_result=True)
def customers_daily_task() -> dict[str, int]:
    # Both sweeps are idempotent, so a duplicated beat tick does no harm.
    result = services.pool_return_sweep()
    result["dormant_followups"] = services.dormant_key_accounts_sweep()
    return result
