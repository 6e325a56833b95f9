"""The escalation sweep's batch path (issue 18): a chunk of SLA breaches is carried out
by `sla_escalate_many` with the same statements whatever its size, and does what one
by one does -- flags the ticket, raises its level, tells the team lead and the
assignee (in-app, grouped with the warning, and by e-mail) -- while one action whose
e-mail bounces holds back none of the others. tests/service/test_escalation.py's
desk and day; real PostgreSQL, Django's in-memory outbox.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import services
from service.models import Ticket
from tests.factories import UserFactory
from tests.service import test_escalation as day

desk = day.desk  # the SLA day's desk: agent, lead, managers, policy

State = ScheduledAction.State
BOUNCING = "gone@x.cn"
WARNING, BREACH = day.at(day.MON, 10, 30), day.at(day.MON, 11)


class BouncingBackend(EmailBackend):
    """The in-memory outbox, except that mail to BOUNCING is refused."""

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            if BOUNCING in message.to:
                raise ConnectionError("550 mailbox unavailable")
        return super().send_messages(messages)


@pytest.fixture(autouse=True)
def bouncing_mail(settings: Any) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.BouncingBackend"


tickets = day.complaint_tickets


def deliver_chunk(when: Any, *, all_ok: bool = True) -> tuple[list[int], list[str]]:
    """One beat: the sweep, then its ids as one chunk; the chunk's statements."""
    with time_machine.travel(when, tick=False):
        ids = scheduler.actions_sweep(now=when)
        with CaptureQueriesContext(connection) as queries:
            delivered = scheduler.actions_deliver(action_ids=ids, now=when)
    assert sorted(delivered) == sorted(ids) or not all_ok
    return ids, [q["sql"] for q in queries.captured_queries]


def is_email_mark(sql: str) -> bool:
    return sql.startswith('UPDATE "notifications_notification" SET "emailed_at"')


@pytest.mark.django_db
def test_a_chunk_of_breaches_escalates_each_ticket_in_a_constant_number_of_statements(
    desk: SimpleNamespace, caplog: Any
) -> None:
    counts = []
    for start, n in ((0, 3), (10, 12)):
        mail.outbox.clear()
        made = tickets(desk, n, start=start)
        warned, _sql = deliver_chunk(WARNING)
        assert len(warned) == n
        breached, sql = deliver_chunk(BREACH)
        assert len(breached) == n

        for ticket in made:
            ticket.refresh_from_db()
            assert ticket.first_response_breached and ticket.escalation_level == 1
            breach = ScheduledAction.objects.get(
                target_id=ticket.pk, idempotency_key__contains=":first_response:breach:"
            )
            assert breach.state == State.DONE and breach.attempts == 1
            notes = {
                note.recipient_id: note
                for note in Notification.objects.filter(
                    idempotency_key__startswith=breach.idempotency_key + ":"
                )
            }
            assert set(notes) == {desk.lead.pk, desk.agent.pk}
            title = f"已超时（首次响应），升级到组长：{ticket.reference}"
            for note in notes.values():
                assert note.title == title
                assert note.body == ticket.subject
                assert note.url == ticket.get_absolute_url()
                assert note.group_key == f"ticket:{ticket.pk}:sla"
                assert note.emailed_at is not None
            assert notes[desk.lead.pk].reason == services.SLA_REASONS[("lead", False)]
            assert (
                notes[desk.agent.pk].reason
                == (services.SLA_REASONS[("assignee", False)])
            )
            # The agent still has the warning unread: the breach joins its line; the
            # lead had no line of this ticket, so the breach starts one.
            warning = Notification.objects.get(
                recipient=desk.agent,
                group_key=f"ticket:{ticket.pk}:sla",
                grouped_into__isnull=True,
            )
            assert warning.title.startswith("即将超时（首次响应）")
            assert notes[desk.agent.pk].grouped_into_id == warning.pk
            assert notes[desk.lead.pk].grouped_into_id is None
        sent = Counter(m.to[0] for m in mail.outbox)
        assert sent == {"agent@x.cn": 2 * n, "lead@x.cn": n}  # warning, breach
        assert len(
            set(m.extra_headers["X-Kehu-Idempotency-Key"] for m in mail.outbox)
        ) == (3 * n)
        assert sum(map(is_email_mark, sql)) == 2 * n
        counts.append(len([s for s in sql if not is_email_mark(s)]))
    assert "again in halves" not in caplog.text
    assert counts[0] == counts[1], counts
    # claim, load, tickets, SET LOCAL, flag, insert, e-mails to send, the setting off
    # and back, done
    assert counts[0] <= 10, counts


@pytest.mark.django_db
def test_a_bouncing_email_backs_off_its_own_escalation_and_the_rest_of_the_chunk_goes(
    desk: SimpleNamespace, caplog: Any
) -> None:
    made = tickets(desk, 6)
    gone = UserFactory(
        username="gone_agent", team=desk.agent.team, role=Role.SERVICE, email=BOUNCING
    )
    bad = made[3]
    Ticket.objects.filter(pk=bad.pk).update(assignee=gone)
    # The bad one's warning bounces too: backed off as well.
    deliver_chunk(WARNING, all_ok=False)
    mail.outbox.clear()

    with time_machine.travel(BREACH, tick=False):
        ids = scheduler.actions_sweep(now=BREACH)
        delivered = scheduler.actions_deliver(action_ids=ids, now=BREACH)

    assert "delivering it again in halves" in caplog.text
    breaches = {
        a.target_id: a
        for a in ScheduledAction.objects.filter(
            pk__in=ids, idempotency_key__contains=":first_response:breach:"
        )
    }
    assert len(breaches) == 6
    # The chunk also held the bad ticket's warning, due again after its back-off.
    assert sorted(delivered) == sorted(a.pk for t, a in breaches.items() if t != bad.pk)
    bad_action = breaches[bad.pk]
    assert bad_action.state == State.PENDING
    assert "550 mailbox unavailable" in bad_action.last_error
    for ticket in made:
        ticket.refresh_from_db()
        # Flagged all the same: the escalation's writes commit before its e-mails.
        assert ticket.first_response_breached and ticket.escalation_level == 1
    for target, action in breaches.items():
        if target != bad.pk:
            assert action.state == State.DONE
    assert Counter(m.to[0] for m in mail.outbox) == {
        "agent@x.cn": 5,
        "lead@x.cn": 6,
    }


@pytest.mark.django_db(transaction=True)
def test_the_emails_records_are_prepared_and_the_session_setting_is_put_back(
    desk: SimpleNamespace,
) -> None:
    """As a worker runs it (autocommit): the UPDATE per e-mail is a prepared statement,
    and `synchronous_commit` is back to what it was after the chunk, also when an
    e-mail bounced in the middle of it."""
    made = tickets(desk, 3)
    gone = UserFactory(
        username="gone_agent", team=desk.agent.team, role=Role.SERVICE, email=BOUNCING
    )
    Ticket.objects.filter(pk=made[1].pk).update(assignee=gone)
    assert connection.get_autocommit()

    with time_machine.travel(WARNING, tick=False):
        ids = scheduler.actions_sweep(now=WARNING)
        delivered = scheduler.actions_deliver(action_ids=ids, now=WARNING)

    assert len(delivered) == 2
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ['UPDATE "notifications_notification" SET "emailed_at"%'],
        )
        # One per parameter type psycopg picks for the ids (int2/int4/int8).
        assert cursor.fetchone()[0] >= 1
    warnings = Notification.objects.filter(idempotency_key__contains=":warning:")
    assert not warnings.filter(recipient=desk.agent, emailed_at__isnull=True).exists()
    assert (
        Notification.objects.filter(recipient=gone, emailed_at__isnull=True).count()
        == 1
    )
