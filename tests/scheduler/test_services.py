"""The scheduled-action pipeline at service level (docs: reliability D1-D3).

Real PostgreSQL, real services, no mocks. Due times are moved with time-machine, never
slept for. A worker killed in the middle of a handler is reproduced by a handler that
raises a BaseException: like SIGKILL it escapes `action_deliver` after the claim, so the
row stays `sending` and the handler's writes roll back.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler import registry, services
from crm.scheduler.models import ScheduledAction
from customers import services as customer_services
from customers.models import ContactLog, FollowUp
from tests.factories import CustomerFactory, UserFactory
from tests.scheduler.conftest import LEASE, NOW

State = ScheduledAction.State
KEY_HEADER = "X-Kehu-Idempotency-Key"


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the service catches it."""


@pytest.fixture
def kinds() -> Iterator[Callable[..., None]]:
    """Register test kinds (or replace a real one) for one test, then put things back."""
    saved = dict(registry._KINDS)
    yield registry.register
    registry._KINDS.clear()
    registry._KINDS.update(saved)


@contextmanager
def crashing(kind: str) -> Iterator[None]:
    """While inside, the handler of `kind` dies the way a killed worker does."""
    original = registry.get(kind)

    def die(action: Any) -> None:
        raise WorkerKilled

    registry.register(kind, die, at_most_once=original.at_most_once)
    try:
        yield
    finally:
        registry.register(
            kind,
            original.handler,
            at_most_once=original.at_most_once,
            batch_handler=original.batch_handler,
        )


def deliver_dying(action_id: int, kind: str) -> None:
    with crashing(kind), pytest.raises(WorkerKilled):
        services.action_deliver(action_id=action_id)


@pytest.fixture
def rep(team_a):
    return UserFactory(
        username="rep_mail", email="rep@example.com", team=team_a, role=Role.SALES
    )


@pytest.fixture
def customer(rep):
    return CustomerFactory(owner=rep, name="王建国")


def new_followup(rep, customer, due_at: datetime, note: str = "回访报价") -> FollowUp:
    return customer_services.followup_create(
        by=rep, customer=customer, assignee=rep, due_at=due_at, note=note
    )


def reminder(followup: FollowUp) -> ScheduledAction:
    return ScheduledAction.objects.get(
        kind=customer_services.FOLLOWUP_REMINDER, target_id=followup.pk
    )


def schedule(kind: str, due_at: datetime, n: int = 0) -> ScheduledAction:
    return services.action_schedule(
        kind=kind, target_id=1000 + n, due_at=due_at, key=f"{kind}:{n}"
    )


# --- D1: the action is written with the business change ------------------------------


@pytest.mark.django_db
def test_followup_writes_its_reminder_in_the_same_transaction(rep, customer, clock):
    due = NOW + timedelta(hours=2)
    followup = new_followup(rep, customer, due)
    action = reminder(followup)
    assert action.state == State.PENDING
    assert action.due_at == due
    assert action.idempotency_key == f"followup:{followup.pk}:remind"


@pytest.mark.django_db
def test_rolled_back_business_change_leaves_no_action(rep, customer, clock):
    with pytest.raises(RuntimeError), transaction.atomic():
        new_followup(rep, customer, NOW + timedelta(hours=1))
        customer_services.contact_log_create(
            by=rep,
            customer=customer,
            channel=ContactLog.Channel.PHONE,
            summary="电话沟通",
            next_step="发合同",
            next_step_at=NOW + timedelta(days=1),
        )
        assert ScheduledAction.objects.count() == 2
        raise RuntimeError("the request failed after the follow-ups were written")
    assert not FollowUp.objects.exists()
    assert not ContactLog.objects.exists()
    assert not ScheduledAction.objects.exists()


@pytest.mark.django_db
def test_rescheduling_moves_a_pending_action_but_not_a_claimed_one(clock):
    action = schedule("tests.any", NOW + timedelta(hours=1))
    moved = services.action_schedule(
        kind="tests.any",
        target_id=action.target_id,
        due_at=NOW + timedelta(hours=3),
        key=action.idempotency_key,
    )
    assert moved.pk == action.pk
    action.refresh_from_db()
    assert action.due_at == NOW + timedelta(hours=3)

    clock.shift(timedelta(hours=3))
    services.actions_sweep()
    services.action_schedule(
        kind="tests.any",
        target_id=action.target_id,
        due_at=NOW + timedelta(days=1),
        key=action.idempotency_key,
    )
    action.refresh_from_db()
    assert action.state == State.DISPATCHED
    assert action.due_at == NOW + timedelta(hours=3)
    assert ScheduledAction.objects.count() == 1


# --- D2: the sweeper ---------------------------------------------------------------------


@pytest.mark.django_db
def test_sweep_claims_only_due_rows_and_publishes_after_commit(
    clock, django_capture_on_commit_callbacks
):
    overdue = schedule("tests.any", NOW - timedelta(minutes=5), 1)
    due_now = schedule("tests.any", NOW, 2)
    future = schedule("tests.any", NOW + timedelta(seconds=1), 3)
    later = schedule("tests.any", NOW + timedelta(days=1), 4)
    cancelled = schedule("tests.any", NOW - timedelta(hours=1), 5)
    services.action_cancel(key=cancelled.idempotency_key)
    done = schedule("tests.any", NOW - timedelta(hours=1), 6)
    ScheduledAction.objects.filter(pk=done.pk).update(state=State.DONE, done_at=NOW)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        claimed = services.actions_sweep()

    assert claimed == [overdue.pk, due_now.pk]  # oldest first
    assert len(callbacks) == 1  # one publish of the claimed ids, after commit
    states = dict(ScheduledAction.objects.values_list("pk", "state"))
    assert states == {
        overdue.pk: State.DISPATCHED,
        due_now.pk: State.DISPATCHED,
        future.pk: State.PENDING,
        later.pk: State.PENDING,
        cancelled.pk: State.CANCELLED,
        done.pk: State.DONE,
    }
    for action in ScheduledAction.objects.filter(state=State.DISPATCHED):
        assert action.lease_until == NOW + timedelta(seconds=LEASE)

    # Swept again at once: nothing new is due, nothing claimed twice.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.actions_sweep() == []
    assert callbacks == []


@pytest.mark.django_db
def test_sweep_takes_at_most_limit_oldest_first(clock):
    actions = [schedule("tests.any", NOW - timedelta(minutes=n), n) for n in range(5)]
    oldest_first = [a.pk for a in reversed(actions)]
    assert services.actions_sweep(limit=2) == oldest_first[:2]
    assert services.actions_sweep(limit=2) == oldest_first[2:4]
    assert services.actions_sweep(limit=2) == oldest_first[4:]


def _in_thread(target: Callable[[], None], errors: list[BaseException]) -> Any:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_second_sweep_skips_rows_another_sweep_holds():
    """SKIP LOCKED: while one sweep's transaction is open, another neither waits nor
    takes its rows."""
    ids = {
        schedule("tests.any", datetime.now(UTC) - timedelta(minutes=1), n).pk
        for n in range(30)
    }
    first, second = [], []
    first_claimed, second_done, first_committed = (threading.Event() for _ in range(3))
    second_saw_first_open: list[bool] = []
    errors: list[BaseException] = []

    def first_sweep() -> None:
        with transaction.atomic():
            first.extend(services.actions_sweep(limit=10))
            first_claimed.set()
            # Keep the row locks until the other sweep has finished (or 10 s).
            second_done.wait(10)
        first_committed.set()

    def second_sweep() -> None:
        assert first_claimed.wait(10)
        second.extend(services.actions_sweep())
        second_saw_first_open.append(not first_committed.is_set())
        second_done.set()

    threads = [_in_thread(first_sweep, errors), _in_thread(second_sweep, errors)]
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert second_saw_first_open == [True], "the second sweep waited for the first"
    assert len(first) == 10
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == ids
    assert ScheduledAction.objects.filter(state=State.DISPATCHED).count() == 30


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_racing_never_claim_the_same_row():
    due = datetime.now(UTC) - timedelta(minutes=1)
    ids = {schedule("tests.any", due, n).pk for n in range(300)}
    claims: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sweeper(name: str) -> Callable[[], None]:
        def run() -> None:
            barrier.wait(10)
            while ScheduledAction.objects.filter(state=State.PENDING).exists():
                claims[name].extend(services.actions_sweep(limit=15))

        return run

    threads = [_in_thread(sweeper(name), errors) for name in claims]
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    counted = Counter(claims["a"] + claims["b"])
    assert set(counted) == ids
    assert max(counted.values()) == 1, [pk for pk, n in counted.items() if n > 1]


@pytest.mark.django_db
def test_expired_lease_is_dispatched_again(rep, customer, clock):
    followup = new_followup(rep, customer, NOW)
    action = reminder(followup)
    assert services.actions_sweep() == [action.pk]
    # The published message was lost (worker killed before it started, broker emptied).
    clock.shift(timedelta(seconds=LEASE - 1))
    assert services.actions_sweep() == []
    clock.shift(timedelta(seconds=2))
    assert services.actions_sweep() == [action.pk]
    action.refresh_from_db()
    assert action.state == State.DISPATCHED
    assert action.lease_until == NOW + timedelta(seconds=LEASE + 1 + LEASE)

    assert services.action_deliver(action_id=action.pk) is True
    assert (
        Notification.objects.filter(idempotency_key=action.idempotency_key).count() == 1
    )


@pytest.mark.django_db
def test_worker_killed_while_sending_is_redelivered_once(
    rep, customer, clock, mailoutbox
):
    """At-least-once kinds (staff reminders): a claim abandoned in `sending` is re-run
    after its lease, and the redelivery sends exactly once."""
    action = reminder(new_followup(rep, customer, NOW))
    services.actions_sweep()
    deliver_dying(action.pk, customer_services.FOLLOWUP_REMINDER)
    action.refresh_from_db()
    assert action.state == State.SENDING
    assert action.attempts == 1
    assert not Notification.objects.exists()  # rolled back with the dead handler

    clock.shift(timedelta(seconds=LEASE + 1))
    assert services.actions_sweep() == [action.pk]
    assert services.action_deliver(action_id=action.pk) is True
    action.refresh_from_db()
    assert action.state == State.DONE
    assert action.attempts == 2
    assert (
        Notification.objects.filter(idempotency_key=action.idempotency_key).count() == 1
    )
    assert len(mailoutbox) == 1


# --- D3: idempotent delivery -------------------------------------------------------------


@pytest.mark.django_db
def test_deliver_is_idempotent(rep, customer, clock, mailoutbox):
    followup = new_followup(rep, customer, NOW)
    action = reminder(followup)
    # Not yet claimed by a sweep: not ours to deliver.
    assert services.action_deliver(action_id=action.pk) is False

    services.actions_sweep()
    assert services.action_deliver(action_id=action.pk) is True
    # The same message delivered again (broker redelivery, duplicated publish).
    assert services.action_deliver(action_id=action.pk) is False
    # A late sweep after the action is done does not claim it again.
    clock.shift(timedelta(seconds=LEASE * 10))
    assert services.actions_sweep() == []
    assert services.action_deliver(action_id=action.pk) is False

    action.refresh_from_db()
    assert action.state == State.DONE
    assert action.done_at == NOW
    assert action.attempts == 1
    assert action.lease_until is None
    notifications = Notification.objects.filter(idempotency_key=action.idempotency_key)
    assert notifications.count() == 1
    assert notifications.get().recipient == rep
    followup.refresh_from_db()
    assert followup.reminded_at == NOW
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_reminder_email_is_sent_once_with_the_idempotency_key(
    rep, customer, clock, mailoutbox
):
    action = reminder(new_followup(rep, customer, NOW, note="确认签约时间"))
    services.actions_sweep()
    services.action_deliver(action_id=action.pk)
    services.action_deliver(action_id=action.pk)

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["rep@example.com"]
    assert message.extra_headers[KEY_HEADER] == action.idempotency_key
    assert message.message()[KEY_HEADER] == action.idempotency_key
    assert "王建国" in message.subject
    assert "确认签约时间" in message.body
    notification = Notification.objects.get(idempotency_key=action.idempotency_key)
    assert notification.emailed_at == NOW


@pytest.mark.django_db
def test_assignee_without_email_gets_the_bell_only(customer, team_a, clock, mailoutbox):
    quiet = UserFactory(username="no_mail", email="", team=team_a, role=Role.SALES)
    action = reminder(new_followup(quiet, customer, NOW))
    services.actions_sweep()
    assert services.action_deliver(action_id=action.pk) is True
    notification = Notification.objects.get(idempotency_key=action.idempotency_key)
    assert notification.recipient == quiet
    assert notification.emailed_at is None
    assert mailoutbox == []


@pytest.mark.django_db
def test_at_most_once_kind_stuck_in_sending_needs_review(kinds, clock):
    sent: list[str] = []
    kinds(
        "tests.customer_sms",
        lambda a: sent.append(a.idempotency_key),
        at_most_once=True,
    )
    action = schedule("tests.customer_sms", NOW)
    services.actions_sweep()
    deliver_dying(action.pk, "tests.customer_sms")
    action.refresh_from_db()
    assert action.state == State.SENDING

    clock.shift(timedelta(seconds=LEASE - 1))
    assert services.actions_sweep() == []
    action.refresh_from_db()
    assert action.state == State.SENDING  # lease still running: leave it alone

    clock.shift(timedelta(seconds=2))
    assert services.actions_sweep() == []  # not re-sent ...
    action.refresh_from_db()
    assert action.state == State.NEEDS_REVIEW  # ... but parked for a person
    assert action.last_error == "lease expired while sending"
    assert services.action_deliver(action_id=action.pk) is False
    clock.shift(timedelta(hours=1))
    assert services.actions_sweep() == []
    assert sent == []


@pytest.mark.django_db
def test_at_most_once_kind_never_started_is_dispatched_again(kinds, clock):
    """Only `sending` is ambiguous; a claim whose message never arrived is safe to redo."""
    sent: list[str] = []
    kinds(
        "tests.customer_sms",
        lambda a: sent.append(a.idempotency_key),
        at_most_once=True,
    )
    action = schedule("tests.customer_sms", NOW)
    assert services.actions_sweep() == [action.pk]
    clock.shift(timedelta(seconds=LEASE + 1))
    assert services.actions_sweep() == [action.pk]
    assert services.action_deliver(action_id=action.pk) is True
    assert sent == [action.idempotency_key]


@pytest.mark.django_db
def test_failing_handler_goes_back_to_pending_with_backoff(kinds, rep, clock):
    calls: list[int] = []

    def flaky(action: Any) -> None:
        calls.append(action.attempts)
        # Written inside the delivery transaction: must vanish with the failure.
        Notification.objects.create(
            recipient=rep, title="partial", idempotency_key=f"partial:{len(calls)}"
        )
        if len(calls) == 1:
            raise ConnectionError("provider down")

    kinds("tests.flaky", flaky)
    action = schedule("tests.flaky", NOW)
    services.actions_sweep()
    assert services.action_deliver(action_id=action.pk) is False
    action.refresh_from_db()
    assert action.state == State.PENDING
    assert action.attempts == 1
    assert action.lease_until is None
    assert action.last_error == "ConnectionError: provider down"
    assert action.due_at == NOW + timedelta(seconds=20)  # 10 s x 2 ** attempts
    assert not Notification.objects.exists()

    clock.shift(timedelta(seconds=19))
    assert services.actions_sweep() == []  # not before the back-off has passed
    clock.shift(timedelta(seconds=1))
    assert services.actions_sweep() == [action.pk]
    assert services.action_deliver(action_id=action.pk) is True
    action.refresh_from_db()
    assert action.state == State.DONE
    assert action.last_error == ""
    assert action.attempts == 2
    assert calls == [1, 2]
    assert list(Notification.objects.values_list("idempotency_key", flat=True)) == [
        "partial:2"
    ]


@pytest.mark.django_db
def test_backoff_doubles_and_is_capped(kinds, clock):
    def broken(action: Any) -> None:
        raise ValueError("bad template")

    kinds("tests.broken", broken)
    action = schedule("tests.broken", NOW)
    delays = []
    for _ in range(6):
        services.actions_sweep()
        services.action_deliver(action_id=action.pk)
        action.refresh_from_db()
        delays.append((action.due_at - timezone.now()).total_seconds())
        clock.move_to(action.due_at, tick=False)
    assert delays == [20, 40, 80, 160, 300, 300]
    assert action.attempts == 6
    assert action.last_error == "ValueError: bad template"


# --- follow-ups: completion and cancellation ---------------------------------------------


@pytest.mark.django_db
def test_completing_a_followup_cancels_its_reminder(rep, customer, clock, mailoutbox):
    followup = new_followup(rep, customer, NOW + timedelta(hours=1))
    customer_services.followup_complete(by=rep, followup=followup)
    action = reminder(followup)
    assert action.state == State.CANCELLED
    clock.shift(timedelta(hours=2))
    assert services.actions_sweep() == []
    assert services.action_deliver(action_id=action.pk) is False
    assert not Notification.objects.exists()
    assert mailoutbox == []


@pytest.mark.django_db
def test_completing_after_dispatch_cancels_the_queued_delivery(
    rep, customer, clock, mailoutbox
):
    followup = new_followup(rep, customer, NOW)
    action = reminder(followup)
    services.actions_sweep()  # the message is on its way to a worker
    customer_services.followup_complete(by=rep, followup=followup)
    assert services.action_deliver(action_id=action.pk) is False
    action.refresh_from_db()
    assert action.state == State.CANCELLED
    assert not Notification.objects.exists()
    assert mailoutbox == []


@pytest.mark.django_db
def test_reminder_of_a_followup_completed_meanwhile_sends_nothing(
    rep, customer, clock, mailoutbox
):
    """The follow-up is completed while its reminder sits in `sending` (a worker died
    there), so cancelling cannot touch it; the redelivery must still send nothing."""
    followup = new_followup(rep, customer, NOW)
    action = reminder(followup)
    services.actions_sweep()
    deliver_dying(action.pk, customer_services.FOLLOWUP_REMINDER)
    customer_services.followup_complete(by=rep, followup=followup)
    action.refresh_from_db()
    assert action.state == State.SENDING

    clock.shift(timedelta(seconds=LEASE + 1))
    assert services.actions_sweep() == [action.pk]
    assert services.action_deliver(action_id=action.pk) is True
    action.refresh_from_db()
    assert action.state == State.DONE
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.DONE
    assert followup.reminded_at is None
    assert not Notification.objects.exists()
    assert mailoutbox == []
