"""Deliver queued customer messages in-process, as a worker would, and nothing else:
the other due actions (SLA warnings ...) stay for the test to deliver when it means to."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from crm.channels import services as channels
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction


def deliver_messages(now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    due = ScheduledAction.objects.filter(
        kind=channels.DELIVER,
        state=ScheduledAction.State.PENDING,
        due_at__lte=now,
    )
    ids = list(due.values_list("pk", flat=True))
    ScheduledAction.objects.filter(pk__in=ids).update(
        state=ScheduledAction.State.DISPATCHED
    )
    return [pk for pk in ids if scheduler.action_deliver(action_id=pk, now=now)]
