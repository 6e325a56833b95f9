"""`handover.booking_burst` and `handover.owner_page`: owners book their 入伙 slot
through their personal links, against the bench's gunicorn over loopback.

The event is seed_scale's 5,000-unit 集中交付 (service/handover/scale.py): four
batches of 1,250 units, each with one day of 18 slots of 80 households, 8 of them held
for walk-ins (so 72 for owners until the release hour).

setup (not timed) puts the event back as the burst needs it, whatever an earlier run
or an older build left: the event two weeks ahead, the windows open, the links live,
no bookings, every seat free. It picks OWNERS units spread over the four batches,
eligible ones, and makes each primary owner's token as a notice would
(links.token_for).

run (timed): OWNERS owners, CLIENTS at a time (closed loop: each client takes the next
owner as soon as it is done), each with their own cookie jar, open their page (GET,
which gives the CSRF cookie and the free slots), pick a slot and book it (POST). Most
owners want the first slots of their day (a geometric choice), so those fill up and
the refusal path runs too: an owner refused a full slot (409, or 400 when the page
already showed it full) picks again from the page that came back, up to ATTEMPTS
times. The redirect to the confirmation is not followed.

It reports bookings per second over the wall time (`rps`, the goal's figure), HTTP
requests per second, `errors` (any answer but 200/302/400/409, a refusal that is not
about a full slot, a transport error, or an owner left without a booking while seats
were free), the p50/p95 of the GETs and POSTs as the client saw them, and from the
database afterwards: `overbooked` (slots with booked_count or active appointments
above capacity; must be 0), `counter_mismatch` (slots whose booked_count is not their
number of active appointments; must be 0) and `held_seats_taken` (owner bookings
beyond capacity - walk-in hold in a slot; must be 0 before the release hour).
"""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import random
import re
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

OWNERS = 2_000
CLIENTS = 50
ATTEMPTS = 5
PAGE_SAMPLE = 200
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
FREE_SLOT = re.compile(r'<input type="radio" name="slot" value="(\d+)">')
REFUSAL = re.compile(r'data-testid="owner-error">([^<]*)<')
# A refusal for a seat (full, or only the walk-in hold left): pick again.
NO_SEAT = ("已满", "现场预留")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _event() -> Any:
    from service.handover import scale
    from service.handover.models import HandoverEvent

    return HandoverEvent.objects.filter(name=scale.EVENT_NAME).first()


def missing() -> str | None:
    """A `needs` check: the 5,000-unit event and its links were built."""
    from crm.core import scale as platform_scale

    state = platform_scale.read_state().get("handover_links")
    if not state or state["missing"] or not state["rows"]:
        return "bench dataset handover_links not built"
    if _event() is None:
        return "the bench handover event is missing"
    return None


def _reset(event: Any) -> None:
    """The event two weeks ahead with open windows, live links and no bookings."""
    from crm.core.models import LimitCounter
    from service.handover import scale
    from service.handover.models import Appointment, Batch, OwnerLink, TimeSlot

    start = timezone.localdate() + dt.timedelta(days=scale.DAYS_AHEAD)
    shift = (start - event.start_date).days
    now = timezone.now()
    with transaction.atomic():
        Appointment.objects.filter(event=event).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM scheduler_scheduledaction WHERE kind = %s",
                ["handover.appointment_reminder"],
            )
        if shift:
            # Two steps: a one-step move collides with the next day's slots in the
            # (event, date, start_time) unique index row by row.
            slots = TimeSlot.objects.filter(event=event)
            slots.update(date=F("date") + dt.timedelta(days=36500))
            slots.update(date=F("date") - dt.timedelta(days=36500 - shift))
            type(event).objects.filter(pk=event.pk).update(
                start_date=start,
                end_date=event.end_date + dt.timedelta(days=shift),
            )
        TimeSlot.objects.filter(event=event).update(booked_count=0)
        Batch.objects.filter(event=event).update(
            booking_opens_at=now - dt.timedelta(days=1),
            booking_closes_at=now + dt.timedelta(days=scale.DAYS_AHEAD - 1),
        )
        OwnerLink.objects.filter(event_unit__event=event).update(
            expires_at=now + dt.timedelta(days=60), revoked_at=None
        )
        LimitCounter.objects.filter(key__startswith="owner-ip:").delete()


def tokens(count: int) -> list[str]:
    """The primary owners' tokens of `count` eligible units spread over the event."""
    from service.handover import links
    from service.handover.models import OwnerLink

    event = _event()
    rows = list(
        OwnerLink.objects.filter(
            event_unit__event=event,
            event_unit__eligibility="eligible",
            revoked_at__isnull=True,
        )
        .order_by("event_unit__unit__code")
        .only("id", "nonce")
    )
    step = max(1, len(rows) // count)
    return [links.token_for(link) for link in rows[::step][:count]]


@dataclass
class Fixture:
    base: str
    tokens: list[str] = field(default_factory=list)


_prepared: dict[str, Fixture] = {}


def setup(fixtures: Any) -> None:
    event = _event()
    _reset(event)
    _prepared["burst"] = Fixture(base=fixtures.base, tokens=tokens(OWNERS))


@dataclass
class Outcome:
    get_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    # What the server's bench middleware says each took: wall time and CPU.
    get_server: list[tuple[float, float]] = field(default_factory=list)
    post_server: list[tuple[float, float]] = field(default_factory=list)
    booked: int = 0
    full_refusals: int = 0
    errors: list[str] = field(default_factory=list)


class Owner:
    def __init__(self, base: str, token: str, seed: int) -> None:
        self.base = base
        self.path = f"/o/{token}/"
        self.random = random.Random(seed)  # noqa: S311 - a workload, not a secret
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            NoRedirect(),
        )

    def request(
        self, data: dict[str, str] | None = None
    ) -> tuple[int, str, float, tuple[float, float]]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + self.path, data=body)  # noqa: S310 - loopback
        start = time.perf_counter()
        try:
            with self.opener.open(req, timeout=60) as response:
                status, text = response.status, response.read().decode()
                head = response.headers
        except urllib.error.HTTPError as error:
            status, text, head = error.code, error.read().decode(), error.headers
        server = (
            float(head.get("X-Kehu-Server-Ms", "nan")),
            float(head.get("X-Kehu-Cpu-Ms", "nan")),
        )
        return status, text, (time.perf_counter() - start) * 1000, server

    def pick(self, page: str) -> str | None:
        free = FREE_SLOT.findall(page)
        if not free:
            return None
        # Geometric: half the owners want the first free slot, a quarter the next ...
        index = 0
        while index < len(free) - 1 and self.random.random() < 0.5:
            index += 1
        return free[index]

    def book(self, outcome: Outcome, lock: threading.Lock) -> None:
        try:
            status, page, ms, server = self.request()
        except OSError as exc:
            with lock:
                outcome.errors.append(f"GET: {exc}")
            return
        with lock:
            outcome.get_ms.append(ms)
            outcome.get_server.append(server)
        if status != 200:
            with lock:
                outcome.errors.append(f"GET {status}")
            return
        token = CSRF.search(page)
        for _attempt in range(ATTEMPTS):
            slot = self.pick(page)
            if slot is None or token is None:
                with lock:
                    outcome.errors.append("no free slot offered")
                return
            form = {
                "csrfmiddlewaretoken": token.group(1),
                "slot": slot,
                "party_size": str(1 + self.random.randrange(3)),
            }
            try:
                status, page, ms, server = self.request(form)
            except OSError as exc:
                with lock:
                    outcome.errors.append(f"POST: {exc}")
                return
            with lock:
                outcome.post_ms.append(ms)
                outcome.post_server.append(server)
            if status == 302:
                with lock:
                    outcome.booked += 1
                return
            refusal = REFUSAL.search(page) if status in (400, 409) else None
            if refusal and any(word in refusal.group(1) for word in NO_SEAT):
                with lock:
                    outcome.full_refusals += 1
                continue  # the page that came back lists what is still free
            with lock:
                outcome.errors.append(
                    f"POST {status}: {refusal.group(1) if refusal else ''}"
                )
            return
        with lock:
            outcome.errors.append("gave up after full slots")


def _p(values: list[float], q: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def invariants(event: Any) -> dict[str, int]:
    """What must hold in the database after the burst, read slot by slot."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT s.capacity, s.booked_count, s.walk_in_hold,
                   count(a.id) FILTER (WHERE a.state IN ('booked', 'checked_in')),
                   count(a.id) FILTER (WHERE a.state IN ('booked', 'checked_in')
                                       AND a.channel = 'owner_link')
            FROM handover_timeslot s
            LEFT JOIN handover_appointment a ON a.slot_id = s.id
            WHERE s.event_id = %s
            GROUP BY s.id
            """,
            [event.pk],
        )
        slots = cursor.fetchall()
        cursor.execute(
            "SELECT count(*) FROM (SELECT event_unit_id FROM handover_appointment "
            "WHERE event_id = %s AND state IN ('booked', 'checked_in') "
            "GROUP BY event_unit_id HAVING count(*) > 1) AS twice",
            [event.pk],
        )
        units_twice = cursor.fetchone()[0]
    return {
        "overbooked": sum(
            1 for cap, booked, _h, active, _o in slots if booked > cap or active > cap
        ),
        "counter_mismatch": sum(
            1 for _c, booked, _h, active, _o in slots if booked != active
        ),
        "held_seats_taken": sum(
            1 for cap, _b, hold, _a, owners in slots if owners > cap - hold
        ),
        "units_booked_twice": units_twice,
        "active_bookings": sum(active for _c, _b, _h, active, _o in slots),
        "slots_full_for_owners": sum(
            1 for cap, booked, hold, _a, _o in slots if booked >= cap - hold
        ),
    }


def run(fixtures: Any) -> dict[str, Any]:
    prepared = _prepared["burst"]
    outcome = Outcome()
    lock = threading.Lock()
    owners = [
        Owner(prepared.base, token, seed=n) for n, token in enumerate(prepared.tokens)
    ]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(lambda owner: owner.book(outcome, lock), owners))
    wall = time.perf_counter() - start
    for kind in sorted(set(outcome.errors))[:5]:
        sys.stdout.write(f"[bench] handover.booking_burst error: {kind}\n")
    checks = invariants(_event())
    requests = len(outcome.get_ms) + len(outcome.post_ms)
    return {
        "elapsed_ms": wall * 1000,
        "owners": len(owners),
        "booked": outcome.booked,
        "rps": round(outcome.booked / wall, 1),
        "http_rps": round(requests / wall, 1),
        "http_requests": requests,
        "elapsed_s": round(wall, 1),
        "errors": len(outcome.errors),
        "full_refusals": outcome.full_refusals,
        "get_p50_ms": round(_p(outcome.get_ms, 50), 1),
        "get_p95_ms": round(_p(outcome.get_ms, 95), 1),
        "post_p50_ms": round(_p(outcome.post_ms, 50), 1),
        "post_p95_ms": round(_p(outcome.post_ms, 95), 1),
        "get_server_p50_ms": round(_p([w for w, _c in outcome.get_server], 50), 1),
        "get_cpu_p50_ms": round(_p([c for _w, c in outcome.get_server], 50), 1),
        "post_server_p50_ms": round(_p([w for w, _c in outcome.post_server], 50), 1),
        "post_cpu_p50_ms": round(_p([c for _w, c in outcome.post_server], 50), 1),
        **checks,
    }


def owner_pages(fixtures: Any) -> list[str]:
    """PAGE_SAMPLE owners' pages over the event: booked units (the confirmation with
    the QR code) and unbooked ones (the free slots of their batch)."""
    return [f"/o/{token}/" for token in tokens(PAGE_SAMPLE)]
