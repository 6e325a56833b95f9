"""Celery adapters for 入伙: the notice run (service/handover/notices.py) and the
daily no-show sweep (outcomes.py)."""

from __future__ import annotations

from celery import Task, shared_task
from django.db import OperationalError

from service.handover import notices


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    # At most SLICE_SECONDS of chunks or PDF parts, plus the part under way.
    soft_time_limit=900,
    time_limit=960,
)
def notice_run_advance_task(self: Task, run_id: int) -> None:
    try:
        notices.notice_run_advance(run_id=run_id)
    except notices.RunBusy as busy:
        # RunBusy.seconds is the rest of the 5-minute lease + 1 s, capped at 300 s.
        raise self.retry(  # nosemgrep: kehu-no-broker-delay
            countdown=min(busy.seconds, 300), max_retries=None
        ) from busy


@shared_task(
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    # At most 5,000 appointments a run, one short transaction each; run twice, the
    # second finds them recorded (a case per appointment) and does nothing.
    soft_time_limit=600,
    time_limit=660,
)
def no_shows_task() -> int:
    """Daily: an ABSENT case for each booked appointment whose day passed without
    check-in (outcomes.no_shows_record; each appointment in its own transaction)."""
    from service.handover import outcomes

    return outcomes.no_shows_record()
