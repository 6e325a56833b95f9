"""Reads of the per-segment dashboard: at most HORIZON daily rows of one segment (one
query) and the figures over them; member lists through the segment app's own scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from culture.segments import services as segment_services
from culture.segments.models import Segment, SegmentMembershipEvent
from culture.value.models import SegmentDay, SegmentSnapshotState
from culture.value.segment_dashboard import CHURN_STAGES

PAGE_SIZE = 50


@dataclass
class Board:
    start: date
    end: date
    days: list[SegmentDay] = field(default_factory=list)
    computed_at: datetime | None = None

    @property
    def size(self) -> int:
        return self.days[-1].size if self.days else 0

    @property
    def size_at_start(self) -> int:
        return (
            self.days[0].size - self.days[0].entered + self.days[0].left
            if self.days
            else 0
        )

    @property
    def average_size(self) -> float:
        return sum(d.size for d in self.days) / len(self.days) if self.days else 0.0

    def total(self, name: str) -> Any:
        return sum(
            (getattr(d, name) for d in self.days),
            Decimal(0) if name == "revenue" else 0,
        )

    @property
    def member_days(self) -> int:
        return sum(d.size for d in self.days)

    @property
    def contact_frequency(self) -> float | None:
        """Contacts per member per 30 days: contacts × 30 ÷ member-days (the sum of
        the daily sizes), so a member who joined yesterday weighs one day."""
        days = self.member_days
        return self.total("contacts") * 30 / days if days else None

    @property
    def complaints_per_100(self) -> float | None:
        """Complaints per 100 members per 30 days: complaints × 3,000 ÷ member-days."""
        days = self.member_days
        return self.total("complaints") * 3000 / days if days else None

    @property
    def churn_rate(self) -> float | None:
        """Members who became dormant or lost ÷ members at the start of the period."""
        base = self.size_at_start
        return self.total("churned") / base if base else None


def dashboard(*, segment: Segment, days: int) -> Board:
    end = timezone.localdate()
    start = end - timedelta(days=days - 1)
    board = Board(start=start, end=end)
    board.days = list(
        SegmentDay.objects.filter(
            segment=segment, day__gte=start, day__lte=end
        ).order_by("day")
    )
    state = SegmentSnapshotState.objects.filter(segment=segment).first()
    board.computed_at = state.computed_at if state else None
    return board


def export_rows(board: Board) -> list[list[str]]:
    rows = [
        [
            _("日期"),
            _("成员数"),
            _("进入"),
            _("离开"),
            _("回款（元）"),
            _("联系次数"),
            _("投诉"),
            _("流失/沉睡"),
        ]
    ]
    rows += [
        [
            d.day.isoformat(),
            str(d.size),
            str(d.entered),
            str(d.left),
            f"{d.revenue:.2f}",
            str(d.contacts),
            str(d.complaints),
            str(d.churned),
        ]
        for d in board.days
    ]
    return rows


def members(
    *,
    user: Any,
    segment: Segment,
    show: str,
    days: int,
    day: date | None = None,
    after: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[list[Any], int | None]:
    """One page of the customers behind a figure, only those `user` may see: current
    members, members currently dormant or lost (churned), or the entered/left events
    of the period (or of one day). Keyset on customer id (members) or event id."""
    visible = segment_services.visible_members(user=user, segment=segment)
    if show in ("members", "churned"):
        customers = visible.select_related("owner").order_by("pk")
        if show == "churned":
            customers = customers.filter(stage__in=CHURN_STAGES)
        rows = list(customers.filter(pk__gt=after)[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].pk if more else None)
    from customers.models import Customer

    end = timezone.localdate()
    first = day or end - timedelta(days=days - 1)
    last = day or end
    zone = timezone.get_current_timezone()
    events = SegmentMembershipEvent.objects.filter(
        segment=segment,
        action=show,
        at__gte=datetime.combine(first, datetime.min.time(), zone),
        at__lt=datetime.combine(last + timedelta(days=1), datetime.min.time(), zone),
        customer__in=Customer.objects.visible_to(user),
    ).select_related("customer", "customer__owner")
    if after:
        events = events.filter(pk__lt=after)
    rows = list(events.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].pk if more else None)
