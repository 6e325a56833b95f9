"""Small database helpers shared by every app's services."""

from __future__ import annotations

from typing import Any

import pghistory
from django.db.models import Model


def audited(by: Any) -> pghistory.context:
    """Tag the audit rows written inside the block with the acting user (or the system)."""
    return pghistory.context(user=by.pk if by else None)


def lock_in_order(model: type[Model], *pks: int) -> dict[int, Model]:
    """SELECT … FOR NO KEY UPDATE the rows in id order, so two transactions locking the
    same pair in opposite roles (A into B, B into A) cannot deadlock. Call in a
    transaction. NO KEY: the callers (merges) update rows but never delete them or change
    their keys, and rows referencing them by foreign key can still be inserted meanwhile."""
    rows = (
        model.objects.select_for_update(no_key=True).filter(pk__in=pks).order_by("pk")
    )
    return {row.pk: row for row in rows}
