"""Delivering scheduled actions in chunks (issue 6, R1: 83 deliveries a second).

The sweep publishes its claimed ids DELIVERY_CHUNK to a message; `actions_deliver`
claims a chunk in one statement and hands each kind with a batch handler its group at
once. Real PostgreSQL, the real follow-up reminder kind, Django's in-memory mail outbox
(and a mail backend that bounces or "dies" on a chosen message). A worker killed
mid-batch is a BaseException raised by that backend, as in test_services.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler import services
from crm.scheduler.models import ScheduledAction
from customers import services as customer_services
from customers.models import FollowUp
from tests.factories import CustomerFactory, UserFactory
from tests.scheduler.conftest import LEASE, NOW
from tests.service import test_escalation as day

desk = day.desk  # the SLA day's desk: agent, lead, managers, policy

State = ScheduledAction.State
KEY_HEADER = "X-Kehu-Idempotency-Key"
BOUNCING = "bounce@example.com"


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the service catches it."""


class BouncingBackend(EmailBackend):
    """The in-memory outbox, except that mail to BOUNCING is refused, and that the
    `dies_after`-th message is sent and then the "worker" dies before recording it."""

    dies_after: int | None = None

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            if BOUNCING in message.to:
                raise ConnectionError("550 mailbox unavailable")
        sent = super().send_messages(messages)
        if BouncingBackend.dies_after is not None and len(mail.outbox) >= (
            BouncingBackend.dies_after
        ):
            BouncingBackend.dies_after = None
            raise WorkerKilled
        return sent


@pytest.fixture(autouse=True)
def short_lease(settings, time_machine):
    settings.KEHU_ACTION_LEASE_SECONDS = LEASE
    settings.EMAIL_BACKEND = f"{__name__}.BouncingBackend"
    time_machine.move_to(NOW)
    yield
    BouncingBackend.dies_after = None


@pytest.fixture
def rep(team_a):
    return UserFactory(
        username="rep_batch", email="rep@example.com", team=team_a, role=Role.SALES
    )


def due_followups(rep, n: int, *, start: int = 0) -> list[FollowUp]:
    """`n` follow-ups of `rep`, all due a minute after NOW."""
    customer = CustomerFactory(owner=rep, name=f"客户{start}")
    return [
        customer_services.followup_create(
            by=rep,
            customer=customer,
            assignee=rep,
            due_at=NOW + timedelta(minutes=1),
            note=f"回访 {start + i}",
        )
        for i in range(n)
    ]


def swept(now: datetime = NOW + timedelta(minutes=2)) -> list[int]:
    return services.actions_sweep(now=now)


def reminders(followups: list[FollowUp]) -> list[ScheduledAction]:
    return list(
        ScheduledAction.objects.filter(
            kind=customer_services.FOLLOWUP_REMINDER,
            target_id__in=[f.pk for f in followups],
        ).order_by("pk")
    )


def emails_per_key() -> Counter[str]:
    return Counter(message.extra_headers[KEY_HEADER] for message in mail.outbox)


def statements_of(ids: list[int]) -> tuple[list[str], list[int]]:
    with CaptureQueriesContext(connection) as queries:
        delivered = services.actions_deliver(action_ids=ids)
    return [q["sql"] for q in queries.captured_queries], delivered


def is_email_mark(sql: str) -> bool:
    return sql.startswith('UPDATE "notifications_notification" SET "emailed_at"')


@pytest.mark.django_db
def test_a_chunk_of_reminders_is_delivered_in_a_constant_number_of_statements(rep):
    """5 or 50 reminders: the same statements, plus the record of each e-mail sent."""
    counts = []
    for start, n in ((0, 5), (100, 50)):
        mail.outbox.clear()
        followups = due_followups(rep, n, start=start)
        ids = swept()
        assert sorted(ids) == [a.pk for a in reminders(followups)]

        sql, delivered = statements_of(ids)

        assert sorted(delivered) == sorted(ids)
        actions = reminders(followups)
        assert {a.state for a in actions} == {State.DONE}
        assert all(a.attempts == 1 and a.done_at for a in actions)
        keys = {a.idempotency_key for a in actions}
        notes = Notification.objects.filter(idempotency_key__in=keys)
        assert notes.count() == n
        assert not notes.filter(emailed_at__isnull=True).exists()
        assert {note.recipient_id for note in notes} == {rep.pk}
        assert emails_per_key() == Counter(dict.fromkeys(keys, 1))
        assert all(message.to == [rep.email] for message in mail.outbox)
        assert mail.outbox[0].subject.startswith("跟进到期")
        assert not FollowUp.objects.filter(
            pk__in=[f.pk for f in followups], reminded_at__isnull=True
        ).exists()
        assert sum(map(is_email_mark, sql)) == n
        counts.append(len([s for s in sql if not is_email_mark(s)]))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 10, counts  # 9: claim, load, 6 of the handler, done


@pytest.mark.django_db
def test_stale_and_unknown_actions_in_a_chunk_are_handled_as_one_by_one(rep):
    followups = due_followups(rep, 4)
    customer_services.followup_complete(by=rep, followup=followups[0])  # cancels it
    stale = reminders(followups)[1]
    FollowUp.objects.filter(pk=followups[1].pk).update(status=FollowUp.Status.DONE)
    FollowUp.objects.filter(pk=followups[2].pk).delete()
    unknown = services.action_schedule(
        kind="tests.renamed", target_id=1, due_at=NOW, key="tests.renamed:1"
    )
    ids = swept()
    assert len(ids) == 4  # the cancelled one is not claimed

    delivered = services.actions_deliver(action_ids=ids)

    assert unknown.pk not in delivered
    unknown.refresh_from_db()
    assert unknown.state == State.NEEDS_REVIEW
    assert "tests.renamed" in unknown.last_error
    # Done or deleted follow-ups: the action is done, nobody is reminded.
    assert ScheduledAction.objects.get(pk=stale.pk).state == State.DONE
    assert list(Notification.objects.values_list("idempotency_key", flat=True)) == [
        f"followup:{followups[3].pk}:remind"
    ]
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_one_bouncing_action_is_backed_off_and_the_rest_of_the_chunk_goes_out(
    rep, team_a, caplog
):
    bouncing = UserFactory(
        username="rep_gone", email=BOUNCING, team=team_a, role=Role.SALES
    )
    good = due_followups(rep, 3)
    customer = CustomerFactory(owner=bouncing, name="坏邮箱客户")
    bad = customer_services.followup_create(
        by=bouncing,
        customer=customer,
        assignee=bouncing,
        due_at=NOW + timedelta(minutes=1),
        note="回访",
    )
    good += due_followups(rep, 3, start=10)
    ids = swept()

    delivered = services.actions_deliver(action_ids=ids)

    assert "delivering it again in halves" in caplog.text
    bad_action = reminders([bad])[0]
    good_actions = reminders(good)
    assert sorted(delivered) == sorted(a.pk for a in good_actions)
    assert {a.state for a in good_actions} == {State.DONE}
    assert emails_per_key() == Counter({a.idempotency_key: 1 for a in good_actions})
    assert bad_action.state == State.PENDING
    assert "550 mailbox unavailable" in bad_action.last_error
    assert bad_action.due_at > timezone.now()
    # Its in-app notification stands; the e-mail is still owed and goes on the retry.
    note = Notification.objects.get(idempotency_key=bad_action.idempotency_key)
    assert note.emailed_at is None
    bouncing.email = "back@example.com"
    bouncing.save(update_fields=["email"])
    assert swept(now=bad_action.due_at) == [bad_action.pk]
    assert services.actions_deliver(action_ids=[bad_action.pk]) == [bad_action.pk]
    assert emails_per_key()[bad_action.idempotency_key] == 1
    assert Notification.objects.filter(recipient=bouncing).count() == 1


@pytest.mark.django_db
def test_redelivering_a_done_chunk_sends_nothing(rep):
    followups = due_followups(rep, 5)
    ids = swept()
    services.actions_deliver(action_ids=ids)
    assert len(mail.outbox) == 5

    # The same message again (redelivered by the broker), and the old one-id task.
    assert services.actions_deliver(action_ids=ids) == []
    assert services.action_deliver(action_id=ids[0]) is False
    assert len(mail.outbox) == 5
    assert Notification.objects.count() == 5
    assert {a.attempts for a in reminders(followups)} == {1}


@pytest.mark.django_db
def test_a_worker_killed_mid_chunk_resends_at_most_the_one_email_in_flight(rep):
    followups = due_followups(rep, 8)
    ids = swept()
    BouncingBackend.dies_after = 3  # the 3rd e-mail leaves, then the worker dies

    with pytest.raises(WorkerKilled):
        services.actions_deliver(action_ids=ids)

    assert len(mail.outbox) == 3
    assert {a.state for a in reminders(followups)} == {State.SENDING}
    # The lease runs out; the sweep takes the chunk back and a worker delivers it.
    later = NOW + timedelta(minutes=2, seconds=LEASE + 1)
    assert sorted(swept(now=later)) == sorted(ids)
    assert sorted(services.actions_deliver(action_ids=ids)) == sorted(ids)

    sent = emails_per_key()
    assert set(sent) == {a.idempotency_key for a in reminders(followups)}
    assert sum(sent.values()) - len(sent) <= 1, sent
    assert Notification.objects.count() == 8
    assert {a.state for a in reminders(followups)} == {State.DONE}


@pytest.mark.django_db
def test_a_worker_killed_after_the_batch_before_done_delivers_nothing_twice(rep):
    followups = due_followups(rep, 4)
    ids = swept()
    # Claimed, the handler ran to the end, the worker died before the done UPDATE.
    ScheduledAction.objects.filter(pk__in=ids).update(state=State.SENDING)
    customer_services.followups_remind(reminders(followups))
    assert len(mail.outbox) == 4

    later = NOW + timedelta(minutes=2, seconds=LEASE + 1)
    assert sorted(swept(now=later)) == sorted(ids)
    assert sorted(services.actions_deliver(action_ids=ids)) == sorted(ids)
    assert len(mail.outbox) == 4
    assert Notification.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_workers_with_overlapping_chunks_deliver_each_action_once(rep):
    followups = due_followups(rep, 30)
    ids = sorted(swept())
    chunks = [ids[:20], ids[10:], ids[::-1]]  # every id in two or three chunks
    barrier = threading.Barrier(len(chunks))
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def worker(chunk: list[int]) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(services.actions_deliver(action_ids=chunk))
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    delivered = [pk for result in results for pk in result]
    assert sorted(delivered) == ids  # each once, by exactly one worker
    assert {a.state for a in reminders(followups)} == {State.DONE}
    assert {a.attempts for a in reminders(followups)} == {1}
    assert Notification.objects.count() == 30
    assert emails_per_key() == Counter(
        {a.idempotency_key: 1 for a in reminders(followups)}
    )


def test_the_sweep_publishes_chunks_of_ids_to_the_real_broker(settings):
    """Against the suite's Redis, on a queue of this test's own."""
    import uuid

    from crm.scheduler import tasks

    app = tasks.action_deliver_many_task.app
    queue = f"kehu-test-chunks-{uuid.uuid4().hex}"
    default = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        services._publish(
            list(range(1, 2 * services.DELIVERY_CHUNK + 2)), lease_until=NOW
        )
        assert tasks.waiting_deliveries() == 3
        with app.pool.acquire(block=True, timeout=5) as conn:
            sizes = []
            while (
                message := conn.default_channel.basic_get(queue, no_ack=True)
            ) is not None:
                args = message.decode()[0]
                sizes.append(len(args[0]))
        assert sizes == [services.DELIVERY_CHUNK, services.DELIVERY_CHUNK, 1]
    finally:
        with app.pool.acquire(block=True, timeout=5) as conn:
            conn.default_channel.queue_purge(queue)
            conn.default_channel.queue_delete(queue)
        app.conf.task_default_queue = default


@pytest.mark.django_db
def test_sla_warnings_and_escalations_in_a_chunk_match_one_by_one(desk, caplog):
    """tests/service/test_escalation.py's day, for three tickets delivered in chunks."""
    tickets = day.complaint_tickets(desk, 3)

    def run(when: datetime) -> list[tuple[str, str]]:
        with time_machine.travel(when, tick=False):
            ids = services.actions_sweep(now=when)
            assert sorted(services.actions_deliver(action_ids=ids, now=when)) == sorted(
                ids
            )
        keys = ScheduledAction.objects.filter(pk__in=ids).values_list(
            "idempotency_key", flat=True
        )
        return sorted(tuple(key.split(":")[2:4]) for key in keys)

    mail.outbox.clear()
    MON, TUE, at = day.MON, day.TUE, day.at  # noqa: N806
    assert run(at(MON, 10, 29, 59)) == []
    assert run(at(MON, 10, 30)) == [("first_response", "warning")] * 3
    assert run(at(MON, 11)) == [("first_response", "breach")] * 3
    assert run(at(MON, 11, 45)) == [("first_response", "manager")] * 3
    assert run(at(TUE, 10)) == [("resolution", "warning")] * 3
    assert run(at(TUE, 10, 30)) == [("resolution", "breach")] * 3

    for ticket in tickets:
        ticket.refresh_from_db()
        assert ticket.first_response_breached and ticket.resolution_breached
        assert ticket.escalation_level == 2
        ref = ticket.reference
        titles = [
            f"即将超时（首次响应）：{ref}",
            f"已超时（首次响应），升级到组长：{ref}",
            f"即将超时（解决）：{ref}",
            f"已超时（解决），升级到组长：{ref}",
        ]
        assert [t for t in day.inbox(desk.agent) if ref in t and "新工单" not in t] == (
            titles
        )
        assert [t for t in day.inbox(desk.lead) if ref in t] == [titles[1], titles[3]]
        assert [t for t in day.inbox(desk.manager) if ref in t] == [
            f"超时未处理，升级到经理：{ref}"
        ]
    assert day.inbox(desk.other_manager) == []
    # Carried out by the batch handler, not by the one-by-one fallback.
    assert "again in halves" not in caplog.text
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        ["agent@x.cn"] * 12 + ["lead@x.cn"] * 6 + ["boss@x.cn"] * 3
    )


@pytest.mark.django_db
def test_a_chunk_is_claimed_and_marked_done_by_primary_key_on_stale_statistics():
    """As in a sweep of 10,000 (issue 18): the statistics were taken while the rows were
    pending, then the sweep leased them all. The chunk's claim and its done mark must
    look its ids up by primary key, not read every leased row through action_leased
    (which the planner believes empty) to keep the chunk's 50."""
    ScheduledAction.objects.bulk_create(
        ScheduledAction(
            kind="tests.bulk", target_id=n, due_at=NOW, idempotency_key=f"bulk:{n}"
        )
        for n in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scheduler_scheduledaction")
    ScheduledAction.objects.update(
        state=State.DISPATCHED, lease_until=NOW + timedelta(seconds=LEASE)
    )
    ids = list(ScheduledAction.objects.order_by("pk").values_list("pk", flat=True))
    chunk = ids[1000:1050]
    statements = [
        (services._CLAIM_CHUNK, [chunk, State.DISPATCHED, State.SENDING, NOW]),
        (services._DONE_MARK, [State.DONE, NOW, chunk, State.SENDING]),
    ]
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "action_leased" not in plan, plan
            assert "scheduler_scheduledaction_pkey" in plan, plan
