"""Celery adapters for the scheduled-action pipeline: ids in, services do the work."""

from __future__ import annotations

from celery import shared_task

from crm.scheduler import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def actions_sweep_task() -> int:
    return len(services.actions_sweep())


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def action_deliver_task(action_id: int) -> bool:
    return services.action_deliver(action_id=action_id)
