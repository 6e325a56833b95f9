"""Schedule, sweep and deliver ScheduledActions (docs/reliability.md D1-D3)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.scheduler import registry
from crm.scheduler.models import DUE_AT_MAX, DUE_AT_MIN, ScheduledAction

logger = logging.getLogger(__name__)
State = ScheduledAction.State
SWEEP_BATCH = 500
# Ids per delivery message: a worker claims, loads and marks a chunk in a constant number
# of statements, instead of paying ~17 statements and a Celery message per action.
DELIVERY_CHUNK = 50
# Each delivery message carries, in this header, the lease its sweep gave the ids in it,
# so the sweep can tell a row whose message still waits in the broker from one whose
# message was lost (see actions_sweep and tasks.reclaim_before).
LEASE_HEADER = "kehu_lease_until"
# When the broker's queue cannot be read: an expired `dispatched` lease is taken back
# only when fewer delivery messages than this wait in the broker (at most one chunk).
RECLAIM_QUEUED_BELOW = 2
# `reclaim_before` when no delivery message waits: every expired lease may be taken back.
NOTHING_QUEUED = datetime.max.replace(tzinfo=UTC)


def action_schedule(
    *, kind: str, target_id: int, due_at: datetime, key: str
) -> ScheduledAction:
    """Create the action, or move a still-pending one with the same key to `due_at`.

    A cancelled action with the same key is armed again (a deadline that comes back,
    e.g. after a pause over lunch); a done one stays done, so nothing is sent twice.
    Call inside the business transaction: the action then exists exactly when the
    business change does.
    """
    action, created = ScheduledAction.objects.get_or_create(
        idempotency_key=key,
        defaults={"kind": kind, "target_id": target_id, "due_at": due_at},
    )
    if not created and action.state in (State.PENDING, State.CANCELLED):
        ScheduledAction.objects.filter(
            pk=action.pk, state__in=[State.PENDING, State.CANCELLED]
        ).update(due_at=due_at, state=State.PENDING, lease_until=None)
        action.due_at, action.state = due_at, State.PENDING
    return action


def action_cancel(*, key: str) -> int:
    """Cancel a not-yet-delivered action; returns how many rows changed (0 or 1)."""
    return ScheduledAction.objects.filter(
        idempotency_key=key, state__in=[State.PENDING, State.DISPATCHED]
    ).update(state=State.CANCELLED)


def actions_sweep(
    *,
    now: datetime | None = None,
    limit: int = SWEEP_BATCH,
    broker_backlog: int = 0,
    reclaim_before: datetime | None = None,
) -> list[int]:
    """Claim due and abandoned actions and publish them to the workers.

    Safe to run twice at once (SKIP LOCKED: each row goes to one sweeper) and after any
    crash: a claim is a lease, and an expired lease is claimed again.

    `broker_backlog` is how many published delivery messages still wait in the broker
    (each carries up to DELIVERY_CHUNK ids). While the workers are behind (down,
    restarting, slow), the rows behind those messages are queued, not lost: claiming
    more, or publishing a `dispatched` row again because its lease ran out in the queue,
    only fills the broker with copies the workers must then wade through (`make chaos`
    saw 19,500 messages for 4,000 rows). So the sweep keeps at most about SWEEP_BATCH
    rows waiting (counting every waiting message as a full chunk).

    `reclaim_before` is the earliest lease carried by a delivery message still queued
    (NOTHING_QUEUED when none is). A message carries the lease its sweep gave its rows,
    and a later sweep gives a later lease, so an expired `dispatched` row whose lease
    ends before that has no message left in the queue: it was lost (Redis restarted
    empty, the publish failed) or taken by a worker that died before claiming it. Such a
    row is taken back whatever the backlog; one whose message still waits is not. None
    when the queue could not be read: an expired `dispatched` row is then taken back
    only when at most one message waits.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.KEHU_ACTION_LEASE_SECONDS)
    at_most_once = registry.at_most_once_kinds()
    limit = min(limit, sweep_limit(broker_backlog))
    # A worker that died mid-delivery left no message anywhere: its rows come back at once.
    abandoned = Q(state=State.SENDING, lease_until__lt=now)
    if reclaim_before is not None:
        abandoned |= Q(state=State.DISPATCHED, lease_until__lt=min(now, reclaim_before))
    elif broker_backlog < RECLAIM_QUEUED_BELOW:
        abandoned |= Q(state=State.DISPATCHED, lease_until__lt=now)
    with transaction.atomic():
        # A customer-facing message that may already have gone out is never re-sent.
        if at_most_once:
            ScheduledAction.objects.filter(
                state=State.SENDING, lease_until__lt=now, kind__in=at_most_once
            ).update(state=State.NEEDS_REVIEW, last_error="lease expired while sending")
        # An action whose delivery killed or hung its worker every time (no handler
        # error was ever recorded) is a poison too: after max_attempts claims it waits
        # for a person instead of taking a worker down once a lease.
        ScheduledAction.objects.filter(
            state=State.SENDING, lease_until__lt=now, attempts__gte=max_attempts()
        ).update(
            state=State.NEEDS_REVIEW,
            lease_until=None,
            last_error="lease expired while sending, on every attempt",
        )
        if limit <= 0:
            return []
        due = (
            ScheduledAction.objects.filter(
                Q(state=State.PENDING, due_at__lte=now) | abandoned
            )
            .order_by("due_at")
            .select_for_update(skip_locked=True, no_key=True)
            .values_list("pk", flat=True)[:limit]
        )
        ids = list(due)
        if ids:
            lease_until = now + lease
            ScheduledAction.objects.filter(pk__in=ids).update(
                state=State.DISPATCHED, lease_until=lease_until
            )
            transaction.on_commit(lambda: _publish(ids, lease_until=lease_until))
    return ids


def sweep_limit(broker_backlog: int) -> int:
    """How many rows a sweep may claim while `broker_backlog` delivery messages wait
    (each counted as a full chunk); 0 or less: none."""
    return min(SWEEP_BATCH, SWEEP_BATCH - broker_backlog * DELIVERY_CHUNK)


def _publish(ids: list[int], *, lease_until: datetime) -> None:
    from crm.scheduler.tasks import action_deliver_many_task

    headers = {LEASE_HEADER: lease_until.isoformat()}
    for start in range(0, len(ids), DELIVERY_CHUNK):
        chunk = ids[start : start + DELIVERY_CHUNK]
        try:
            action_deliver_many_task.apply_async(args=[chunk], headers=headers)
        except Exception:  # noqa: BLE001 - broker down: the lease expires, the sweeper retries
            logger.warning(
                "could not publish actions %s..; the sweeper will retry", chunk[0]
            )
            return


def max_attempts() -> int:
    """Deliveries an action gets before it is parked as `needs_review`."""
    return max(1, int(settings.KEHU_ACTION_MAX_ATTEMPTS))


def retry_delay(attempts: int) -> timedelta:
    """The back-off after the `attempts`-th failed delivery: the base doubled each
    time (20 s, 40 s, 80 s ... with the default base of 10 s), at most 30 x the base."""
    base = float(settings.KEHU_ACTION_BACKOFF_SECONDS)
    return timedelta(seconds=min(30 * base, base * 2 ** min(attempts, 16)))


def action_deliver(*, action_id: int, now: datetime | None = None) -> bool:
    """Carry out one action exactly once from the database's point of view.

    Returns True if this call delivered it, False if it was not ours to deliver
    (already done, cancelled, or taken by another worker) or it failed.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.KEHU_ACTION_LEASE_SECONDS)
    # The conditional UPDATE is the claim: of two workers given the same id, one wins.
    claimed = ScheduledAction.objects.filter(
        pk=action_id, state=State.DISPATCHED
    ).update(state=State.SENDING, attempts=F("attempts") + 1, lease_until=now + lease)
    if not claimed:
        return False
    return action_id in _deliver_loaded(_load([action_id]), batch=False)


# ASYNC_COMMIT: the commits of a chunk that may skip waiting for the WAL flush.
# PostgreSQL applies such a commit before it answers (other sessions see it, a killed
# worker loses nothing); only a crash of PostgreSQL or its machine can lose the last of
# them (at most 3 x wal_writer_delay). The WAL is replayed in order, so such a crash
# loses them together with everything written after them, and a batch group's done
# mark is written last and committed synchronously: a group whose done mark survived
# has every earlier write durable, and a group whose done mark was lost is still
# `sending` with a lease, so the sweep takes it back and the idempotent batch handler
# carries it out again. So a batch handler's business writes (`batch_transaction`)
# and the record of each e-mail (crm.notifications) skip the flush: one flush per group
# after its claim (the done mark) instead of two. What such a crash can cost is a
# second copy of e-mails that had left, the staff channel's at-least-once
# (docs/reliability.md). Batch handlers are never at-most-once (registry). The claim
# itself stays synchronous: an at-most-once action whose claim a crash lost would be
# `dispatched` again and sent a second time, instead of parked as `needs_review`.
ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


# Rows are locked in id order, so two workers with overlapping chunks wait for each
# other instead of deadlocking; the waiter then sees the row is `sending`.
# `state || ''` (here and in _DONE_MARK) keeps the planner on the primary key: with
# `state = ...` it may take the partial index action_leased, which it believes nearly
# empty while statistics predate the sweep, and a sweep of 10,000 has just leased them
# all, so each chunk read every leased row and kept its 50 (issue 18: 8 ms a chunk
# against 0.1 ms on the small bench data, for both the claim and the done mark).
_CLAIM_CHUNK = f"""
    WITH claim AS (
        SELECT id FROM {ScheduledAction._meta.db_table}
        WHERE id = ANY(%s) AND state || '' = %s
        ORDER BY id
        FOR NO KEY UPDATE
    )
    UPDATE {ScheduledAction._meta.db_table} AS action
    SET state = %s, attempts = action.attempts + 1, lease_until = %s
    FROM claim WHERE action.id = claim.id
    RETURNING action.id
"""  # noqa: S608  # nosec B608 - the model's table name, values as parameters

# A group's done mark (see _CLAIM_CHUNK for `state || ''`).
_DONE_MARK = f"""
    UPDATE {ScheduledAction._meta.db_table}
    SET state = %s, done_at = %s, lease_until = NULL, last_error = ''
    WHERE id = ANY(%s) AND state || '' = %s
"""  # noqa: S608  # nosec B608 - the model's table name, values as parameters


def actions_deliver(*, action_ids: list[int], now: datetime | None = None) -> list[int]:
    """Carry out a chunk of actions, each exactly once from the database's point of view.

    One statement claims every id still `dispatched` (of two workers given overlapping
    chunks, each row goes to one), one loads them; a kind with a batch handler is then
    carried out and marked done as a group, any other kind one by one as in
    `action_deliver`. Returns the ids this call delivered.

    A failure stays with its own action: a row that cannot be loaded is parked, a batch
    that raises is delivered again in halves, and a handler that raises puts only its
    action back with back-off (`needs_review` after `max_attempts()`); the rest of the
    chunk is delivered on time (docs/reliability.md, "A poison action").
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.KEHU_ACTION_LEASE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_CHUNK,
            [list(action_ids), State.DISPATCHED, State.SENDING, now + lease],
        )
        claimed = [row[0] for row in cursor.fetchall()]
    if not claimed:
        return []
    return _deliver_loaded(_load(claimed))


@contextmanager
def batch_transaction() -> Iterator[None]:
    """`transaction.atomic()` for a batch handler's business writes (flags, in-app
    notifications) whose commit does not wait for the WAL flush (ASYNC_COMMIT).

    Only when it is the outermost transaction, as in a worker; inside a caller's
    transaction (a test, a shell) it is a savepoint and changes nothing of the caller's.
    """
    outermost = connection.get_autocommit()
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute(ASYNC_COMMIT)
        yield


def _load(ids: list[int]) -> list[ScheduledAction]:
    """The claimed rows, in due order; rows that cannot be read are parked.

    One query for the chunk. If it fails (a value psycopg cannot convert, such as a
    timestamp before year 1 stored by an unchecked form), each id is loaded alone, so
    one unreadable row costs only itself.
    """
    queryset = ScheduledAction.objects.order_by("due_at")
    try:
        return list(queryset.filter(pk__in=ids))
    except (OperationalError, InterfaceError):
        # The database, not a row: the rows stay `sending` and their lease brings
        # them back once it answers again.
        raise
    except Exception:  # noqa: BLE001 - any row may be unreadable: find which, below
        logger.warning("could not load actions %s..; loading them one by one", ids[0])
    actions = []
    for pk in ids:
        try:
            # A savepoint: an error raised by the server must not end the transaction
            # a caller may hold (tests, a shell).
            with transaction.atomic():
                actions.extend(queryset.filter(pk=pk))
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - this row only
            _park_unreadable(pk, exc)
    return actions


def _park_unreadable(pk: int, exc: Exception) -> None:
    """Park a row without reading it: SQL that names no value it returns.

    The due time is brought into range (its old value is kept, as text, in
    `last_error`) so that the admin list and a retry can read the row again.
    """
    table = ScheduledAction._meta.db_table
    error = f"unreadable row: {type(exc).__name__}: {exc}"[:1500]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table}
                SET state = %s, lease_until = NULL,
                    last_error = %s || '; due_at was ' || due_at::text,
                    due_at = LEAST(GREATEST(due_at, %s), %s)
                WHERE id = %s AND state = %s
                """,  # noqa: S608  # nosec B608 - the model's table name, values as parameters
                [
                    State.NEEDS_REVIEW,
                    error,
                    DUE_AT_MIN,
                    DUE_AT_MAX,
                    pk,
                    State.SENDING,
                ],
            )
    except Exception:  # noqa: BLE001 - the lease brings it back; max_attempts parks it
        logger.exception("could not park unreadable action %s", pk)
        return
    logger.error("action %s cannot be read; parked as needs_review: %s", pk, exc)


def _deliver_loaded(actions: list[ScheduledAction], *, batch: bool = True) -> list[int]:
    by_kind: dict[str, list[ScheduledAction]] = {}
    for action in actions:
        by_kind.setdefault(action.kind, []).append(action)
    delivered: list[int] = []
    for kind_name, group in by_kind.items():
        try:
            kind = registry.get(kind_name)
        except KeyError:
            _park_unknown(group)
            continue
        if batch and kind.batch_handler is not None:
            delivered.extend(_deliver_halving(group, kind))
            continue
        delivered.extend(action.pk for action in group if _deliver_one(action, kind))
    return delivered


def _deliver_halving(actions: list[ScheduledAction], kind: registry.Kind) -> list[int]:
    """The group through its batch handler; if that raises, each half again, down to
    single actions, which go through the single handler with their own back-off.

    One poison in a chunk of 50 then costs about a dozen batch calls, not 50 single
    deliveries of ~17 statements each, so the rest of its chunk stays on time.
    """
    if _deliver_group(actions, kind):
        return [action.pk for action in actions]
    if len(actions) == 1:
        return [actions[0].pk] if _deliver_one(actions[0], kind) else []
    middle = len(actions) // 2
    return _deliver_halving(actions[:middle], kind) + _deliver_halving(
        actions[middle:], kind
    )


def _park_unknown(actions: list[ScheduledAction]) -> None:
    # A kind no handler knows (renamed, or an old worker mid-deploy) needs a person.
    ScheduledAction.objects.filter(
        pk__in=[action.pk for action in actions], state=State.SENDING
    ).update(
        state=State.NEEDS_REVIEW,
        lease_until=None,
        last_error=f"no handler registered for kind {actions[0].kind!r}",
    )
    logger.error(
        "actions %s have unknown kind %s",
        [action.pk for action in actions],
        actions[0].kind,
    )


def _deliver_group(actions: list[ScheduledAction], kind: registry.Kind) -> bool:
    """Run the kind's batch handler, then mark the group done in one UPDATE.

    Not one transaction: a batch handler that e-mails commits the record of each e-mail
    as it leaves (registry), so that a worker killed mid-batch resends at most one, as
    the single path does. A kill after the handler and before this UPDATE leaves the
    rows `sending`; the sweep takes them back and the idempotent handler finds them
    delivered. False when the handler (or the done mark) raised: the caller then
    delivers each half again (`_deliver_halving`), down to the action at fault, which
    gets its own backoff and `last_error`.
    """
    try:
        kind.batch_handler(actions)
        with connection.cursor() as cursor:
            cursor.execute(
                _DONE_MARK,
                [
                    State.DONE,
                    timezone.now(),
                    [action.pk for action in actions],
                    State.SENDING,
                ],
            )
    except Exception:
        logger.warning(
            "batch of %d %s actions failed; delivering it again in halves",
            len(actions),
            kind.name,
            exc_info=True,
        )
        return False
    return True


def _deliver_one(action: ScheduledAction, kind: registry.Kind) -> bool:
    try:
        with transaction.atomic():
            kind.handler(action)
            ScheduledAction.objects.filter(pk=action.pk, state=State.SENDING).update(
                state=State.DONE,
                done_at=timezone.now(),
                lease_until=None,
                last_error="",
            )
    except Exception as exc:  # noqa: BLE001 - recorded on the row and logged by _fail
        _fail(action, exc)
        return False
    return True


def _fail(action: ScheduledAction, exc: Exception) -> None:
    """Back off, or park as `needs_review` once the action had max_attempts()."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    try:
        if action.attempts >= max_attempts():
            ScheduledAction.objects.filter(pk=action.pk, state=State.SENDING).update(
                state=State.NEEDS_REVIEW, lease_until=None, last_error=error
            )
            logger.error(
                "action %s failed %d times; needs review",
                action.pk,
                action.attempts,
                exc_info=exc,
            )
            return
        retry_at = timezone.now() + retry_delay(action.attempts)
        ScheduledAction.objects.filter(pk=action.pk, state=State.SENDING).update(
            state=State.PENDING, due_at=retry_at, lease_until=None, last_error=error
        )
        logger.warning(
            "action %s failed; retry at %s", action.pk, retry_at, exc_info=exc
        )
    except Exception:  # noqa: BLE001 - the next action in the chunk must still go
        # The row stays `sending`: its lease brings it back, and the sweep parks it
        # once it has had max_attempts().
        logger.exception("could not record the failure of action %s", action.pk)


# --- what an admin does with a parked action ------------------------------------------


def actions_needing_review_count() -> int:
    return ScheduledAction.objects.filter(state=State.NEEDS_REVIEW).count()


def _parked_for_admin(by: Any, action_id: int) -> ScheduledAction:
    from crm.accounts.roles import Role

    if getattr(by, "role", None) != Role.ADMIN:
        raise PermissionDenied
    action = (
        ScheduledAction.objects.select_for_update(no_key=True)
        .filter(pk=action_id)
        .first()
    )
    if action is None or action.state != State.NEEDS_REVIEW:
        # Another admin handled it meanwhile, or the id was never parked.
        raise ValidationError({"state": _("该动作已不在待人工核查状态。")})
    return action


@transaction.atomic
def action_retry(*, by: Any, action_id: int) -> ScheduledAction:
    """Send a parked action again now, with a fresh set of attempts."""
    from crm.core import audit

    action = _parked_for_admin(by, action_id)
    action.state = State.PENDING
    action.due_at = timezone.now()
    action.attempts = 0
    action.lease_until = None
    action.full_clean(exclude=["idempotency_key"])
    action.save(update_fields=["state", "due_at", "attempts", "lease_until"])
    audit.record(
        None,
        audit.ACTION_RETRIED,
        user=by,
        obj=action,
        detail=f"{action.kind} #{action.target_id}",
    )
    return action


@transaction.atomic
def action_dismiss(*, by: Any, action_id: int) -> ScheduledAction:
    """Cancel a parked action for good: it will not be delivered."""
    from crm.core import audit

    action = _parked_for_admin(by, action_id)
    action.state = State.CANCELLED
    action.lease_until = None
    action.save(update_fields=["state", "lease_until"])
    audit.record(
        None,
        audit.ACTION_CANCELLED,
        user=by,
        obj=action,
        detail=f"{action.kind} #{action.target_id}",
    )
    return action
