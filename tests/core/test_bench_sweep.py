"""bench/sweep.py delivers the escalation sweep with the worker's processes (issue 18):
the figure it reports must be of every action delivered once, as the one-process
method delivers them. Real PostgreSQL; the delivering processes are spawned and
connect to the test database, so the data is committed (transaction=True)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bench import sweep
from crm.notifications.models import Notification
from crm.scheduler.models import ScheduledAction
from service.models import Ticket
from tests.service import test_escalation as day

desk = day.desk

State = ScheduledAction.State


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [1, 2])
def test_the_sweep_bench_escalates_every_due_ticket_once(
    desk: SimpleNamespace, monkeypatch: Any, workers: int
) -> None:
    day.complaint_tickets(desk, 60)
    # The bench writes each ticket's breach action itself, with the same key.
    ScheduledAction.objects.all().delete()
    monkeypatch.setenv("KEHU_SWEEP_COUNT", "60")
    monkeypatch.setenv("KEHU_SWEEP_WORKERS", str(workers))
    fixtures = SimpleNamespace(size="small")
    sweep.setup(fixtures)
    try:
        result = sweep.run(fixtures)
        done = ScheduledAction.objects.filter(kind=sweep.KIND, state=State.DONE)
        assert done.count() == 60
        breached = Ticket.objects.filter(first_response_breached=True)
        assert breached.count() == 60
        # The lead and the assignee of each ticket, in-app, and each e-mailed once.
        breaches = Notification.objects.filter(idempotency_key__contains=":breach:")
        assert breaches.count() == 120
        assert not breaches.filter(emailed_at__isnull=True).exists()
    finally:
        sweep.close_workers()
        sweep.teardown(fixtures)
    assert result["workers"] == workers
    assert result["actions"] == result["delivered"] == 60
    assert result["chunks"] == 2  # 60 ids in messages of 50
    assert result["notifications"] == 120
    assert result["deliver_queries"] > 0
    # Teardown puts the tickets back as they were.
    assert not Ticket.objects.filter(first_response_breached=True).exists()
