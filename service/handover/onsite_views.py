"""入伙 on the day: the on-site entry page, the check-in desk of an event (QR code, unit
number or owner phone; walk-ins), the station configuration, each station's queue
(tablets and phones, htmx), and the case page (route sheet and log).

The desk and the stations: BOOKING_ROLES (sales, the service desk, managers, admins);
the station sequence: managers and admins. Owners' phones are masked for roles that
may not see them; the station queue shows the surname only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds
from customers.models import Customer
from service.handover import checkin_codes, onsite, onsite_selectors, selectors
from service.handover.models import (
    Appointment,
    EventUnit,
    HandoverEvent,
    StationDefinition,
    StationVisit,
    UnitHandover,
)
from service.handover.onsite_forms import StationAddForm

ONSITE_ROLES = onsite.ONSITE_ROLES
CONFIG_ROLES = onsite.CONFIG_ROLES
VISIT_ACTIONS = ("call", "start", "finish", "skip", "requeue")


def _event(request: HttpRequest, pk: Any) -> HandoverEvent:
    return access.get_object_for(selectors.events_for(request.user), pk)


def _station(event: HandoverEvent, station_pk: Any) -> StationDefinition:
    return access.get_object_for(
        StationDefinition.objects.filter(event=event), station_pk
    )


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@require_http_methods(["GET"])
@access.role_required(*ONSITE_ROLES)
def onsite_home(request: HttpRequest) -> HttpResponse:
    """现场交付: the published events not over yet, with their desk and stations."""
    events = list(onsite_selectors.onsite_events(request.user)[:20])
    return render(request, "handover/onsite/home.html", {"events": events})


@require_http_methods(["GET"])
@access.role_required(*ONSITE_ROLES)
def onsite_event(request: HttpRequest, pk: int) -> HttpResponse:
    event = _event(request, pk)
    context = {
        "event": event,
        "figures": onsite_selectors.station_figures(event),
        "can_configure": request.user.role in CONFIG_ROLES,
    }
    return render(request, "handover/onsite/event.html", context)


# --- check-in --------------------------------------------------------------------------------


def _arrival(params: bounds.Params) -> onsite.Arrival:
    return onsite.Arrival(
        attendee=params.choice(
            "attendee",
            UnitHandover.Attendee.values,
            default=UnitHandover.Attendee.OWNER,
        ),
        proxy_authorisation_id=params.id("proxy"),
        proxy_verified_by_phone=params.flag("proxy_verified"),
        identity_checked=params.flag("identity_checked"),
    )


def _desk_url(event: HandoverEvent, query: str = "", **extra: Any) -> str:
    args = {"q": query} if query else {}
    args.update(extra)
    base = reverse("handover:onsite_checkin", args=[event.pk])
    return f"{base}?{urlencode(args)}" if args else base


@require_http_methods(["GET", "POST"])
@access.role_required(*ONSITE_ROLES)
def onsite_checkin(request: HttpRequest, pk: int) -> HttpResponse:
    """Look up by QR code, unit number or owner phone; check in a booking or admit a
    walk-in. A refusal re-renders the page with the reason (409)."""
    event = _event(request, pk)
    source = request.POST if request.method == "POST" else request.GET
    params = bounds.Params(source)
    query = params.text("q", max_length=checkin_codes.CODE_MAX).strip()
    error, status = "", 200
    if request.method == "POST":
        case, error, status = _post_checkin(request, event, params)
        if case is not None:
            messages.success(
                request,
                _("%(unit)s 已签到，排队号 %(n)s。")
                % {"unit": case.event_unit.unit.label, "n": case.queue_number},
            )
            return redirect(reverse("handover:case_detail", args=[case.pk]))
    appointment = None
    units: list[EventUnit] = []
    if query:
        appointment_id = checkin_codes.appointment_id_from(query)
        if appointment_id is not None:
            appointment = (
                Appointment.objects.select_related(
                    "slot", "customer", "event_unit__unit__building"
                )
                .filter(pk=appointment_id, event=event)
                .first()
            )
            if appointment is None and not error:
                error, status = _("签到码不属于本次入伙活动。"), 404
        else:
            units = onsite_selectors.desk_units(event, query)
    context = {
        "event": event,
        "query": query,
        "appointment": appointment,
        "appointment_proxies": (
            onsite.valid_proxies(appointment.event_unit.unit_id)
            if appointment and appointment.event_unit_id
            else []
        ),
        "units": units,
        "error": error,
        "attendees": UnitHandover.Attendee.choices,
    }
    return render(request, "handover/onsite/checkin.html", context, status=status)


def _post_checkin(
    request: HttpRequest, event: HandoverEvent, params: bounds.Params
) -> tuple[UnitHandover | None, str, int]:
    arrival = _arrival(params)
    try:
        appointment_id = params.id("appointment")
        if appointment_id is not None:
            appointment = access.get_object_for(
                Appointment.objects.filter(event=event), appointment_id
            )
            if appointment.event_unit_id is None:
                return None, _("该预约未关联房间，请在预约页面签到。"), 409
            return (
                onsite.check_in(appointment, by=request.user, arrival=arrival),
                "",
                200,
            )
        unit_id, customer_id = params.id("event_unit"), params.id("customer")
        if unit_id is None or customer_id is None:
            return None, _("请选择要签到的房间和到场人。"), 400
        event_unit = access.get_object_for(
            EventUnit.objects.filter(event=event), unit_id
        )
        customer = access.get_object_for(
            Customer.objects.filter(merged_into__isnull=True), customer_id
        )
        return (
            onsite.walk_in(event_unit, customer, by=request.user, arrival=arrival),
            "",
            200,
        )
    except onsite.services.BookingError as exc:
        return None, exc.message, 409


# --- station configuration -----------------------------------------------------------------


def _config_rows(
    params: bounds.Params, data: Any, stations: list[StationDefinition]
) -> tuple[list[onsite.StationRow], list[str]]:
    rows, errors = [], []
    for station in stations:
        key = str(station.pk)
        try:
            position = params.integer(f"position_{key}", min_value=1, max_value=999)
            counters = params.integer(f"counters_{key}", min_value=1, max_value=50)
            target = params.integer(f"target_{key}", min_value=1, max_value=240)
        except bounds.BadParameter as exc:
            errors.append(exc.message)
            continue
        prereqs = []
        for raw in data.getlist(f"prereq_{key}"):
            value = bounds.as_id(raw)
            if value is None:
                errors.append(_("前置站点无效。"))
            else:
                prereqs.append(value)
        rows.append(
            onsite.StationRow(
                station=station,
                name=params.text(f"name_{key}", max_length=40),
                position=position if position is not None else station.position,
                required=params.flag(f"required_{key}"),
                prerequisites=prereqs,
                counters=counters if counters is not None else station.counters,
                target_minutes=target if target is not None else station.target_minutes,
            )
        )
    return rows, errors


@require_http_methods(["GET", "POST"])
@access.role_required(*CONFIG_ROLES)
def station_config(request: HttpRequest, pk: int) -> HttpResponse:
    event = _event(request, pk)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        if request.POST.get("action") == "default":
            onsite.ensure_default_stations(event)
            messages.success(request, _("已创建默认站点。"))
            return redirect(reverse("handover:station_config", args=[event.pk]))
        stations = list(event.stations.order_by("position"))
        rows, errors = _config_rows(bounds.Params(request.POST), request.POST, stations)
        if not errors:
            try:
                onsite.stations_save(by=request.user, event=event, rows=rows)
            except ValidationError as exc:
                errors = list(exc.messages)
            else:
                messages.success(request, _("站点设置已保存。"))
                return redirect(reverse("handover:station_config", args=[event.pk]))
        status = 400
    return _config_page(request, event, errors=errors, status=status)


def _config_page(
    request: HttpRequest,
    event: HandoverEvent,
    *,
    errors: list[str] | None = None,
    add_form: StationAddForm | None = None,
    add_errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    stations = list(
        event.stations.prefetch_related("prerequisites").order_by("position")
    )
    for station in stations:
        station.prereq_ids = {p.pk for p in station.prerequisites.all()}
    used = {s.code for s in stations}
    free = [(c, label) for c, label in StationDefinition.Code.choices if c not in used]
    context = {
        "event": event,
        "stations": stations,
        "errors": errors or [],
        "add_form": add_form or StationAddForm(stations=stations, free_codes=free),
        "add_errors": add_errors or [],
        "can_add": bool(free) and len(stations) < onsite.MAX_STATIONS,
    }
    return render(
        request, "handover/onsite/station_config.html", context, status=status
    )


@require_http_methods(["POST"])
@access.role_required(*CONFIG_ROLES)
def station_add(request: HttpRequest, pk: int) -> HttpResponse:
    """添加站点: a station of a kind the event has none of; errors re-render the
    setup page with the add form (400)."""
    event = _event(request, pk)
    stations = list(event.stations.order_by("position"))
    form = StationAddForm(
        request.POST,
        stations=stations,
        free_codes=onsite.station_codes_free(event),
    )
    errors: list[str] = []
    if form.is_valid():
        try:
            station = onsite.station_add(
                by=request.user, event=event, **form.cleaned_data
            )
        except ValidationError as exc:
            errors = list(exc.messages)
        else:
            messages.success(
                request, _("已添加站点“%(name)s”。") % {"name": station.name}
            )
            return redirect(reverse("handover:station_config", args=[event.pk]))
    return _config_page(request, event, add_form=form, add_errors=errors, status=400)


@require_http_methods(["GET", "POST"])
@access.role_required(*CONFIG_ROLES)
def station_delete(request: HttpRequest, pk: int, station_pk: int) -> HttpResponse:
    """删除站点: a confirmation page saying what changes (or why it cannot be
    deleted), then the delete; a refusal re-renders the page with the reason (409)."""
    event = _event(request, pk)
    station = _station(event, station_pk)
    error, status = "", 200
    if request.method == "POST":
        try:
            onsite.station_delete(by=request.user, station=station)
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 409
        else:
            messages.success(
                request, _("已删除站点“%(name)s”。") % {"name": station.name}
            )
            return redirect(reverse("handover:station_config", args=[event.pk]))
    context = {
        "event": event,
        "station": station,
        "plan": onsite.station_deletion(station),
        "error": error,
    }
    return render(
        request, "handover/onsite/station_delete.html", context, status=status
    )


# --- stations ------------------------------------------------------------------------------


def _station_context(
    request: HttpRequest, event: HandoverEvent, station: StationDefinition
) -> dict[str, Any]:
    visits, waiting = onsite_selectors.station_queue(station)
    return {
        "event": event,
        "station": station,
        "visits": visits,
        "waiting": waiting,
        "counter_choices": range(1, station.counters + 1),
        "counter": bounds.params(request).integer(
            "counter", min_value=1, max_value=50, default=None
        ),
    }


@require_http_methods(["GET"])
@access.role_required(*ONSITE_ROLES)
def station_page(request: HttpRequest, pk: int, station_pk: int) -> HttpResponse:
    event = _event(request, pk)
    station = _station(event, station_pk)
    context = _station_context(request, event, station)
    if _is_htmx(request):
        return render(request, "handover/onsite/_queue.html", context)
    return render(request, "handover/onsite/station.html", context)


def _after_action(
    request: HttpRequest,
    event: HandoverEvent,
    station: StationDefinition,
    error: str,
) -> HttpResponse:
    counter = bounds.Params(request.POST).integer(
        "counter", min_value=1, max_value=50, default=None
    )
    if _is_htmx(request):
        context = _station_context(request, event, station)
        context["error"] = error
        context["counter"] = counter
        return render(request, "handover/onsite/_queue.html", context)
    if error:
        messages.error(request, error)
    url = reverse("handover:station_page", args=[event.pk, station.pk])
    if counter:
        url += f"?counter={counter}"
    return redirect(url)


@require_http_methods(["POST"])
@access.role_required(*ONSITE_ROLES)
def station_call_next(request: HttpRequest, pk: int, station_pk: int) -> HttpResponse:
    event = _event(request, pk)
    station = _station(event, station_pk)
    params = bounds.Params(request.POST)
    counter = params.integer("counter", min_value=1, max_value=50, default=None)
    called = onsite.call_next(station, by=request.user, counter=counter)
    error = "" if called else _("当前没有排队的业主。")
    return _after_action(request, event, station, error)


@require_http_methods(["POST"])
@access.role_required(*ONSITE_ROLES)
def visit_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in VISIT_ACTIONS:
        raise Http404
    visit = access.get_object_for(
        StationVisit.objects.filter(
            case__event__in=selectors.events_for(request.user)
        ).select_related("station__event"),
        pk,
    )
    station = visit.station
    params = bounds.Params(request.POST)
    version = params.integer("version", min_value=1, max_value=2**31 - 1)
    counter = params.integer("counter", min_value=1, max_value=50, default=None)
    error = ""
    try:
        if action == "call":
            onsite.visit_call(visit, by=request.user, version=version, counter=counter)
        elif action == "start":
            onsite.visit_start(visit, by=request.user, version=version, counter=counter)
        elif action == "finish":
            onsite.visit_finish(
                visit,
                by=request.user,
                version=version,
                note=params.text("note", max_length=300),
            )
        elif action == "skip":
            onsite.visit_skip(
                visit,
                by=request.user,
                version=version,
                reason=params.text("reason", max_length=200),
            )
        else:
            onsite.visit_requeue(visit, by=request.user, version=version)
    except onsite.OnsiteError as exc:
        error = exc.message
    next_url = params.text("next", max_length=200)
    if next_url == "case" and not _is_htmx(request):
        if error:
            messages.error(request, error)
        return redirect(reverse("handover:case_detail", args=[visit.case_id]))
    return _after_action(request, station.event, station, error)


# --- the case --------------------------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*ONSITE_ROLES)
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = access.get_object_for(onsite_selectors.cases_for(request.user), pk)
    context = {"case": case, **onsite_selectors.case_detail(case)}
    return render(request, "handover/onsite/case_detail.html", context)
