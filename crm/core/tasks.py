"""Celery adapters for crm.core."""

from __future__ import annotations

from celery import shared_task

from crm.core import once


# A bounded DELETE by age; ten minutes is far beyond what a week of tokens needs.
@shared_task(acks_late=True, ignore_result=True, time_limit=600)
def form_submissions_purge_task() -> int:
    # Deleting by age is idempotent: a duplicated beat tick does no harm.
    return once.form_submissions_purge()


# Rows of the limits (crm/core/limits.py) whose window ended: bounded batches.
@shared_task(acks_late=True, ignore_result=True, time_limit=600)
def limit_counters_purge_task() -> int:
    from crm.core import limits

    return limits.purge()
