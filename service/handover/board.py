"""交付大屏: the live board of an event (issue 17 part 5, handover.md §3.2).

`board(event)` reads the event's counters (counters.read, one query) and a few
bounded, indexed queries: the scope and booked counts, the stations, the oldest
waiting visit per station (the queue's partial index), the trades' names and the risk
feed (10 rows each). Its query count does not grow with the event.

`grid(event)` is the per-building unit grid (房态图): one query over the event's units
(5,000 at most) with each unit's latest case state; the view caches its HTML briefly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Min, Q, Subquery, Sum
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from customers.models import Customer
from service.defects.models import Defect, DefectCategory, Severity
from service.handover import counters
from service.handover.models import (
    Appointment,
    EventUnit,
    HandoverEvent,
    StationDefinition,
    StationVisit,
    TimeSlot,
    UnitHandover,
)

# Customers with one of these tags (or a key account) are flagged when they arrive.
RISK_TAGS = ("VIP", "投诉", "维权", "重点关注", "媒体", "律师", "群诉")
FEED_ROWS = 10
# The open cases the risk feed looks at, latest arrivals first (more than are on site).
ON_SITE_MAX = 500
GRID_MAX_UNITS = 5_000
# The grid's cell states: a case's state, or booked / not booked without a case.
GRID_NONE = "none"
GRID_BOOKED = "booked"
CELL = '<i class="board-cell s-{}" title="{}"></i>'
State = UnitHandover.State


@dataclass
class StationRow:
    station: StationDefinition
    waiting: int
    called: int
    in_service: int
    done: int
    mean_wait_min: float | None
    mean_service_min: float | None
    longest_wait_min: int | None

    @property
    def queue(self) -> int:
        return self.waiting + self.called

    @property
    def over_target(self) -> bool:
        return (
            self.mean_service_min is not None
            and self.mean_service_min > self.station.target_minutes
        )


@dataclass
class FeedItem:
    kind: str  # "refusal", "p0", "risk_owner"
    at: dt.datetime
    unit: str
    text: str
    detail: str = ""


@dataclass
class Board:
    event: HandoverEvent
    headline: dict[str, int]
    rate: float | None
    stations: list[StationRow]
    hours: list[dict[str, Any]]
    severity: dict[str, int]
    categories: list[tuple[str, int]]
    defects_open: int
    fees_yuan: float
    rating_mean: float | None
    rating_count: int
    feed: list[FeedItem] = field(default_factory=list)
    at: dt.datetime = field(default_factory=timezone.now)


def _minutes(seconds: int, count: int) -> float | None:
    return round(seconds / count / 60, 1) if count else None


def _stations(event: HandoverEvent, values: dict[str, int]) -> list[StationRow]:
    stations = list(
        StationDefinition.objects.filter(event=event).order_by("position", "pk")
    )
    if not stations:
        return []
    now = timezone.now()
    # The queue's partial index (station, queued_at) where waiting/called/in service.
    oldest = dict(
        StationVisit.objects.filter(
            station__in=stations,
            state__in=[StationVisit.State.WAITING, StationVisit.State.CALLED],
        )
        .values("station")
        .annotate(first=Min("queued_at"))
        .values_list("station", "first")
    )
    rows = []
    for station in stations:
        prefix = f"station:{station.pk}:"

        def get(name: str, prefix: str = prefix) -> int:
            return values.get(prefix + name, 0)

        first = oldest.get(station.pk)
        rows.append(
            StationRow(
                station=station,
                waiting=get(StationVisit.State.WAITING),
                called=get(StationVisit.State.CALLED),
                in_service=get(StationVisit.State.IN_SERVICE),
                done=get("done"),
                mean_wait_min=_minutes(get("wait_s"), get("served")),
                mean_service_min=_minutes(get("service_s"), get("done")),
                longest_wait_min=(
                    max(0, int((now - first).total_seconds() // 60)) if first else None
                ),
            )
        )
    return rows


def _hours(values: dict[str, int]) -> list[dict[str, Any]]:
    """hour:<YYYYMMDDHH>:arrived|finished → one row per hour, in order, gaps filled
    between the first and the last hour of each day."""
    per_hour: dict[str, dict[str, int]] = {}
    for key, value in values.items():
        if key.startswith("hour:"):
            _prefix, stamp, what = key.split(":", 2)
            per_hour.setdefault(stamp, {"arrived": 0, "finished": 0})[what] = value
    if not per_hour:
        return []
    days: dict[str, list[int]] = {}
    for stamp in per_hour:
        days.setdefault(stamp[:8], []).append(int(stamp[8:10]))
    rows = []
    for day in sorted(days):
        for hour in range(min(days[day]), max(days[day]) + 1):
            stamp = f"{day}{hour:02d}"
            figures = per_hour.get(stamp, {"arrived": 0, "finished": 0})
            label = f"{day[4:6]}-{day[6:8]} {hour:02d}:00"
            rows.append(
                {
                    "label": label,
                    "arrived": figures.get("arrived", 0),
                    "finished": figures.get("finished", 0),
                }
            )
    return rows


def _categories(values: dict[str, int]) -> list[tuple[str, int]]:
    counts = {
        int(key.rsplit(":", 1)[1]): value
        for key, value in values.items()
        if key.startswith("defect:category:") and value
    }
    if not counts:
        return []
    names = dict(DefectCategory.objects.filter(pk__in=counts).values_list("pk", "name"))
    return sorted(
        ((names.get(pk, str(pk)), n) for pk, n in counts.items()),
        key=lambda row: (-row[1], row[0]),
    )


def _feed(event: HandoverEvent) -> list[FeedItem]:
    """The latest refusals, open P0 defects and risk-tagged owners on site, 10 at most."""
    items: list[FeedItem] = []
    # Refused cases by the (event, state) index; the record rides along (one-to-one).
    # The 10 ids first (a subquery with its LIMIT), then their rows: the joins are
    # for 10 rows, never for every refusal.
    refused = (
        UnitHandover.objects.filter(
            pk__in=Subquery(
                UnitHandover.objects.filter(event=event, state=State.REFUSED)
                .order_by("-outcome_at", "-pk")
                .values("pk")[:FEED_ROWS]
            )
        )
        .select_related("refusal", "event_unit__unit", "customer")
        .only(
            "outcome_at",
            "updated_at",
            "event_unit__unit__code",
            "customer__name",
            "refusal__reason",
            "refusal__recorded_at",
        )
    )
    for case in refused:
        refusal = getattr(case, "refusal", None)
        items.append(
            FeedItem(
                "refusal",
                refusal.recorded_at if refusal else case.outcome_at or case.updated_at,
                case.event_unit.unit.code,
                case.customer.name,
                refusal.get_reason_display() if refusal else "",
            )
        )
    p0 = Defect.objects.filter(
        pk__in=Subquery(
            Defect.objects.filter(
                event=event, state__in=Defect.OPEN_STATES, severity=Severity.P0
            )
            .order_by("-created_at", "-pk")
            .values("pk")[:FEED_ROWS]
        )
    ).select_related("unit")
    for defect in p0:
        items.append(
            FeedItem(
                "p0",
                defect.created_at,
                defect.unit.code,
                defect.description,
                defect.get_state_display(),
            )
        )
    # Owners on site now (the open cases, by the (event, state) index, the latest
    # ON_SITE_MAX), then which of them are flagged, by the customers' primary key: never
    # a scan of the customers for their tags.
    on_site = list(
        UnitHandover.objects.filter(event=event, state__in=UnitHandover.OPEN_STATES)
        .order_by("-checked_in_at", "-pk")
        .values_list("pk", "customer_id")[:ON_SITE_MAX]
    )
    flagged = {
        pk: (name, tags, key_account)
        for pk, name, tags, key_account in Customer.objects.filter(
            pk__in={customer for _case, customer in on_site}
        )
        .filter(Q(tags__overlap=list(RISK_TAGS)) | Q(is_key_account=True))
        .values_list("pk", "name", "tags", "is_key_account")
    }
    latest = [case for case, customer in on_site if customer in flagged][:FEED_ROWS]
    if latest:
        tagged = (
            UnitHandover.objects.filter(pk__in=latest)
            .select_related("event_unit__unit")
            .only("checked_in_at", "customer_id", "event_unit__unit__code")
        )
        for case in tagged:
            name, tags, key_account = flagged[case.customer_id]
            shown = [tag for tag in tags if tag in RISK_TAGS]
            if key_account:
                shown.insert(0, _("重点客户"))
            items.append(
                FeedItem(
                    "risk_owner",
                    case.checked_in_at,
                    case.event_unit.unit.code,
                    name,
                    "、".join(shown),
                )
            )
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:FEED_ROWS]


def board(event: HandoverEvent) -> Board:
    values = counters.read(event.pk)

    def case(state: str) -> int:
        return values.get(f"case:{state}", 0)

    scope = EventUnit.objects.filter(event=event).count()
    booked = TimeSlot.objects.filter(event=event).aggregate(
        n=Sum("booked_count", default=0)
    )["n"]
    accepted = case(State.ACCEPTED) + case(State.ACCEPTED_WITH_DEFECTS)
    arrived = sum(case(state) for state in State.values) - case(State.ABSENT)
    headline = {
        "scope": scope,
        "booked": booked,
        "arrived": arrived,
        "checked_in": case(State.CHECKED_IN),
        "in_progress": case(State.IN_PROGRESS),
        "accepted": case(State.ACCEPTED),
        "accepted_defects": case(State.ACCEPTED_WITH_DEFECTS),
        "not_accepted": case(State.NOT_ACCEPTED),
        "refused": case(State.REFUSED),
        "absent": case(State.ABSENT),
    }
    rating_count = values.get("rating:count", 0)
    return Board(
        event=event,
        headline=headline,
        rate=round(100 * accepted / scope, 1) if scope else None,
        stations=_stations(event, values),
        hours=_hours(values),
        severity={sev: values.get(f"defect:severity:{sev}", 0) for sev in Severity},
        categories=_categories(values),
        defects_open=values.get("defect:open", 0),
        fees_yuan=values.get("fees:cents", 0) / 100,
        rating_mean=(
            round(values.get("rating:sum", 0) / rating_count, 2)
            if rating_count
            else None
        ),
        rating_count=rating_count,
        feed=_feed(event),
    )


@dataclass
class GridBuilding:
    name: str
    floors: list[tuple[int, SafeString]]  # floor, its cells' HTML (escaped)
    counts: dict[str, int]


def grid(event: HandoverEvent) -> list[GridBuilding]:
    """The event's units by building and floor (top floor first), each with its latest
    case's state, else booked or none: three indexed reads (units, cases, bookings;
    GRID_MAX_UNITS units at most) joined here, the cells' HTML built per floor with
    format_html_join (5,000 template tags would cost more than the queries)."""
    units = list(
        EventUnit.objects.filter(event=event)
        .order_by(
            "unit__building__code",
            "unit__building_id",
            "-unit__floor",
            "unit__entrance",
            "unit__room",
        )
        .values_list(
            "pk",
            "unit__building_id",
            "unit__building__name",
            "unit__floor",
            "unit__code",
        )[:GRID_MAX_UNITS]
    )
    state_of: dict[int, tuple[int, str]] = {}
    for event_unit, round_no, state in UnitHandover.objects.filter(
        event=event
    ).values_list("event_unit_id", "round", "state"):
        if event_unit not in state_of or state_of[event_unit][0] < round_no:
            state_of[event_unit] = (round_no, state)
    booked = set(
        Appointment.objects.filter(
            event=event, state=Appointment.State.BOOKED, event_unit__isnull=False
        ).values_list("event_unit_id", flat=True)
    )
    buildings: list[GridBuilding] = []
    current = None
    cells: list[tuple[str, str]] = []
    floor_no = None

    def close_floor() -> None:
        if cells:
            html = format_html_join("", CELL, cells)
            buildings[-1].floors.append((floor_no, html))
            cells.clear()

    for event_unit, building_id, name, floor, code in units:
        if building_id != current:
            close_floor()
            current, floor_no = building_id, None
            buildings.append(GridBuilding(name=name, floors=[], counts={}))
        if floor != floor_no:
            close_floor()
            floor_no = floor
        state = state_of.get(event_unit, (0, ""))[1] or (
            GRID_BOOKED if event_unit in booked else GRID_NONE
        )
        counts = buildings[-1].counts
        counts[state] = counts.get(state, 0) + 1
        cells.append((state, code))
    close_floor()
    return buildings


def grid_legend() -> list[tuple[str, str]]:
    return [
        (GRID_NONE, _("未预约")),
        (GRID_BOOKED, _("已预约")),
        *((str(value), str(label)) for value, label in State.choices),
    ]


def charts(data: Board) -> dict[str, dict[str, Any]]:
    """ECharts options (data only) of the board: throughput per hour, defects by trade."""
    throughput = {
        "id": "board-throughput",
        "height": 240,
        "label": _("每小时到场（签到）与办结（有结果）的户数"),
        "options": {
            "animation": False,
            "grid": {"left": 40, "right": 12, "top": 32, "bottom": 28},
            "tooltip": {"trigger": "axis"},
            "legend": {"top": 0},
            "xAxis": {"type": "category", "data": [h["label"] for h in data.hours]},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": [
                {
                    "name": _("到场"),
                    "type": "bar",
                    "data": [h["arrived"] for h in data.hours],
                },
                {
                    "name": _("办结"),
                    "type": "bar",
                    "data": [h["finished"] for h in data.hours],
                },
            ],
        },
    }
    trades = data.categories[:12]
    defects = {
        "id": "board-defects",
        "height": 240,
        "label": _("本次活动登记的问题，按专业（一级分类）"),
        "options": {
            "animation": False,
            "grid": {"left": 90, "right": 16, "top": 8, "bottom": 24},
            "tooltip": {"trigger": "axis"},
            "xAxis": {"type": "value", "minInterval": 1},
            "yAxis": {
                "type": "category",
                "inverse": True,
                "data": [name for name, _n in trades],
            },
            "series": [
                {
                    "name": _("问题数"),
                    "type": "bar",
                    "data": [n for _name, n in trades],
                }
            ],
        },
    }
    return {"throughput": throughput, "defects": defects}
