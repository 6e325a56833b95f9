"""Celery adapter: make sure the next rollup refresh is scheduled.

The refresh itself is a scheduled action (durable, retried, parked for review after
too many failures); each run arms the next. This beat task only arms it again in case
the chain stopped (a parked run, a fresh database), idempotently per time slot.
"""

from __future__ import annotations

from celery import shared_task

from culture.dashboards import rollups


@shared_task(acks_late=True, ignore_result=True, time_limit=60)
def rollups_arm_task() -> None:
    rollups.schedule_next()
