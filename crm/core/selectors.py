"""The platform's own reads: the administrator's home panel and the security audit log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from crm.accounts.models import Team, User
from crm.core import audit
from crm.scheduler import services as scheduler_services


def admin_figures(*, user: Any) -> dict[str, Any]:
    """The administrator's home: accounts in use and actions waiting for review."""
    return {
        "user_count": User.objects.filter(is_active=True).count(),
        "actions_needing_review": scheduler_services.actions_needing_review_count(),
    }


def admin_teams(*, user: Any) -> dict[str, Any]:
    """The administrator's home: every team with its department, lead and size."""
    teams = list(
        Team.objects.select_related("department", "lead")
        .annotate(member_count=Count("members"))
        .order_by("department__name", "name")
    )
    return {"teams": teams}


# --- the security audit log ------------------------------------------------------------

AUDIT_PAGE_SIZE = 50
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class AuditCursor:
    """Where a page of the audit log ends: rows strictly older than (created_at, id)."""

    created_at: dt.datetime
    pk: int

    def __str__(self) -> str:
        micros = (self.created_at - _EPOCH) // dt.timedelta(microseconds=1)
        return f"{micros}.{self.pk}"

    @classmethod
    def parse(cls, text: str) -> AuditCursor | None:
        try:
            micros, pk = (int(part) for part in text.split(".", 1))
            moment = _EPOCH + dt.timedelta(microseconds=micros)
        except (ValueError, OverflowError):
            return None
        if not -(2**63) <= pk < 2**63:
            return None
        return cls(moment, pk)


def audit_log_page(
    *, filters: dict, cursor: AuditCursor | None
) -> tuple[list, AuditCursor | None]:
    """One page of audit rows, newest first, and the cursor of the next (older) page.

    Keyset pagination on (created_at, id): each page is one index range scan however
    deep, so paging a year of rows costs what the first page costs.
    """
    from crm.core.models import AccessLog

    rows = AccessLog.objects.order_by("-created_at", "-id")
    if filters.get("actor"):
        rows = rows.filter(username=audit.encode(filters["actor"]))
    if filters.get("action"):
        rows = rows.filter(action=filters["action"])
    if filters.get("outcome"):
        rows = rows.filter(outcome=filters["outcome"])
    zone = timezone.get_current_timezone()
    if filters.get("date_from"):
        start = dt.datetime.combine(filters["date_from"], dt.time.min, tzinfo=zone)
        rows = rows.filter(created_at__gte=start)
    if filters.get("date_to"):
        end = dt.datetime.combine(
            filters["date_to"] + dt.timedelta(days=1), dt.time.min, tzinfo=zone
        )
        rows = rows.filter(created_at__lt=end)
    if cursor is not None:
        rows = rows.filter(
            Q(created_at__lt=cursor.created_at)
            | Q(created_at=cursor.created_at, pk__lt=cursor.pk)
        )
    page = list(rows[: AUDIT_PAGE_SIZE + 1])
    if len(page) <= AUDIT_PAGE_SIZE:
        return page, None
    page = page[:AUDIT_PAGE_SIZE]
    return page, AuditCursor(page[-1].created_at, page[-1].pk)
