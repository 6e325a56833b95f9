"""Reads for the on-site pages (check-in desk, stations, case page): each page's rows in
a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone
from django.utils.translation import gettext as _

from service.handover import counters
from service.handover.models import (
    Appointment,
    CaseLog,
    EventUnit,
    HandoverEvent,
    StationDefinition,
    StationVisit,
    UnitHandover,
)
from service.handover.onsite import ACTIVE_VISIT_STATES
from service.handover.scope_selectors import unit_picker, with_parties
from service.handover.selectors import events_for

VState = StationVisit.State
QUEUE_SHOWN = 100
LOG_SHOWN = 200


def mask_name(name: str) -> str:
    """周** : the surname only, for screens the waiting owners can see."""
    name = (name or "").strip()
    if not name:
        return "—"
    return name[0] + "*" * min(max(len(name) - 1, 1), 3)


def station_queue(station: StationDefinition) -> tuple[list[StationVisit], int]:
    """In service first, then called, then the waiting queue oldest first (at most
    QUEUE_SHOWN rows), and how many wait in all."""
    order = Case(
        When(state=VState.IN_SERVICE, then=Value(0)),
        When(state=VState.CALLED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    visits = list(
        StationVisit.objects.filter(
            station=station,
            state__in=ACTIVE_VISIT_STATES,
            case__state__in=UnitHandover.OPEN_STATES,
        )
        .select_related(
            "case__customer", "case__event_unit__unit__building", "operator"
        )
        .annotate(order=order)
        .order_by("order", "queued_at", "pk")[:QUEUE_SHOWN]
    )
    waiting = StationVisit.objects.filter(
        station=station,
        state=VState.WAITING,
        case__state__in=UnitHandover.OPEN_STATES,
    ).count()
    now = timezone.now()
    template = capture_template(station)
    for visit in visits:
        start = visit.started_at if visit.state == VState.IN_SERVICE else now
        visit.wait_minutes = (
            int((start - visit.queued_at).total_seconds() // 60)
            if visit.queued_at
            else 0
        )
        visit.owner_masked = mask_name(visit.case.customer.name)
        visit.capture_template = template
    return visits, waiting


def capture_template(station: StationDefinition) -> str:
    """The station's capture form (written with the station's own services), or ""."""
    name = f"handover/onsite/stations/_{station.code}.html"
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return ""
    return name


def station_figures(event: HandoverEvent) -> list[dict[str, Any]]:
    """Each station with its queue figures, from the board's counters (one query)."""
    values = counters.read(event.pk)
    rows = []
    for station in event.stations.order_by("position"):
        key = f"station:{station.pk}:"
        served = values.get(key + "served", 0)
        rows.append(
            {
                "station": station,
                "waiting": values.get(key + VState.WAITING, 0),
                "called": values.get(key + VState.CALLED, 0),
                "in_service": values.get(key + VState.IN_SERVICE, 0),
                "done": values.get(key + "done", 0),
                "mean_wait": round(values.get(key + "wait_s", 0) / served / 60)
                if served
                else None,
            }
        )
    return rows


def case_detail(case: UnitHandover) -> dict[str, Any]:
    visits = list(
        case.visits.select_related("station", "operator").order_by("station__position")
    )
    for visit in visits:
        visit.wait_minutes = (
            int((visit.started_at - visit.queued_at).total_seconds() // 60)
            if visit.started_at and visit.queued_at
            else None
        )
        visit.service_minutes = (
            int((visit.finished_at - visit.started_at).total_seconds() // 60)
            if visit.finished_at and visit.started_at
            else None
        )
    log = list(
        CaseLog.objects.filter(case=case)
        .select_related("station", "actor")
        .order_by("-at", "-pk")[:LOG_SHOWN]
    )
    labels = action_labels()
    states = {**dict(StationVisit.State.choices), **dict(UnitHandover.State.choices)}
    for row in log:
        row.label = labels.get(row.action, row.action)
        row.to_label = states.get(row.to_state, row.to_state)
    return {"visits": visits, "log": log}


def action_labels() -> dict[str, str]:
    return {
        "checked_in": _("签到取号"),
        "identity_checked": _("身份核验"),
        "proxy_checked": _("委托核验"),
        "station_called": _("叫号"),
        "station_started": _("开始办理"),
        "station_done": _("办理完成"),
        "station_skipped": _("跳过"),
        "station_queued": _("进入排队"),
        "station_requeued": _("过号"),
        "case_started": _("开始办理交房"),
        # The outcomes and captures (outcomes.py, captures.py).
        "outcome": _("交付结果"),
        "no_show": _("未到访"),
        "no_show_next": _("未到访后续"),
        # The re-inspection (reinspection.py; onsite._open_case for round 2).
        "reinspection_booked": _("预约复验"),
        "reinspection": _("复验"),
        "settlement": _("房款结算/面积补差"),
        "fee": _("缴费"),
        "fee_void": _("作废收费"),
        "meters": _("水电气抄表"),
        "keys": _("钥匙交接"),
        "signature": _("签收签名"),
        "rating": _("现场满意度"),
    }


def cases_for(user: Any) -> QuerySet:
    return UnitHandover.objects.filter(event__in=events_for(user)).select_related(
        "event",
        "customer",
        "event_unit__unit__building",
        "appointment__slot",
        "proxy_authorisation__proxy",
        "identity_checked_by",
        "checked_in_by",
    )


def desk_units(event: HandoverEvent, query: str) -> list[EventUnit]:
    """Units matching a room, unit code or owner phone, with their parties, active
    appointment (`unit.active_appointment`; `unit.pending_appointment` when its visit
    is not finished), open case (`unit.open_case`), latest case (`unit.last_case`) and
    whether it is handed over (`unit.handed_over`)."""
    units = with_parties(unit_picker(event, query))
    if not units:
        return []
    ids = [u.pk for u in units]
    # A unit may have a finished visit and its re-inspection booking: the unfinished
    # one is shown (current_first), else the finished one.
    appointments: dict[int, Appointment] = {}
    for a in (
        Appointment.objects.active()
        .filter(event_unit_id__in=ids)
        .select_related("slot", "customer")
        .current_first()
    ):
        appointments.setdefault(a.event_unit_id, a)
    # Each unit's latest case (round): open, or the outcome the desk must know about
    # (an accepted unit is not checked in again; after 验收未通过 or 拒收 without a new
    # booking the owner may come back as a walk-in).
    latest = {
        c.event_unit_id: c
        for c in UnitHandover.objects.filter(event_unit_id__in=ids)
        .order_by("event_unit_id", "-round", "-id")
        .distinct("event_unit_id")
    }
    for unit in units:
        booking = appointments.get(unit.pk)
        case = latest.get(unit.pk)
        unit.active_appointment = booking
        # A finished visit is no booking to check in.
        unit.pending_appointment = (
            booking if booking is not None and booking.finished_at is None else None
        )
        unit.open_case = case if case is not None and case.is_open else None
        unit.last_case = case
        unit.handed_over = case is not None and case.state in (
            UnitHandover.State.ACCEPTED,
            UnitHandover.State.ACCEPTED_WITH_DEFECTS,
        )
    return units


def onsite_events(user: Any) -> QuerySet:
    today = timezone.localdate()
    return (
        events_for(user)
        .filter(status=HandoverEvent.Status.PUBLISHED, end_date__gte=today)
        .prefetch_related(
            Prefetch(
                "stations", queryset=StationDefinition.objects.order_by("position")
            )
        )
        .order_by("start_date", "pk")
    )
