"""Celery adapters for customers: the daily pool, key-account and import-purge jobs,
imports, exports."""

from __future__ import annotations

from celery import Task, shared_task
from django.db import OperationalError

from customers import exports, imports, services


@shared_task(acks_late=True, ignore_result=True)
def customers_daily_task() -> dict[str, int]:
    # The sweeps are idempotent, so a duplicated beat tick does no harm.
    dormant = services.dormant_key_accounts_sweep()
    result = services.pool_return_sweep()
    result["dormant_followups"] = dormant
    # Uploads past their time that their scheduled action missed, and stray files.
    result.update(imports.import_jobs_expire_overdue())
    # Finished imports past KEHU_IMPORT_RETENTION_DAYS: rows and files go, summary stays.
    result.update(imports.import_jobs_purge_retained())
    return result


# --- import (customers/imports.py): the job row says what is left, so reruns are safe ---


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def import_job_validate_task(self: Task, job_id: int) -> None:
    try:
        imports.import_job_validate(job_id=job_id)
    except imports.JobBusy as busy:
        # JobBusy.seconds is the rest of a 2-minute lease + 1 s: inside the 300 s bound.
        raise self.retry(  # nosemgrep: kehu-no-broker-delay
            countdown=busy.seconds, max_retries=None
        ) from busy


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def import_job_execute_task(self: Task, job_id: int) -> None:
    try:
        imports.import_job_execute(job_id=job_id)
    except imports.JobBusy as busy:
        # JobBusy.seconds is the rest of a 2-minute lease + 1 s: inside the 300 s bound.
        raise self.retry(  # nosemgrep: kehu-no-broker-delay
            countdown=busy.seconds, max_retries=None
        ) from busy


# --- an approved export (customers/exports.py): built once, whoever runs it -------------


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def export_request_produce_task(request_id: int) -> None:
    exports.export_request_produce(request_id=request_id)
