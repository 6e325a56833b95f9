"""Reads for the staff pages of surveys and campaigns (docs/satisfaction.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet

from culture.satisfaction.models import Campaign, Survey
from customers.models import Customer


def surveys_for(
    *,
    user: Any,
    status: str = "",
    source: str = "",
    kind: str = "",
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> QuerySet:
    """The surveys of the customers `user` may see, newest first, filtered."""
    surveys = Survey.objects.filter(
        customer__in=Customer.objects.visible_to(user).values("pk")
    ).select_related("customer", "ticket", "team", "staff")
    if status:
        surveys = surveys.filter(status=status)
    if source:
        surveys = surveys.filter(source=source)
    if kind:
        surveys = surveys.filter(kind=kind)
    if since:
        surveys = surveys.filter(created_at__date__gte=since)
    if until:
        surveys = surveys.filter(created_at__date__lte=until)
    return surveys.order_by("-created_at", "-pk")


def campaigns_for(user: Any) -> QuerySet:
    """Campaigns of the segments `user` may see, newest first."""
    from culture.segments.models import Segment

    return (
        Campaign.objects.filter(segment__in=Segment.objects.visible_to(user))
        .select_related("segment", "created_by")
        .order_by("-created_at", "-pk")
    )


def campaign_percent(campaign: Campaign) -> int:
    if not campaign.total:
        return 100 if campaign.status == Campaign.Status.DONE else 0
    return min(100, round(100 * (campaign.sent + campaign.skipped) / campaign.total))
