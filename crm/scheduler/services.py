"""Schedule, sweep and deliver ScheduledActions (docs/reliability.md D1-D3)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from crm.scheduler import registry
from crm.scheduler.models import ScheduledAction

logger = logging.getLogger(__name__)
State = ScheduledAction.State
SWEEP_BATCH = 500
# An expired `dispatched` lease is taken back only when fewer deliveries than this wait
# in the broker (see actions_sweep).
RECLAIM_QUEUED_BELOW = 50


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
    *, now: datetime | None = None, limit: int = SWEEP_BATCH, broker_backlog: int = 0
) -> list[int]:
    """Claim due and abandoned actions and publish them to the workers.

    Safe to run twice at once (SKIP LOCKED: each row goes to one sweeper) and after any
    crash: a claim is a lease, and an expired lease is claimed again.

    `broker_backlog` is how many published deliveries still wait in the broker. While
    the workers are behind (down, restarting, slow), the rows behind those messages are
    queued, not lost: claiming more, or publishing a `dispatched` row again because its
    lease ran out in the queue, only fills the broker with copies the workers must then
    wade through (`make chaos` saw 19,500 messages for 4,000 rows). So the sweep keeps at
    most SWEEP_BATCH messages waiting, and takes an expired `dispatched` row back only
    when the queue is nearly empty -- which it is after Redis lost its messages.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.KEHU_ACTION_LEASE_SECONDS)
    at_most_once = registry.at_most_once_kinds()
    limit = min(limit, SWEEP_BATCH - broker_backlog)
    abandoned = [State.SENDING]
    if broker_backlog < RECLAIM_QUEUED_BELOW:
        abandoned.append(State.DISPATCHED)
    with transaction.atomic():
        # A customer-facing message that may already have gone out is never re-sent.
        if at_most_once:
            ScheduledAction.objects.filter(
                state=State.SENDING, lease_until__lt=now, kind__in=at_most_once
            ).update(state=State.NEEDS_REVIEW, last_error="lease expired while sending")
        if limit <= 0:
            return []
        due = (
            ScheduledAction.objects.filter(
                Q(state=State.PENDING, due_at__lte=now)
                | Q(state__in=abandoned, lease_until__lt=now)
            )
            .order_by("due_at")
            .select_for_update(skip_locked=True, no_key=True)
            .values_list("pk", flat=True)[:limit]
        )
        ids = list(due)
        if ids:
            ScheduledAction.objects.filter(pk__in=ids).update(
                state=State.DISPATCHED, lease_until=now + lease
            )
            transaction.on_commit(lambda: _publish(ids))
    return ids


def _publish(ids: list[int]) -> None:
    from crm.scheduler.tasks import action_deliver_task

    for action_id in ids:
        try:
            action_deliver_task.delay(action_id)
        except Exception:  # noqa: BLE001 - broker down: the lease expires, the sweeper retries
            logger.warning(
                "could not publish action %s; the sweeper will retry", action_id
            )
            return


def action_deliver(*, action_id: int, now: datetime | None = None) -> bool:
    """Carry out one action exactly once from the database's point of view.

    Returns True if this call delivered it, False if it was not ours to deliver
    (already done, cancelled, or taken by another worker).
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.KEHU_ACTION_LEASE_SECONDS)
    # The conditional UPDATE is the claim: of two workers given the same id, one wins.
    claimed = ScheduledAction.objects.filter(
        pk=action_id, state=State.DISPATCHED
    ).update(state=State.SENDING, attempts=F("attempts") + 1, lease_until=now + lease)
    if not claimed:
        return False
    action = ScheduledAction.objects.get(pk=action_id)
    try:
        kind = registry.get(action.kind)
    except KeyError:
        # A kind no handler knows (renamed, or an old worker mid-deploy) needs a person.
        ScheduledAction.objects.filter(pk=action_id, state=State.SENDING).update(
            state=State.NEEDS_REVIEW,
            lease_until=None,
            last_error=f"no handler registered for kind {action.kind!r}",
        )
        logger.error("action %s has unknown kind %s", action_id, action.kind)
        return False
    try:
        with transaction.atomic():
            kind.handler(action)
            ScheduledAction.objects.filter(pk=action_id, state=State.SENDING).update(
                state=State.DONE,
                done_at=timezone.now(),
                lease_until=None,
                last_error="",
            )
    except Exception as exc:
        retry_at = timezone.now() + timedelta(seconds=min(300, 10 * 2**action.attempts))
        ScheduledAction.objects.filter(pk=action_id, state=State.SENDING).update(
            state=State.PENDING,
            due_at=retry_at,
            lease_until=None,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        logger.exception("action %s failed; retry at %s", action_id, retry_at)
        return False
    return True
