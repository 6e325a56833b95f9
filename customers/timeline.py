"""One timeline per customer, fed by every app through `register`.

A source is a function (customer, before, limit) -> list[Entry] that runs one query and
returns its newest `limit` entries at or before `before` (ties included: the page
skips those already shown). The page merges the sources, so
a customer with 50,000 events costs the same number of queries as one with 5. Tickets,
handovers and surveys register their own sources when those apps land.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from crm.core import bounds

PAGE_SIZE = 20
# Entries stamped with one same moment that a cursor may skip: more than any import
# or merge stamps at once, far less than a query LIMIT can hold.
MAX_SKIP = 100_000


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
    id: int = 0  # the row's id: orders entries of the same moment, stably


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: entries at or before `before`, minus the first
    `skip` entries stamped exactly `before` (already shown)."""

    before: datetime | None = None
    skip: int = 0

    @classmethod
    def parse(cls, raw: str) -> Cursor:
        """The cursor a `?before=` carries; one out of range (year 1, a 20-digit
        skip) is a 400 (bounds.BadParameter), not an overflow deep in a query, and
        one that is no datetime at all shows the first page."""
        if not raw:
            return cls()
        moment, bar, skip = raw.partition("|")
        try:
            datetime.fromisoformat(moment)
        except ValueError:
            # Unreadable (a hand-made address): the first page, as it always was.
            return cls()
        before = bounds.parse_datetime(moment, name="before")
        # A bare timestamp means "strictly older than".
        if not bar:
            return cls(before - timedelta(microseconds=1), 0)
        count = bounds.Params({"skip": skip}).integer(
            "skip", min_value=0, max_value=MAX_SKIP, default=0
        )
        return cls(before, count)

    def __str__(self) -> str:
        return f"{self.before.isoformat()}|{self.skip}" if self.before else ""


Source = Callable[[Any, datetime | None, int], list[Entry]]
_SOURCES: dict[str, Source] = {}


def register(name: str, source: Source) -> None:
    _SOURCES[name] = source


def _order(entry: Entry) -> tuple:
    return (entry.at, entry.kind, entry.id)


def entries(
    customer: Any, *, cursor: Cursor | None = None, limit: int = PAGE_SIZE
) -> tuple[list[Entry], Cursor | None]:
    """One page of the merged timeline, newest first, and the cursor of the next page."""
    cursor = cursor or Cursor()
    merged: list[Entry] = []
    for source in _SOURCES.values():
        # One more than a page tells whether an older page exists.
        merged.extend(source(customer, cursor.before, limit + cursor.skip + 1))
    merged.sort(key=_order, reverse=True)
    if cursor.before is not None:
        at_edge = [e for e in merged if e.at == cursor.before][: cursor.skip]
        merged = [e for e in merged if e not in at_edge]
    page = merged[:limit]
    if len(merged) <= limit:
        return page, None
    last = page[-1].at
    skip = sum(1 for e in page if e.at == last)
    if last == cursor.before:
        skip += cursor.skip
    return page, Cursor(last, skip)


def contact_entries(customer: Any, before: datetime | None, limit: int) -> list[Entry]:
    from customers.models import ContactLog

    logs = ContactLog.objects.filter(customer=customer).select_related("author")
    if before:
        logs = logs.filter(occurred_at__lte=before)
    return [
        Entry(
            at=log.occurred_at,
            kind="contact",
            icon="chat-left-text",
            title=f"{log.get_channel_display()} · {log.get_direction_display()}",
            body=log.summary,
            actor=str(log.author),
            badge=log.get_sentiment_display() if log.sentiment != "neutral" else "",
            id=log.pk,
        )
        for log in logs.order_by("-occurred_at", "-id")[:limit]
    ]


def followup_entries(customer: Any, before: datetime | None, limit: int) -> list[Entry]:
    from customers.models import FollowUp

    followups = FollowUp.objects.filter(customer=customer).select_related("assignee")
    if before:
        followups = followups.filter(created_at__lte=before)
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
            id=followup.pk,
        )
        for followup in followups.order_by("-created_at", "-id")[:limit]
    ]
