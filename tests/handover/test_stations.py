"""Stations (issue 17, part 2): the default sequence and its configuration, gating,
the station queue (call next, start, finish, skip, requeue) with optimistic
concurrency, two tablets calling at once, the case's move to IN_PROGRESS, the board's
counters against a recount, and the access rule of each page."""

from __future__ import annotations

import random
import threading

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections
from django.urls import reverse
from pytest_django.asserts import assertContains

from service.handover import counters, onsite, onsite_selectors
from service.handover.models import (
    StationDefinition,
    StationVisit,
    UnitHandover,
)
from tests.handover.checkin_builders import at, board, booked_event, day_of, recount

pytestmark = pytest.mark.django_db

Code = StationDefinition.Code
VState = StationVisit.State
MISSING = 987654321


def checked_in(admin_user, by, *, units=2):
    """An event with `units` owners checked in at 09:05 on the day (time frozen there
    by the caller's time_machine)."""
    event, rows = booked_event(admin_user, units=units)
    cases = [onsite.check_in(a, by=by) for _eu, _o, a in rows]
    return event, cases


def visit(case, code):
    return StationVisit.objects.select_related("station").get(
        case=case, station__code=code
    )


def station(event, code):
    return StationDefinition.objects.get(event=event, code=code)


def serve(case, code, by):
    """Start and finish the case at the station."""
    v = visit(case, code)
    v = onsite.visit_start(v, by=by, version=v.version)
    return onsite.visit_finish(v, by=by, version=v.version)


# --- the sequence --------------------------------------------------------------------------


def test_default_sequence(admin_user):
    event, _rows = booked_event(admin_user, units=0)
    stations = onsite.ensure_default_stations(event)
    assert [s.code for s in stations] == [
        "identity",
        "documents",
        "settlement",
        "fees",
        "signing",
        "inspection",
        "meters",
        "keys",
        "acceptance",
        "survey",
    ]
    prereqs = {s.code: sorted(p.code for p in s.prerequisites.all()) for s in stations}
    assert prereqs["keys"] == ["fees", "inspection", "settlement", "signing"]
    assert prereqs["signing"] == prereqs["inspection"] == ["identity"]
    assert prereqs["meters"] == ["inspection"]
    assert prereqs["acceptance"] == ["keys"] and prereqs["survey"] == ["acceptance"]
    assert not next(s for s in stations if s.code == "survey").required
    # Twice: nothing more.
    assert len(onsite.ensure_default_stations(event)) == 10


def rows_of(event):
    return [
        onsite.StationRow(
            station=s,
            name=s.name,
            position=s.position,
            required=s.required,
            prerequisites=[p.pk for p in s.prerequisites.all()],
            counters=s.counters,
            target_minutes=s.target_minutes,
        )
        for s in event.stations.order_by("position")
    ]


def test_sequence_rules(admin_user, manager, service_agent):
    event, _rows = booked_event(admin_user, units=0)
    onsite.ensure_default_stations(event)
    rows = rows_of(event)
    by_code = {row.station.code: row for row in rows}
    # A prerequisite placed after its station (also what a cycle needs).
    by_code["identity"].position = 999
    with pytest.raises(ValidationError, match="必须排在它之前"):
        onsite.stations_save(by=manager, event=event, rows=rows)
    by_code["identity"].position = 10
    # A cycle: identity needs keys, keys (via inspection) needs identity.
    by_code["identity"].prerequisites = [by_code["keys"].station.pk]
    with pytest.raises(ValidationError):
        onsite.stations_save(by=manager, event=event, rows=rows)
    by_code["identity"].prerequisites = []
    by_code["documents"].prerequisites = [by_code["documents"].station.pk]
    with pytest.raises(ValidationError, match="自己"):
        onsite.stations_save(by=manager, event=event, rows=rows)
    by_code["documents"].prerequisites = []
    by_code["fees"].position = by_code["settlement"].position
    with pytest.raises(ValidationError, match="不能重复"):
        onsite.stations_save(by=manager, event=event, rows=rows)
    # Swapping two positions, renaming, more counters: saved.
    by_code["fees"].position, by_code["settlement"].position = 30, 40
    by_code["fees"].name = "缴费窗口"
    by_code["fees"].counters = 4
    by_code["survey"].required = True
    onsite.stations_save(by=manager, event=event, rows=rows)
    fees = station(event, Code.FEES)
    assert (fees.position, fees.name, fees.counters) == (30, "缴费窗口", 4)
    assert station(event, Code.SETTLEMENT).position == 40
    assert station(event, Code.SURVEY).required
    with pytest.raises(PermissionDenied):
        onsite.stations_save(by=service_agent, event=event, rows=rows)


def test_config_page(client, admin_user, manager, service_agent):
    event, _rows = booked_event(admin_user, units=0)
    url = reverse("handover:station_config", args=[event.pk])
    client.force_login(service_agent)
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "default"}).status_code == 403
    client.force_login(manager)
    assertContains(client.get(url), 'data-testid="create-default"')
    assert client.post(url, {"action": "default"}).status_code == 302
    assert event.stations.count() == 10
    identity = station(event, Code.IDENTITY)
    keys = station(event, Code.KEYS)
    data = {}
    for s in event.stations.all():
        data.update(
            {
                f"name_{s.pk}": s.name,
                f"position_{s.pk}": s.position,
                f"counters_{s.pk}": s.counters,
                f"target_{s.pk}": s.target_minutes,
            }
        )
        if s.required:
            data[f"required_{s.pk}"] = "1"
    data[f"prereq_{identity.pk}"] = [keys.pk]
    response = client.post(url, data)
    assertContains(response, "必须排在它之前", status_code=400)
    data[f"prereq_{identity.pk}"] = []
    data[f"counters_{identity.pk}"] = "9999"
    assert client.post(url, data).status_code == 400
    data[f"counters_{identity.pk}"] = "abc"
    assert client.post(url, data).status_code == 400
    data[f"counters_{identity.pk}"] = "3"
    data[f"prereq_{keys.pk}"] = [identity.pk]
    assert client.post(url, data).status_code == 302
    assert station(event, Code.IDENTITY).counters == 3
    assert [p.code for p in station(event, Code.KEYS).prerequisites.all()] == [
        "identity"
    ]
    missing = reverse("handover:station_config", args=[MISSING])
    assert client.get(missing).status_code == 404


# --- gating and the case -------------------------------------------------------------------


def test_gating_and_the_case_in_progress(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1)
    with time_machine.travel(at(day_of(event), 9, 5)):
        case = onsite.check_in(rows[0][2], by=service_agent)
    with time_machine.travel(at(day_of(event), 9, 15)):
        v = visit(case, Code.IDENTITY)
        v = onsite.visit_call(v, by=service_agent, version=v.version, counter=2)
        assert (v.state, v.counter) == (VState.CALLED, 2)
        case.refresh_from_db()
        assert case.state == UnitHandover.State.CHECKED_IN
        v = onsite.visit_start(v, by=service_agent, version=v.version)
        case.refresh_from_db()
        assert case.state == UnitHandover.State.IN_PROGRESS
        assert case.started_at == v.started_at
    with time_machine.travel(at(day_of(event), 9, 20), tick=False):
        onsite.visit_finish(v, by=service_agent, version=v.version)
    case.refresh_from_db()
    assert case.identity_checked_by == service_agent
    assert visit(case, Code.SIGNING).state == VState.WAITING
    assert visit(case, Code.INSPECTION).state == VState.WAITING
    assert visit(case, Code.SIGNING).queued_at == at(day_of(event), 9, 20)
    assert visit(case, Code.KEYS).state == VState.PENDING
    with time_machine.travel(at(day_of(event), 9, 30)):
        for code in (Code.INSPECTION, Code.FEES, Code.SIGNING):
            serve(case, code, service_agent)
        assert visit(case, Code.METERS).state == VState.WAITING
        # Keys still waits for the settlement: skipping it (with a reason) clears it.
        assert visit(case, Code.KEYS).state == VState.PENDING
        s = visit(case, Code.SETTLEMENT)
        with pytest.raises(onsite.OnsiteError, match="原因"):
            onsite.visit_skip(s, by=service_agent, version=s.version, reason=" ")
        onsite.visit_skip(s, by=service_agent, version=s.version, reason="无面积差")
    assert visit(case, Code.SETTLEMENT).skip_reason == "无面积差"
    assert visit(case, Code.KEYS).state == VState.WAITING
    assert visit(case, Code.ACCEPTANCE).state == VState.PENDING
    # A gated station may be skipped before its turn too.
    m = visit(case, Code.SURVEY)
    onsite.visit_skip(m, by=service_agent, version=m.version, reason="业主赶时间")
    assert board(event) == recount(event)
    assert board(event)["case:in_progress"] == 1
    actions = list(case.log.values_list("action", flat=True))
    assert actions.count("station_queued") == 4  # signing, inspection, meters, keys
    assert "case_started" in actions and "station_skipped" in actions


def test_stale_versions_and_wrong_states_conflict(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1)
    with time_machine.travel(at(day_of(event), 9, 5)):
        case = onsite.check_in(rows[0][2], by=service_agent)
        v = visit(case, Code.DOCUMENTS)
        onsite.visit_call(v, by=service_agent, version=v.version)
        with pytest.raises(onsite.Conflict):  # the other tablet's page is stale
            onsite.visit_call(v, by=service_agent, version=v.version)
        with pytest.raises(onsite.Conflict):  # not started yet
            onsite.visit_finish(v, by=service_agent, version=v.version + 1)
        # The owner is at the documents counter: another station cannot take them.
        f = visit(case, Code.FEES)
        with pytest.raises(onsite.Conflict, match="其他站点"):
            onsite.visit_start(f, by=service_agent, version=f.version)
        assert onsite.call_next(station(event, Code.FEES), by=service_agent) is None
        v.refresh_from_db()
        onsite.visit_requeue(v, by=service_agent, version=v.version)
        v.refresh_from_db()
        assert v.state == VState.WAITING and v.called_at is None
        # Back in the queue: the fees station may call them now.
        called = onsite.call_next(station(event, Code.FEES), by=service_agent)
        assert called.pk == f.pk
        # A closed case takes no more station work.
        UnitHandover.objects.filter(pk=case.pk).update(state=UnitHandover.State.REFUSED)
        with pytest.raises(onsite.Conflict):
            onsite.visit_start(called, by=service_agent, version=called.version)
    with pytest.raises(PermissionDenied):
        onsite.call_next(station(event, Code.FEES), by=None)


def test_call_next_takes_the_longest_waiting(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=3)
    day = day_of(event)
    cases = []
    for minute, (_eu, _o, a) in zip((5, 6, 7), rows, strict=True):
        with time_machine.travel(at(day, 9, minute)):
            cases.append(onsite.check_in(a, by=service_agent))
    docs = station(event, Code.DOCUMENTS)
    with time_machine.travel(at(day, 9, 10)):
        first = onsite.call_next(docs, by=service_agent, counter=1)
        second = onsite.call_next(docs, by=service_agent, counter=2)
    assert (first.case_id, second.case_id) == (cases[0].pk, cases[1].pk)
    visits, waiting = onsite_selectors.station_queue(docs)
    assert waiting == 1
    assert [v.state for v in visits] == [VState.CALLED, VState.CALLED, VState.WAITING]


@pytest.mark.django_db(transaction=True)
def test_two_tablets_calling_at_once_call_different_owners(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=6)
    with time_machine.travel(at(day_of(event), 9, 5)):
        for _eu, _o, a in rows:
            onsite.check_in(a, by=service_agent)
    docs = station(event, Code.DOCUMENTS)
    called: list[int | None] = []
    errors: list[str] = []
    lock = threading.Lock()

    def tablet(barrier: threading.Barrier, counter: int) -> None:
        try:
            barrier.wait(30)
            try:
                result = onsite.call_next(docs, by=service_agent, counter=counter)
                with lock:
                    called.append(result.pk if result else None)
            except Exception as exc:  # noqa: BLE001 - anything else is the defect
                with lock:
                    errors.append(repr(exc))
        finally:
            connections.close_all()

    with time_machine.travel(at(day_of(event), 9, 10)):
        for _round in range(3):
            barrier = threading.Barrier(2)
            pair = [threading.Thread(target=tablet, args=(barrier, n)) for n in (1, 2)]
            for thread in pair:
                thread.start()
            for thread in pair:
                thread.join(60)
    assert errors == []
    assert None not in called and len(called) == 6
    assert len(set(called)) == 6  # never the same owner twice
    assert StationVisit.objects.filter(station=docs, state=VState.CALLED).count() == 6
    assert board(event) == recount(event)


def test_counters_equal_a_recount_after_random_work(admin_user, service_agent):
    rng = random.Random(17)  # noqa: S311 - a fixed sequence, not a secret
    event, rows = booked_event(admin_user, units=5)
    day = day_of(event)
    with time_machine.travel(at(day, 9, 0)) as clock:
        cases = [onsite.check_in(a, by=service_agent) for _eu, _o, a in rows]
        stations = list(event.stations.all())
        for _step in range(120):
            clock.shift(rng.randint(5, 400))
            action = rng.choice(["next", "start", "finish", "skip", "requeue"])
            try:
                if action == "next":
                    onsite.call_next(rng.choice(stations), by=service_agent)
                    continue
                v = (
                    StationVisit.objects.filter(case__in=cases)
                    .order_by("?")
                    .select_related("station")
                    .first()
                )
                if action == "start":
                    onsite.visit_start(v, by=service_agent, version=v.version)
                elif action == "finish":
                    onsite.visit_finish(v, by=service_agent, version=v.version)
                elif action == "skip":
                    onsite.visit_skip(
                        v, by=service_agent, version=v.version, reason="随机"
                    )
                else:
                    onsite.visit_requeue(v, by=service_agent, version=v.version)
            except onsite.OnsiteError:
                pass
    assert board(event) == recount(event)
    # The board's own recount (counters.recount) agrees too.
    assert counters.recount_differs(event.pk) == {}
    assert StationVisit.objects.filter(
        case__in=cases, state__in=[VState.DONE, VState.SKIPPED]
    ).exists()


# --- pages ---------------------------------------------------------------------------------


def test_station_page_and_htmx_actions(client, admin_user, service_agent):
    event, rows = booked_event(admin_user, units=2)
    with time_machine.travel(at(day_of(event), 9, 5)):
        cases = [onsite.check_in(a, by=service_agent) for _eu, _o, a in rows]
    docs = station(event, Code.DOCUMENTS)
    client.force_login(service_agent)
    url = reverse("handover:station_page", args=[event.pk, docs.pk])
    response = client.get(url)
    assertContains(response, 'data-testid="call-next"')
    assertContains(response, cases[0].event_unit.unit.label)
    # The owner's name is masked to the surname on the station screen.
    assertContains(response, onsite_selectors.mask_name(cases[0].customer.name))
    htmx = {"HTTP_HX_REQUEST": "true"}
    response = client.post(
        reverse("handover:station_call_next", args=[event.pk, docs.pk]),
        {"counter": "1"},
        **htmx,
    )
    assert response.status_code == 200
    assertContains(response, 'data-state="called"')
    v = visit(cases[0], Code.DOCUMENTS)
    start = reverse("handover:visit_action", args=[v.pk, "start"])
    assert client.post(start, {"version": v.version}, **htmx).status_code == 200
    # The other tablet's stale page: told, not a 500.
    response = client.post(start, {"version": v.version}, **htmx)
    assertContains(response, 'data-testid="queue-error"')
    v.refresh_from_db()
    finish = reverse("handover:visit_action", args=[v.pk, "finish"])
    response = client.post(finish, {"version": v.version})
    assert response.status_code == 302
    v.refresh_from_db()
    assert v.state == VState.DONE
    skip = reverse(
        "handover:visit_action",
        args=[visit(cases[1], Code.DOCUMENTS).pk, "skip"],
    )
    response = client.post(skip, {"version": "1", "reason": ""}, **htmx)
    assertContains(response, "跳过原因")
    # Bad input: 404 or 400, never a 500.
    assert client.post(start, {"version": "x"}).status_code == 400
    assert (
        client.post(reverse("handover:visit_action", args=[v.pk, "explode"]))
    ).status_code == 404
    assert (
        client.post(reverse("handover:visit_action", args=[MISSING, "start"]))
    ).status_code == 404
    other, _ = booked_event(admin_user, units=0)
    wrong = reverse("handover:station_page", args=[other.pk, docs.pk])
    assert client.get(wrong).status_code == 404
    assert (
        client.get(reverse("handover:station_page", args=[event.pk, MISSING]))
    ).status_code == 404
    assert (
        client.get(reverse("handover:case_detail", args=[MISSING]))
    ).status_code == 404
    response = client.get(reverse("handover:case_detail", args=[cases[0].pk]))
    assertContains(response, 'data-testid="route-documents" data-state="done"')
    # Defects are recorded from the open case (service/defects).
    assertContains(response, reverse("defects:record", args=[cases[0].pk]))


@pytest.mark.parametrize(
    ("actor", "status"),
    [
        ("sales_rep", 200),
        ("service_agent", 200),
        ("manager", 200),
        ("admin_user", 200),
        ("readonly_user", 403),
    ],
)
def test_station_and_case_pages_roles(client, admin_user, request, actor, status):
    event, rows = booked_event(admin_user, units=1)
    with time_machine.travel(at(day_of(event), 9, 5)):
        case = onsite.check_in(rows[0][2], by=admin_user)
    docs = station(event, Code.DOCUMENTS)
    v = visit(case, Code.DOCUMENTS)
    client.force_login(request.getfixturevalue(actor))
    for url in (
        reverse("handover:station_page", args=[event.pk, docs.pk]),
        reverse("handover:case_detail", args=[case.pk]),
    ):
        assert client.get(url).status_code == status, url
    response = client.post(
        reverse("handover:visit_action", args=[v.pk, "call"]), {"version": v.version}
    )
    assert response.status_code == (302 if status == 200 else 403)
    response = client.post(
        reverse("handover:station_call_next", args=[event.pk, docs.pk])
    )
    assert response.status_code == (302 if status == 200 else 403)
    config = client.get(reverse("handover:station_config", args=[event.pk]))
    assert config.status_code == (200 if actor in ("manager", "admin_user") else 403)


def test_anonymous_goes_to_login(client, admin_user):
    event, _rows = booked_event(admin_user, units=0)
    onsite.ensure_default_stations(event)
    docs = station(event, Code.DOCUMENTS)
    for url in (
        reverse("handover:station_page", args=[event.pk, docs.pk]),
        reverse("handover:station_config", args=[event.pk]),
        reverse("handover:onsite_home"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response.url


def test_no_capture_form_without_its_template(admin_user):
    event, _rows = booked_event(admin_user, units=0)
    stations = onsite.ensure_default_stations(event)
    identity = next(s for s in stations if s.code == Code.IDENTITY)
    # handover/onsite/stations/_identity.html is nobody's: no include slot rendered.
    assert onsite_selectors.capture_template(identity) == ""
