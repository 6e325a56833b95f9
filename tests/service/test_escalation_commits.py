"""How a chunk of SLA escalations records its e-mails, as a Celery worker runs it.

Outside any test transaction (a worker's connection is in autocommit): each e-mail's
`emailed_at` is its own commit, made with `synchronous_commit = off` -- for the
e-mails' records and the escalation's own writes, and put back afterwards -- so a
worker killed mid-chunk still resends at most the one e-mail in flight. tests/service/test_escalation.py's desk and day; real PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from tests.service import test_escalation as day

desk = day.desk  # the SLA day's desk: agent, lead, managers, policy


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the service catches it."""


class DyingBackend(EmailBackend):
    """The in-memory outbox; the `dies_after`-th message leaves, then the worker dies
    before recording it."""

    dies_after: int | None = None

    def send_messages(self, messages: Any) -> int:
        sent = super().send_messages(messages)
        if DyingBackend.dies_after is not None and len(mail.outbox) >= (
            DyingBackend.dies_after
        ):
            DyingBackend.dies_after = None
            raise WorkerKilled
        return sent


def emailed_seen_by_another_connection() -> int:
    """What a second session sees: only committed rows."""
    seen: list[int] = []

    def look() -> None:
        try:
            seen.append(Notification.objects.filter(emailed_at__isnull=False).count())
        finally:
            connection.close()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join(timeout=10)
    return seen[0]


@pytest.mark.django_db(transaction=True)
def test_a_killed_chunk_kept_each_emails_record_and_resends_at_most_one(
    desk: SimpleNamespace, settings: Any
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.DyingBackend"
    day.complaint_tickets(desk, 3)
    # At 11:00 the three warnings (to the agent) and breaches (lead and agent) are due.
    when = day.at(day.MON, 11)
    ids = scheduler.actions_sweep(now=when)
    assert len(ids) == 6
    DyingBackend.dies_after = 5
    assert connection.get_autocommit()

    with (
        time_machine.travel(when, tick=False),
        CaptureQueriesContext(connection) as queries,
        pytest.raises(WorkerKilled),
    ):
        scheduler.actions_deliver(action_ids=ids, now=when)

    assert len(mail.outbox) == 5
    statements = [q["sql"] for q in queries.captured_queries]
    marks = [s for s in statements if '"emailed_at" =' in s]
    assert len(marks) == 4  # the 5th e-mail left and was not recorded
    # Each group: the escalation's writes committed without the flush (SET LOCAL in
    # their own transaction), then the e-mails' records with the session's setting
    # off, and put back right after the last (also when the worker "dies").
    switches = [i for i, s in enumerate(statements) if "synchronous_commit" in s]
    assert [statements[i].split("(")[0] for i in switches] == [
        "SET LOCAL synchronous_commit = off",
        "SELECT current_setting",
        "SELECT set_config",
        "SET LOCAL synchronous_commit = off",
        "SELECT current_setting",
        "SELECT set_config",
    ]
    first, second = switches[1:3], switches[4:6]
    marked = [i for i, s in enumerate(statements) if '"emailed_at" =' in s]
    assert all(first[0] < i < first[1] or second[0] < i < second[1] for i in marked)
    assert emailed_seen_by_another_connection() == 4
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # put back: the session is as it was

    # The warnings' group was done; the breaches' group is left `sending`. Its lease
    # runs out; the sweep takes it back and a worker delivers it.
    stuck = sorted(
        ScheduledAction.objects.filter(
            pk__in=ids, state=ScheduledAction.State.SENDING
        ).values_list("pk", flat=True)
    )
    assert len(stuck) == 3
    later = when + timedelta(seconds=settings.KEHU_ACTION_LEASE_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        assert sorted(scheduler.actions_sweep(now=later)) == stuck
        assert sorted(scheduler.actions_deliver(action_ids=stuck, now=later)) == stuck

    notes = Notification.objects.filter(idempotency_key__contains=":first_response:")
    assert notes.count() == 9
    assert not notes.filter(emailed_at__isnull=True).exists()
    sent = Counter(m.extra_headers["X-Kehu-Idempotency-Key"] for m in mail.outbox)
    assert set(sent) == set(notes.values_list("idempotency_key", flat=True))
    assert sent.most_common(1)[0][1] == 2 and sum(sent.values()) == 10
    assert set(
        ScheduledAction.objects.filter(pk__in=ids).values_list("state", flat=True)
    ) == {ScheduledAction.State.DONE}
