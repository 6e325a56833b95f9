"""One timeline per customer, fed by every app through `register`.

A source is a function (customer, before, limit) -> list[Entry] that runs one query and
returns its newest `limit` entries older than `before`. The page merges the sources, so
a customer with 50,000 events costs the same number of queries as one with 5. Tickets,
handovers and surveys register their own sources when those apps land.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

PAGE_SIZE = 20


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str
    icon: str
    title: str
    body: str = ""
    actor: str = ""
    url: str = ""
    badge: str = ""


Source = Callable[[Any, datetime | None, int], list[Entry]]
_SOURCES: dict[str, Source] = {}


def register(name: str, source: Source) -> None:
    _SOURCES[name] = source


def entries(
    customer: Any, *, before: datetime | None = None, limit: int = PAGE_SIZE
) -> list[Entry]:
    """The newest `limit` entries before `before`, from all sources, newest first."""
    merged: list[Entry] = []
    for source in _SOURCES.values():
        merged.extend(source(customer, before, limit))
    merged.sort(key=lambda entry: entry.at, reverse=True)
    return merged[:limit]


def contact_entries(customer: Any, before: datetime | None, limit: int) -> list[Entry]:
    from customers.models import ContactLog

    logs = ContactLog.objects.filter(customer=customer).select_related("author")
    if before:
        logs = logs.filter(occurred_at__lt=before)
    return [
        Entry(
            at=log.occurred_at,
            kind="contact",
            icon="chat-left-text",
            title=f"{log.get_channel_display()} · {log.get_direction_display()}",
            body=log.summary,
            actor=str(log.author),
            badge=log.get_sentiment_display() if log.sentiment != "neutral" else "",
        )
        for log in logs.order_by("-occurred_at", "-id")[:limit]
    ]


def followup_entries(customer: Any, before: datetime | None, limit: int) -> list[Entry]:
    from customers.models import FollowUp

    followups = FollowUp.objects.filter(customer=customer).select_related("assignee")
    if before:
        followups = followups.filter(created_at__lt=before)
    return [
        Entry(
            at=followup.created_at,
            kind="followup",
            icon="alarm",
            title=_("跟进：%(note)s") % {"note": followup.note},
            body=_("到期 %(due)s")
            % {"due": date_format(localtime(followup.due_at), "SHORT_DATETIME_FORMAT")},
            actor=str(followup.assignee),
            badge=followup.get_status_display(),
        )
        for followup in followups.order_by("-created_at", "-id")[:limit]
    ]
