"""Reads of the scheduled-action table for admin pages."""

from __future__ import annotations

from typing import Any

from crm.scheduler import registry
from crm.scheduler.models import ScheduledAction

REVIEW_PAGE_SIZE = 200


def actions_needing_review(*, limit: int = REVIEW_PAGE_SIZE) -> dict[str, Any]:
    """The newest parked actions (partial index `action_needs_review`) and their count.

    Two queries whatever the number of rows. Each row says whether its kind is
    at-most-once: a retry may then reach a customer who already got the message.
    """
    parked = ScheduledAction.objects.filter(state=ScheduledAction.State.NEEDS_REVIEW)
    rows = list(
        parked.order_by("-id").only(
            "kind", "target_id", "due_at", "attempts", "last_error", "state"
        )[:limit]
    )
    at_most_once = set(registry.at_most_once_kinds())
    for row in rows:
        row.is_at_most_once = row.kind in at_most_once
    return {"actions": rows, "total": parked.count(), "limit": limit}
