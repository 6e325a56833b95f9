"""The on-the-day changes the board counts, made with the ORM and bumped as the
services do (service/handover/counters.py's key convention), for the board tests.
Once the check-in, station, outcome and defect services are on main, the tests call
those instead; these stay as the reference of what each change bumps."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from service.defects.models import Defect, DefectCategory
from service.handover import counters
from service.handover.models import (
    EventUnit,
    FeePayment,
    HandoverEvent,
    RefusalRecord,
    StationDefinition,
    StationVisit,
    UnitHandover,
)

_codes = itertools.cycle(StationDefinition.Code.values)
_serial = itertools.count(1)


def hour_key(at: dt.datetime) -> str:
    return timezone.localtime(at).strftime("%Y%m%d%H")


def make_stations(event: HandoverEvent, count: int = 3) -> list[StationDefinition]:
    codes = StationDefinition.Code.values[:count]
    return [
        StationDefinition.objects.create(
            event=event,
            code=code,
            name=str(StationDefinition.Code(code).label),
            position=n,
        )
        for n, code in enumerate(codes, start=1)
    ]


def make_categories() -> dict[str, DefectCategory]:
    """Two trades, each with a part and a symptom (leaf)."""
    leaves = {}
    for trade in ("土建", "水电"):
        n = next(_serial)
        top = DefectCategory.objects.create(level=1, name=f"{trade}{n}")
        part = DefectCategory.objects.create(level=2, parent=top, name="墙面")
        leaves[trade] = DefectCategory.objects.create(level=3, parent=part, name="空鼓")
        leaves[trade + ":top"] = top
    return leaves


@transaction.atomic
def check_in(
    eu: EventUnit, customer, stations: list[StationDefinition], at: dt.datetime
) -> UnitHandover:
    case = UnitHandover.objects.create(
        event_id=eu.event_id,
        event_unit=eu,
        customer=customer,
        checked_in_at=at,
        state=UnitHandover.State.CHECKED_IN,
    )
    deltas = {"case:checked_in": 1, f"hour:{hour_key(at)}:arrived": 1}
    for n, station in enumerate(stations):
        state = StationVisit.State.WAITING if n == 0 else StationVisit.State.PENDING
        StationVisit.objects.create(
            case=case, station=station, state=state, queued_at=at if n == 0 else None
        )
        deltas[f"station:{station.pk}:{state}"] = 1
    counters.bump(eu.event_id, deltas)
    return case


def _locked(case: UnitHandover) -> UnitHandover:
    """The case as it is now (a service locks and rereads it), copied onto `case`."""
    fresh = UnitHandover.objects.select_for_update().get(pk=case.pk)
    case.__dict__.update(
        {k: v for k, v in fresh.__dict__.items() if not k.startswith("_")}
    )
    return case


def _case_to(case: UnitHandover, state: str, deltas: dict[str, int]) -> None:
    if case.state != state:
        deltas[f"case:{case.state}"] = deltas.get(f"case:{case.state}", 0) - 1
        deltas[f"case:{state}"] = deltas.get(f"case:{state}", 0) + 1
        case.state = state


@transaction.atomic
def start(visit: StationVisit, at: dt.datetime) -> None:
    case = _locked(visit.case)
    deltas = {
        f"station:{visit.station_id}:{visit.state}": -1,
        f"station:{visit.station_id}:in_service": 1,
        f"station:{visit.station_id}:served": 1,
    }
    if visit.queued_at is None:
        visit.queued_at = at
    deltas[f"station:{visit.station_id}:wait_s"] = int(
        (at - visit.queued_at).total_seconds()
    )
    visit.state, visit.started_at = StationVisit.State.IN_SERVICE, at
    visit.save()
    if case.state == UnitHandover.State.CHECKED_IN:
        _case_to(case, UnitHandover.State.IN_PROGRESS, deltas)
        case.started_at = at
        case.save()
    counters.bump(case.event_id, deltas)


@transaction.atomic
def finish(visit: StationVisit, at: dt.datetime) -> StationVisit | None:
    """Done; the next pending visit of the case joins its station's queue."""
    # "station:<id>:done" is at once the state's count and the finished count: bumped once.
    deltas = {
        f"station:{visit.station_id}:in_service": -1,
        f"station:{visit.station_id}:done": 1,
        f"station:{visit.station_id}:service_s": int(
            (at - visit.started_at).total_seconds()
        ),
    }
    visit.state, visit.finished_at = StationVisit.State.DONE, at
    visit.save()
    following = (
        StationVisit.objects.filter(case=visit.case, state=StationVisit.State.PENDING)
        .order_by("station__position")
        .first()
    )
    if following:
        following.state, following.queued_at = StationVisit.State.WAITING, at
        following.save()
        deltas[f"station:{following.station_id}:pending"] = -1
        deltas[f"station:{following.station_id}:waiting"] = 1
    counters.bump(visit.case.event_id, deltas)
    return following


@transaction.atomic
def outcome(case: UnitHandover, state: str, at: dt.datetime, by=None) -> None:
    deltas: dict[str, int] = {}
    _locked(case)
    _case_to(case, state, deltas)
    case.outcome_at = at
    case.save()
    if state != UnitHandover.State.ABSENT:
        deltas[f"hour:{hour_key(at)}:finished"] = 1
    if state == UnitHandover.State.REFUSED:
        RefusalRecord.objects.create(
            case=case,
            reason=RefusalRecord.Reason.QUALITY,
            details="客厅墙面大面积开裂",
            notice_deadline=timezone.localdate(),
            recorded_by=by,
        )
    counters.bump(case.event_id, deltas)


@transaction.atomic
def defect(
    case: UnitHandover, leaf: DefectCategory, severity: str, by, text: str = "墙面空鼓"
) -> Defect:
    item = Defect.objects.create(
        unit_id=case.event_unit.unit_id,
        case=case,
        event_id=case.event_id,
        room=Defect.Room.LIVING,
        category=leaf,
        description=text,
        severity=severity,
        due_at=timezone.now() + dt.timedelta(days=1),
        reported_by=by,
    )
    trade = leaf.parent.parent_id if leaf.level == 3 else leaf.pk
    counters.bump(
        case.event_id,
        {
            f"defect:severity:{severity}": 1,
            f"defect:category:{trade}": 1,
            "defect:open": 1,
        },
    )
    return item


@transaction.atomic
def close_defect(item: Defect, by) -> None:
    item.state, item.closed_at, item.closed_by = (
        Defect.State.CLOSED,
        timezone.now(),
        by,
    )
    item.save()
    counters.bump(item.event_id, {"defect:open": -1})


@transaction.atomic
def pay(case: UnitHandover, amount: str, by) -> None:
    payment = FeePayment.objects.create(
        case=case,
        item=FeePayment.Item.PROPERTY_FEE,
        amount=Decimal(amount),
        method=FeePayment.Method.WECHAT,
        cashier=by,
    )
    counters.bump(case.event_id, {"fees:cents": round(payment.amount * 100)})


@transaction.atomic
def rate(case: UnitHandover, rating: int) -> None:
    _locked(case)
    case.rating = rating
    case.save()
    counters.bump(case.event_id, {"rating:sum": rating, "rating:count": 1})
