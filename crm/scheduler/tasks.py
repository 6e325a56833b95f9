"""Celery adapters for the scheduled-action pipeline: ids in, services do the work."""

from __future__ import annotations

from celery import shared_task

from crm.scheduler import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def actions_sweep_task() -> int:
    return len(services.actions_sweep(broker_backlog=waiting_deliveries()))


def waiting_deliveries() -> int:
    """Delivery messages (one id or a chunk each) published and not yet taken by a
    worker; 0 when the broker cannot say (an empty Redis queue does not exist at all,
    and a broker outage is no backlog)."""
    app = action_deliver_task.app
    try:
        with app.pool.acquire(block=True, timeout=2) as conn:
            return conn.default_channel.queue_declare(
                queue=app.conf.task_default_queue, passive=True
            ).message_count
    except Exception:  # noqa: BLE001 - unknown backlog: sweep as before
        return 0


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def action_deliver_task(action_id: int) -> bool:
    return services.action_deliver(action_id=action_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def action_deliver_many_task(action_ids: list[int]) -> int:
    return len(services.actions_deliver(action_ids=action_ids))
