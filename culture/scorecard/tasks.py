"""Celery adapter: make sure the scorecard's next rollup refresh is scheduled (the
refresh is a scheduled action that re-arms itself; this only re-arms a stopped chain)."""

from __future__ import annotations

from celery import shared_task

from culture.scorecard import rollups


@shared_task(acks_late=True, ignore_result=True, time_limit=60)
def rollups_arm_task() -> None:
    rollups.schedule_next()
