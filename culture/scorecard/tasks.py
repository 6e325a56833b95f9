"""Celery adapter: make sure the scorecard's next rollup refresh is scheduled (the
refresh is a scheduled action that re-arms itself; this only re-arms a stopped chain)."""

from __future__ import annotations

from celery import shared_task

from culture.scorecard import rollups


@shared_task(acks_late=True, ignore_result=True, time_limit=60)
def rollups_arm_task() -> None:
    rollups.schedule_next()


@shared_task(acks_late=True, ignore_result=True, time_limit=60)
def weekly_report_arm_task() -> None:
    """Arms the weekly culture report of the week under way (idempotent per week)."""
    from culture.scorecard import weekly_report

    weekly_report.schedule_next()
