"""Run the survey triggers as production does: the service's transaction commits,
then the hooks run; and the due scheduled actions as a worker would."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.utils import timezone

from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import services as service_services
from tests.factories import TicketFactory

LINK = re.compile(r"https://kehu\.example\.com(/s/[^/\s]+/)")


def resolve(ticket: Any, by: Any, capture: Any) -> Any:
    with capture(execute=True):
        return service_services.ticket_transition(
            by=by, ticket=ticket, to_status="resolved", resolution_summary="已处理。"
        )


def resolved_ticket(by: Any, capture: Any, **kwargs: Any) -> Any:
    ticket = TicketFactory(status="in_progress", **kwargs)
    return resolve(ticket, by, capture)


def run_due(kind: str, now: datetime | None = None) -> list[int]:
    """Deliver the due actions of one kind in-process, as a worker would."""
    now = now or timezone.now()
    ids = list(
        ScheduledAction.objects.filter(
            kind=kind, state=ScheduledAction.State.PENDING, due_at__lte=now
        ).values_list("pk", flat=True)
    )
    ScheduledAction.objects.filter(pk__in=ids).update(
        state=ScheduledAction.State.DISPATCHED
    )
    return [pk for pk in ids if scheduler.action_deliver(action_id=pk, now=now)]


def link_path(text: str) -> str:
    found = LINK.search(text)
    assert found, text
    return found.group(1)
