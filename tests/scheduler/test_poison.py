"""A poison action cannot block the pipeline (issue 11, finding 1; docs/reliability.md).

A poison is an action whose delivery fails every time: its handler always raises, its
kind's batch handler raises for the whole group, or its row cannot even be read back
(a due time in year 0001 BC, which PostgreSQL stores and psycopg cannot convert). In
each case the other actions of its chunk are delivered on their first delivery, and the
poison is retried with back-off until KEHU_ACTION_MAX_ATTEMPTS, then parked as
`needs_review` with its `last_error`. Real PostgreSQL, the real follow-up reminder kind
and Django's in-memory outbox; time moves with time-machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from crm.accounts.roles import Role
from crm.core import bounds
from crm.notifications.models import Notification
from crm.scheduler import registry, services
from crm.scheduler.models import ScheduledAction
from customers import services as customer_services
from customers.models import FollowUp
from tests.factories import CustomerFactory, UserFactory
from tests.scheduler.conftest import LEASE, NOW

State = ScheduledAction.State
POISON = "tests.poison"
DUE = NOW + timedelta(minutes=1)


class Poisoned(RuntimeError):
    pass


@pytest.fixture
def kinds() -> Iterator[Callable[..., None]]:
    saved = dict(registry._KINDS)
    yield registry.register
    registry._KINDS.clear()
    registry._KINDS.update(saved)


@pytest.fixture
def reps(team_a, team_b):
    return [
        UserFactory(
            username="sales1", email="s1@example.com", team=team_a, role=Role.SALES
        ),
        UserFactory(
            username="sales2", email="s2@example.com", team=team_b, role=Role.SALES
        ),
    ]


def followups(rep: Any, n: int, *, start: int = 0) -> list[FollowUp]:
    customer = CustomerFactory(owner=rep, name=f"客户{rep.username}{start}")
    return [
        customer_services.followup_create(
            by=rep,
            customer=customer,
            assignee=rep,
            due_at=DUE,
            note=f"回访 {start + i}",
        )
        for i in range(n)
    ]


def reminders(items: list[FollowUp]) -> list[ScheduledAction]:
    return list(
        ScheduledAction.objects.filter(
            kind=customer_services.FOLLOWUP_REMINDER,
            target_id__in=[f.pk for f in items],
        )
    )


def poison(n: int) -> ScheduledAction:
    return services.action_schedule(
        kind=POISON, target_id=n, due_at=DUE, key=f"{POISON}:{n}"
    )


def sweep_and_deliver(now: Any) -> list[int]:
    """What beat and a worker do: one sweep, then each published chunk."""
    ids = services.actions_sweep(now=now)
    delivered = []
    for start in range(0, len(ids), services.DELIVERY_CHUNK):
        chunk = ids[start : start + services.DELIVERY_CHUNK]
        delivered += services.actions_deliver(action_ids=chunk, now=now)
    return delivered


def until_parked(action: ScheduledAction, clock: Any) -> list[float]:
    """Retry the action each time its back-off ends; the delays seen, in seconds."""
    delays = []
    for _ in range(50):
        action.refresh_from_db()
        if action.state != State.PENDING:
            break
        delays.append((action.due_at - timezone.now()).total_seconds())
        clock.move_to(action.due_at, tick=False)
        sweep_and_deliver(timezone.now())
    return delays


@pytest.mark.django_db
def test_a_handler_that_always_raises_is_parked_and_its_chunk_goes_out_on_time(
    kinds, reps, clock, settings
):
    assert settings.KEHU_ACTION_MAX_ATTEMPTS == 7

    def always_raises(action: Any) -> None:
        raise Poisoned(f"template broken for #{action.target_id}")

    kinds(POISON, always_raises)
    healthy = followups(reps[0], 10) + followups(reps[1], 10)
    bad = [poison(1), poison(2)]
    clock.move_to(DUE, tick=False)

    delivered = sweep_and_deliver(DUE)

    good = reminders(healthy)
    assert sorted(delivered) == sorted(a.pk for a in good)
    assert {(a.state, a.attempts, a.done_at) for a in good} == {(State.DONE, 1, DUE)}
    assert len(mail.outbox) == 20
    assert Notification.objects.count() == 20
    for action in bad:
        action.refresh_from_db()
        assert action.state == State.PENDING
        assert action.attempts == 1
        assert action.due_at == DUE + timedelta(seconds=20)
        assert action.last_error == f"Poisoned: template broken for #{action.target_id}"

    delays = until_parked(bad[0], clock)

    assert delays == [20, 40, 80, 160, 300, 300]  # then the 7th delivery fails too
    for action in bad:
        action.refresh_from_db()
        assert action.state == State.NEEDS_REVIEW
        assert action.attempts == 7
        assert action.lease_until is None
        assert action.last_error == f"Poisoned: template broken for #{action.target_id}"
    # Parked for good: later sweeps leave it alone.
    clock.shift(timedelta(days=1))
    assert services.actions_sweep() == []
    assert len(mail.outbox) == 20


@pytest.mark.django_db
def test_max_attempts_is_a_setting(kinds, clock, settings):
    settings.KEHU_ACTION_MAX_ATTEMPTS = 2
    settings.KEHU_ACTION_BACKOFF_SECONDS = 1

    def always_raises(action: Any) -> None:
        raise Poisoned("no")

    kinds(POISON, always_raises)
    action = poison(1)
    clock.move_to(DUE, tick=False)
    sweep_and_deliver(DUE)
    assert until_parked(action, clock) == [2]
    action.refresh_from_db()
    assert (action.state, action.attempts) == (State.NEEDS_REVIEW, 2)


@pytest.mark.django_db
def test_a_failing_batch_handler_costs_only_the_action_at_fault(kinds, clock):
    single_calls: list[int] = []
    batch_sizes: list[int] = []

    def check(action: Any) -> None:
        if action.target_id < 0:
            raise Poisoned(f"bad target {action.target_id}")

    def one(action: Any) -> None:
        single_calls.append(action.target_id)
        check(action)

    def batch(actions: list[Any]) -> None:
        # Fails the whole group as soon as one action in it is bad.
        batch_sizes.append(len(actions))
        for action in actions:
            check(action)

    kinds("tests.batched", one, batch_handler=batch)
    healthy = [
        services.action_schedule(
            kind="tests.batched", target_id=n, due_at=DUE, key=f"tests.batched:{n}"
        )
        for n in range(1, 50)
    ]
    bad = services.action_schedule(
        kind="tests.batched", target_id=-1, due_at=DUE, key="tests.batched:-1"
    )
    clock.move_to(DUE, tick=False)

    delivered = sweep_and_deliver(DUE)

    assert sorted(delivered) == sorted(a.pk for a in healthy)
    assert (
        ScheduledAction.objects.filter(
            pk__in=delivered, state=State.DONE, attempts=1, done_at=DUE
        ).count()
        == 49
    )
    # Halving finds the poison in a dozen batch calls; only it goes one by one.
    assert batch_sizes[0] == 50
    assert len(batch_sizes) <= 2 * 6 + 1
    assert single_calls == [-1]
    assert until_parked(bad, clock) == [20, 40, 80, 160, 300, 300]
    bad.refresh_from_db()
    assert bad.state == State.NEEDS_REVIEW
    assert bad.attempts == 7
    assert bad.last_error == "Poisoned: bad target -1"


def _store_unreadable_action(target_id: int) -> int:
    """An action due in year 0001 BC, as issue 11's finding 1 stored one.

    The check constraint refuses such a row now, so it is dropped for this test only
    (the test's transaction rolls the ALTER TABLE back): this is a row written before
    the constraint existed, or one a future column will hold that psycopg cannot read.
    """
    table = ScheduledAction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT action_due_at_in_range")
        cursor.execute(
            f"INSERT INTO {table} (kind, target_id, due_at, state, attempts,"  # noqa: S608 - the model's table
            " idempotency_key, last_error, created_at)"
            " VALUES (%s, %s, '0001-12-31 00:00:00+00 BC', 'pending', 0, %s, '', now())"
            " RETURNING id",
            [
                customer_services.FOLLOWUP_REMINDER,
                target_id,
                f"followup:{target_id}:remind:bc",
            ],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_an_unreadable_row_is_parked_and_the_rest_of_its_chunk_is_delivered(
    reps, clock
):
    theirs = followups(reps[1], 1)
    bad_pk = _store_unreadable_action(theirs[0].pk)
    with pytest.raises(Exception, match="before year 1"):
        ScheduledAction.objects.get(pk=bad_pk)
    mine = followups(reps[0], 8)
    clock.move_to(DUE, tick=False)

    ids = services.actions_sweep(now=DUE)
    # The sweep reads ids only: the bad row does not stop it, and is claimed first.
    assert ids[0] == bad_pk
    assert len(ids) == 10

    delivered = services.actions_deliver(action_ids=ids, now=DUE)

    good = reminders(mine + theirs)
    good = [a for a in good if a.pk != bad_pk]
    assert sorted(delivered) == sorted(a.pk for a in good)
    assert {(a.state, a.attempts) for a in good} == {(State.DONE, 1)}
    assert len(mail.outbox) == 9
    parked = ScheduledAction.objects.get(pk=bad_pk)  # readable again
    assert parked.state == State.NEEDS_REVIEW
    assert parked.lease_until is None
    assert parked.last_error.startswith("unreadable row: DataError:")
    assert "before year 1" in parked.last_error
    assert parked.last_error.endswith("due_at was 0001-12-31 00:00:00+00 BC")
    assert parked.due_at == bounds.DB_DATETIME_MIN
    # Nothing comes back: the sweep of a day later finds no work.
    clock.shift(timedelta(days=1))
    assert services.actions_sweep() == []


@pytest.mark.django_db
def test_an_unreadable_row_sent_alone_is_parked(reps, clock):
    bad_pk = _store_unreadable_action(followups(reps[1], 1)[0].pk)
    clock.move_to(DUE, tick=False)
    assert services.actions_sweep(now=DUE)[0] == bad_pk
    assert services.action_deliver(action_id=bad_pk, now=DUE) is False
    assert ScheduledAction.objects.get(pk=bad_pk).state == State.NEEDS_REVIEW


class WorkerKilled(BaseException):
    """Stands for SIGKILL or a hang: nothing in the service catches it."""


@pytest.mark.django_db
def test_an_action_that_kills_its_worker_every_time_is_parked_by_the_sweep(
    kinds, reps, clock
):
    def kills(action: Any) -> None:
        raise WorkerKilled

    kinds(POISON, kills)
    action = poison(1)
    now = DUE
    for attempt in range(1, 8):
        ids = services.actions_sweep(now=now)
        assert action.pk in ids
        with pytest.raises(WorkerKilled):
            services.actions_deliver(action_ids=ids, now=now)
        action.refresh_from_db()
        assert (action.state, action.attempts) == (State.SENDING, attempt)
        now += timedelta(seconds=LEASE + 1)

    healthy = followups(reps[0], 2)
    ids = services.actions_sweep(now=now + timedelta(minutes=1))

    action.refresh_from_db()
    assert action.pk not in ids
    assert action.state == State.NEEDS_REVIEW
    assert action.last_error == "lease expired while sending, on every attempt"
    assert sorted(ids) == sorted(a.pk for a in reminders(healthy))


@pytest.mark.django_db
def test_the_constraint_refuses_a_due_time_out_of_range(clock):
    from django.db import IntegrityError, transaction

    for year in (1, 1998, 2201, 9999):
        with pytest.raises(IntegrityError), transaction.atomic():
            services.action_schedule(
                kind=POISON,
                target_id=1,
                due_at=DUE.replace(year=year),
                key=f"{POISON}:{year}",
            )
    assert not ScheduledAction.objects.exists()
