"""`handover.checkin`, `handover.station` and `handover.defect`: the day's writes on
seed_scale's on-the-day event (service/handover/scale_onsite.py, 5,000 units), each
posted by 50 staff at once over loopback, through the real pages:

- checkin: the 750 units not arrived yet are booked into a slot of today (setup, not
  timed); each booking is checked in at the desk (POST …/onsite/check-in/, the case,
  its six visits, the log and the counters in one transaction);
- station: the 600 owners waiting at the first station are started there (POST
  /handover/visits/<id>/start/ with the visit's version), after their visits and cases
  are put back to waiting (setup);
- defect: a defect is recorded on each generated case in progress (600, and the 600
  the station scenario started: 1,200; POST /defects/record/case/<id>/, no photo).

Each POST's server time (X-Kehu-Server-Ms) is what the goal judges, as for the pages;
the figures also give the client's p95 (queueing in front of gunicorn included), the
requests per second and the refusals. What each POST changed is checked in the
database afterwards (a 302 alone does not prove it).
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CLIENTS = 50
LOGIN = "manager"
PASSWORD = os.environ.get("KEHU_BENCH_PASSWORD", "kehu-bench")
CSRF_FORM = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')
SLOT_START = "07:00"

_state: dict[str, Any] = {}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Desk:
    """One member of staff's browser: a session, its CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            NoRedirect(),
        )

    def request(self, path: str, data: dict[str, Any] | None = None) -> tuple:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body)  # noqa: S310 - loopback
        start = time.perf_counter()
        try:
            with self.opener.open(req, timeout=120) as response:
                status, text, head = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, text, head = error.code, error.read(), error.headers
        return status, text.decode(errors="replace"), head, time.perf_counter() - start

    def login(self) -> None:
        _s, page, _h, _t = self.request("/accounts/login/")
        form = CSRF_FORM.search(page)
        if not form:
            raise RuntimeError("no CSRF token in the login form")
        status, _p, _h, _t = self.request(
            "/accounts/login/",
            {
                "username": LOGIN,
                "password": PASSWORD,
                "csrfmiddlewaretoken": form.group(1),
            },
        )
        if status != 302:
            raise RuntimeError(f"login as {LOGIN} failed (HTTP {status})")
        _s, page, _h, _t = self.request("/")
        token = CSRF_HEADER.search(page)
        if not token:
            raise RuntimeError("no CSRF token on the home page")
        self.token = token.group(1)


def _desks(base: str) -> list[Desk]:
    if _state.get("base") != base:
        desks = [Desk(base) for _ in range(CLIENTS)]
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda desk: desk.login(), desks))
        _state.update(base=base, desks=desks)
    return _state["desks"]


def _p(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _fire(base: str, jobs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Every job posted once, CLIENTS at a time; redirects (302) and 200s are answers,
    anything else an error."""
    desks = _desks(base)
    jobs_left = iter(jobs)
    lock = threading.Lock()
    server: list[float] = []
    cpu: list[float] = []
    client: list[float] = []
    errors: list[str] = []

    def work(desk: Desk) -> None:
        while True:
            with lock:
                job = next(jobs_left, None)
            if job is None:
                return
            path, data = job
            try:
                status, _text, head, seconds = desk.request(
                    path, {**data, "csrfmiddlewaretoken": desk.token}
                )
            except OSError as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}")
                continue
            with lock:
                client.append(seconds * 1000)
                if status not in (200, 302):
                    errors.append(f"HTTP {status}")
                    continue
                server.append(float(head.get("X-Kehu-Server-Ms", "nan")))
                cpu.append(float(head.get("X-Kehu-Cpu-Ms", "nan")))

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(work, desks))
    wall = time.perf_counter() - start
    for kind in sorted(set(errors))[:5]:
        print(f"[bench] handover on-site error: {kind}")  # noqa: T201
    return {
        "elapsed_ms": wall * 1000,
        "posts": len(jobs),
        "errors": len(errors),
        "rps": round(len(client) / wall, 1) if wall else 0,
        "server_p50_ms": round(_p(server, 50), 1),
        "server_p95_ms": round(_p(server, 95), 1),
        "server_cpu_p50_ms": round(_p(cpu, 50), 1),
        "client_p95_ms": round(_p(client, 95), 1),
    }


# --- the data --------------------------------------------------------------------------


def _event() -> Any:
    from service.handover import scale_onsite
    from service.handover.models import HandoverEvent

    return HandoverEvent.objects.filter(name=scale_onsite.EVENT_NAME).first()


def missing() -> str | None:
    """A `needs` check: the on-the-day event and the on-site services exist."""
    try:
        from service.defects import services as defect_services  # noqa: F401
        from service.handover import onsite  # noqa: F401
    except ImportError:
        return "the on-site services (check-in, stations, defects) are not built"
    if _event() is None:
        return "the bench on-the-day handover event is missing"
    return None


def _today_event() -> Any:
    """The event dated today (data reused days later is moved, not rebuilt)."""
    import datetime as dt

    from django.utils import timezone

    from service.handover.models import HandoverEvent

    event = _event()
    today = timezone.localdate()
    HandoverEvent.objects.filter(pk=event.pk).update(
        start_date=today, end_date=today + dt.timedelta(days=1)
    )
    event.refresh_from_db()
    return event


def checkin_setup(fx: Any) -> None:
    """Undo the previous run's check-ins and book the units not arrived into a slot
    of today (not timed)."""
    import datetime as dt

    from django.db import transaction
    from django.utils import timezone

    from crm.accounts.models import User
    from service.defects.models import Defect
    from service.handover import counters
    from service.handover.models import (
        Appointment,
        CaseLog,
        EventUnit,
        StationVisit,
        TimeSlot,
        UnitHandover,
    )
    from service.property.models import UnitOwnership

    event = _today_event()
    today = timezone.localdate()
    admin = User.objects.get(username="admin")
    with transaction.atomic():
        made = UnitHandover.objects.filter(event=event, checked_in_by__isnull=False)
        Defect.objects.filter(case__in=made).update(case=None)
        StationVisit.objects.filter(case__in=made).delete()
        CaseLog.objects.filter(case__in=made).delete()
        made.delete()
        old = TimeSlot.objects.filter(event=event, date=today, start_time=SLOT_START)
        Appointment.objects.filter(slot__in=old).delete()
        old.delete()
        arrived = UnitHandover.objects.filter(event=event).values("event_unit_id")
        units = list(
            EventUnit.objects.filter(event=event)
            .exclude(pk__in=arrived)
            .order_by("pk")
            .values_list("pk", "unit_id")
        )
        owner = dict(
            UnitOwnership.objects.filter(
                unit_id__in=[u for _eu, u in units], role="primary", is_active=True
            ).values_list("unit_id", "customer_id")
        )
        slot = TimeSlot.objects.create(
            event=event,
            date=today,
            start_time=dt.time(7, 0),
            end_time=dt.time(23, 0),
            capacity=len(units) + 10,
            booked_count=len(units),
            walk_in_hold=0,
        )
        Appointment.objects.bulk_create(
            Appointment(
                event=event,
                slot=slot,
                customer_id=owner[unit_id],
                event_unit_id=event_unit_id,
                unit=str(unit_id),
                created_by=admin,
            )
            for event_unit_id, unit_id in units
            if unit_id in owner
        )
    counters.rebuild(event.pk)
    _state["checkin"] = (
        event.pk,
        list(
            Appointment.objects.filter(slot=slot)
            .order_by("pk")
            .values_list("pk", flat=True)
        ),
    )


def checkin_run(fx: Any) -> dict[str, Any]:
    from service.handover import counters
    from service.handover.models import UnitHandover

    event_id, appointments = _state["checkin"]
    path = f"/handover/events/{event_id}/onsite/check-in/"
    figures = _fire(
        fx.base,
        [(path, {"appointment": pk, "attendee": "owner"}) for pk in appointments],
    )
    figures["checked_in"] = UnitHandover.objects.filter(
        event_id=event_id, appointment_id__in=appointments
    ).count()
    figures["counters_drift"] = len(counters.recount_differs(event_id))
    return figures


def _first_station(event: Any) -> Any:
    return event.stations.order_by("position").first()


def station_setup(fx: Any) -> None:
    """The generated owners waiting at the first station (cases checked in, not by the
    desk) are put back to waiting there (not timed)."""
    from django.db import transaction
    from django.db.models import F

    from service.handover import counters
    from service.handover.models import StationVisit, UnitHandover

    event = _today_event()
    station = _first_station(event)
    generated = UnitHandover.objects.filter(event=event, checked_in_by__isnull=True)
    with transaction.atomic():
        visits = StationVisit.objects.filter(
            station=station,
            case__in=generated,
            state__in=["waiting", "called", "in_service"],
        )
        cases = list(visits.values_list("case_id", flat=True))
        visits.update(
            state="waiting",
            called_at=None,
            started_at=None,
            counter=None,
            operator=None,
            version=F("version") + 1,
        )
        UnitHandover.objects.filter(pk__in=cases).update(
            state="checked_in", started_at=None
        )
    counters.rebuild(event.pk)
    _state["station"] = (
        event.pk,
        station.pk,
        list(
            StationVisit.objects.filter(station=station, case_id__in=cases)
            .order_by("pk")
            .values_list("pk", "version")
        ),
    )


def station_run(fx: Any) -> dict[str, Any]:
    from service.handover import counters
    from service.handover.models import StationVisit

    event_id, station_id, visits = _state["station"]
    figures = _fire(
        fx.base,
        [
            (f"/handover/visits/{pk}/start/", {"version": version, "counter": 1})
            for pk, version in visits
        ],
    )
    figures["started"] = StationVisit.objects.filter(
        pk__in=[pk for pk, _v in visits], state="in_service"
    ).count()
    figures["counters_drift"] = len(counters.recount_differs(event_id))
    return figures


def defect_setup(fx: Any) -> None:
    from service.defects.models import DefectCategory
    from service.handover.models import UnitHandover

    event = _today_event()
    cases = list(
        UnitHandover.objects.filter(
            event=event, state="in_progress", checked_in_by__isnull=True
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    leaves = list(
        DefectCategory.objects.filter(level=3)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    _state["defect"] = (event.pk, cases, leaves)


def defect_run(fx: Any) -> dict[str, Any]:
    from service.defects.models import Defect
    from service.handover import counters

    event_id, cases, leaves = _state["defect"]
    before = Defect.objects.filter(event_id=event_id).count()
    rooms = ["living", "kitchen", "bathroom", "master", "balcony"]
    figures = _fire(
        fx.base,
        [
            (
                f"/defects/record/case/{pk}/",
                {
                    "room": rooms[n % len(rooms)],
                    "category": leaves[n % len(leaves)],
                    "severity": "P1" if n % 5 == 0 else "P2",
                    "description": "墙面空鼓（压测）",
                },
            )
            for n, pk in enumerate(cases)
        ],
    )
    figures["recorded"] = Defect.objects.filter(event_id=event_id).count() - before
    figures["counters_drift"] = len(counters.recount_differs(event_id))
    return figures
