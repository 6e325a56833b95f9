"""交付大屏 (issue 17 part 5): the board's numbers for known rows, the recount after a
random sequence of changes, the access rule, the polled fragments and a query count
that does not grow with the event."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from service.defects import services as defect_services
from service.defects.models import Defect, DefectCategory, Severity
from service.handover import board, captures, counters, outcomes
from service.handover.models import (
    BoardCounter,
    FeePayment,
    RefusalRecord,
    StationVisit,
    UnitHandover,
)
from tests.defects.builders import contractor
from tests.defects.builders import photo as defect_photo
from tests.factories import CustomerFactory
from tests.handover import board_ops as ops
from tests.handover.builders import make_event
from tests.handover.outcome_builders import png_bytes
from tests.handover.scope_builders import (
    add_owner,
    buildings_of,
    make_project,
    make_units,
    put_in_scope,
)

pytestmark = pytest.mark.django_db
State = UnitHandover.State


def _event_with_units(admin_user, *, buildings=1, floors=3, per_floor=4):
    event = make_event(admin_user, days_ahead=0)
    project = make_project(buildings=buildings)
    units = []
    for building in buildings_of(project):
        units += make_units(building, floors=floors, per_floor=per_floor)
    eus = [put_in_scope(event, unit) for unit in units]
    owners = [add_owner(unit) for unit in units]
    return event, eus, owners


@pytest.fixture
def world(admin_user):
    cache.clear()
    event, eus, owners = _event_with_units(admin_user)
    stations = ops.make_stations(event, 3)
    return event, eus, owners, stations, ops.make_categories()


def _at(hour: int, minute: int = 0) -> dt.datetime:
    today = timezone.localdate()
    return timezone.make_aware(dt.datetime.combine(today, dt.time(hour, minute)))


def test_board_numbers_for_known_rows(world, admin_user):
    event, eus, owners, stations, leaves = world
    vip = CustomerFactory(name="重点业主甲", tags=["VIP"])
    cases = [
        ops.check_in(eus[n], vip if n == 3 else owners[n], stations, _at(9, 10 * n))
        for n in range(4)
    ]
    first = [StationVisit.objects.get(case=c, station=stations[0]) for c in cases]
    # Case 0: waited 5 min, served 10 min, then accepted with a defect; fee and rating.
    ops.start(first[0], _at(9, 5))
    ops.finish(first[0], _at(9, 15))
    ops.defect(cases[0], leaves["土建"], Severity.P2, admin_user)
    ops.outcome(cases[0], State.ACCEPTED_WITH_DEFECTS, _at(10, 30))
    ops.pay(cases[0], "1234.50", admin_user)
    ops.rate(cases[0], 4)
    # Case 1: waited 15 min, refused, with a P0 defect.
    ops.start(first[1], _at(9, 25))
    ops.defect(cases[1], leaves["水电"], Severity.P0, admin_user, "卫生间漏水")
    ops.outcome(cases[1], State.REFUSED, _at(10, 40), by=admin_user)
    ops.rate(cases[1], 1)
    # Case 2 is in service at station 1 (waited 0); case 3 (VIP) still waits.
    ops.start(first[2], _at(9, 20))

    data = board.board(event)

    assert data.headline == {
        "scope": 12,
        "booked": 0,
        "arrived": 4,
        "checked_in": 1,
        "in_progress": 1,
        "accepted": 0,
        "accepted_defects": 1,
        "not_accepted": 0,
        "refused": 1,
        "absent": 0,
    }
    assert data.rate == round(100 / 12, 1)
    row = data.stations[0]
    assert (row.queue, row.in_service, row.done) == (1, 2, 1)
    assert row.mean_wait_min == round((5 + 15 + 0) * 60 / 3 / 60, 1)
    assert row.mean_service_min == 10.0
    assert row.longest_wait_min is not None
    assert data.stations[1].queue == 1  # case 0 moved on to station 2
    assert [(h["label"][-5:], h["arrived"], h["finished"]) for h in data.hours] == [
        ("09:00", 4, 0),
        ("10:00", 0, 2),
    ]
    assert data.severity == {"P0": 1, "P1": 0, "P2": 1}
    assert data.defects_open == 2
    assert sorted(data.categories) == sorted(
        [(leaves["土建:top"].name, 1), (leaves["水电:top"].name, 1)]
    )
    assert data.fees_yuan == 1234.5
    assert (data.rating_mean, data.rating_count) == (2.5, 2)
    kinds = [item.kind for item in data.feed]
    assert sorted(kinds) == ["p0", "refusal", "risk_owner"]
    assert any(item.text == "重点业主甲" for item in data.feed)
    assert counters.recount_differs(event.pk) == {}


def test_rebuild_equals_the_bumped_counters_after_random_changes(
    world, admin_user, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    event, eus, owners, stations, leaves = world
    rng = random.Random(17)
    rateable = (*UnitHandover.OPEN_STATES, State.ACCEPTED, State.ACCEPTED_WITH_DEFECTS)
    cases: list[UnitHandover] = []
    defects = []
    clock = _at(8, 0)
    fixer = contractor()
    for _step in range(200):
        clock += dt.timedelta(minutes=rng.randint(1, 9))
        choice = rng.random()
        for case in cases:
            case.refresh_from_db(fields=["state", "version", "rating"])
        open_cases = [c for c in cases if c.state in UnitHandover.OPEN_STATES]
        if choice < 0.25 and len(cases) < len(eus):
            n = len(cases)
            cases.append(ops.check_in(eus[n], owners[n], stations, clock))
        elif choice < 0.6 and open_cases:
            case = rng.choice(open_cases)
            visit = (
                StationVisit.objects.filter(
                    case=case, state__in=["waiting", "in_service"]
                )
                .select_related("case")
                .first()
            )
            if visit and visit.state == "waiting":
                ops.start(visit, clock)
            elif visit:
                ops.finish(visit, clock)
        elif choice < 0.72 and open_cases:
            # The outcome services where they exist on main (h2's), else as they bump.
            case = rng.choice(open_cases)
            state = rng.choice(
                [State.ACCEPTED, State.ACCEPTED_WITH_DEFECTS, State.NOT_ACCEPTED]
                + [State.REFUSED]
            )
            if state == State.NOT_ACCEPTED:
                outcomes.case_not_accepted(
                    case,
                    by=admin_user,
                    version=None,
                    reason="卫生间渗水",
                    reinspection_on=timezone.localdate() + dt.timedelta(days=3),
                )
            elif state == State.REFUSED:
                outcomes.case_refuse(
                    case,
                    by=admin_user,
                    version=None,
                    reason=RefusalRecord.Reason.QUALITY,
                    details="外墙开裂",
                    notice_deadline=timezone.localdate(),
                    evidence=[SimpleUploadedFile("e.png", png_bytes(), "image/png")],
                )
            else:
                ops.outcome(case, state, clock, by=admin_user)
        elif choice < 0.85 and cases:
            # The defect services (service/defects): recording bumps severity, trade
            # and open; each transition out of the open states takes open back.
            case = rng.choice(cases)
            defects.append(
                defect_services.defect_record(
                    by=admin_user,
                    unit=case.event_unit.unit,
                    case=case,
                    room="kitchen",
                    category=leaves[rng.choice(["土建", "水电"])],
                    description="墙面空鼓",
                    severity=rng.choice(Severity.values),
                )
            )
        elif choice < 0.9 and defects:
            item = rng.choice(defects)
            item.refresh_from_db()
            actions = defect_services.allowed_actions(item, admin_user)
            if actions:
                defect_services.defect_transition(
                    by=admin_user,
                    defect=item,
                    action=rng.choice(actions),
                    version=item.version,
                    contractor=fixer,
                    reason="业主同意",
                    decision=rng.choice(["assigned", "void"]),
                    photo=defect_photo(),
                )
        elif choice < 0.95 and open_cases:
            captures.fee_add(
                rng.choice(open_cases),
                by=admin_user,
                item=FeePayment.Item.PROPERTY_FEE,
                amount=Decimal(f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}"),
                method=FeePayment.Method.WECHAT,
            )
        elif cases:
            case = rng.choice(cases)
            case.refresh_from_db()
            if case.state in rateable:
                captures.rating_save(case, by=admin_user, rating=rng.randint(1, 5))
    assert len(cases) > 5 and defects
    assert len({d.state for d in Defect.objects.filter(event=event)}) > 2
    states = {c.state for c in cases}
    assert {State.REFUSED, State.NOT_ACCEPTED, State.ACCEPTED} <= states, states
    assert FeePayment.objects.filter(case__event=event).exists()
    assert UnitHandover.objects.filter(event=event, rating__isnull=False).exists()
    bumped = counters.read(event.pk)
    assert counters.recount_differs(event.pk) == {}
    assert {k: v for k, v in counters.rebuild(event.pk).items()} == {
        k: v for k, v in bumped.items() if v
    }
    assert {k: v for k, v in counters.read(event.pk).items() if v} == {
        k: v for k, v in bumped.items() if v
    }


def test_rebuild_repairs_a_drifted_counter_and_the_command_reports_it(world):
    event, eus, owners, stations, _leaves = world
    ops.check_in(eus[0], owners[0], stations, _at(9))
    BoardCounter.objects.filter(event=event, key="case:checked_in").update(value=7)
    counters.bump(event.pk, {"case:refused": 2})
    assert counters.recount_differs(event.pk) == {
        "case:checked_in": (7, 1),
        "case:refused": (2, 0),
    }
    call_command("handover_board_rebuild", "--event", str(event.pk), stdout=None)
    assert counters.recount_differs(event.pk) == {}
    assert counters.read(event.pk)["case:checked_in"] == 1
    assert "case:refused" not in counters.read(event.pk)


def test_only_managers_and_admins_open_the_board(
    world, login, manager, admin_user, sales_rep, service_agent, client
):
    event = world[0]
    urls = [
        reverse("handover:event_board", args=[event.pk]),
        reverse("handover:event_board_live", args=[event.pk]),
        reverse("handover:event_board_grid", args=[event.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    for user, status in (
        (sales_rep, 403),
        (service_agent, 403),
        (manager, 200),
        (admin_user, 200),
    ):
        login(user)
        for url in urls:
            assert client.get(url).status_code == status, (user, url)
    login(manager)
    assert client.post(urls[0]).status_code == 405
    assert (
        client.get(reverse("handover:event_board", args=[987654321])).status_code == 404
    )
    detail = client.get(event.get_absolute_url()).content.decode()
    assert urls[0] in detail
    login(sales_rep)
    assert urls[0] not in client.get(event.get_absolute_url()).content.decode()


def test_the_page_polls_fragments_and_the_fragments_are_only_fragments(
    world, login, manager
):
    event, eus, owners, stations, _leaves = world
    ops.outcome(
        ops.check_in(eus[0], owners[0], stations, _at(9)), State.ACCEPTED, _at(9, 40)
    )
    client = login(manager)
    page = client.get(reverse("handover:event_board", args=[event.pk])).content.decode()
    live_url = reverse("handover:event_board_live", args=[event.pk])
    grid_url = reverse("handover:event_board_grid", args=[event.pk])
    assert f'hx-get="{live_url}" hx-trigger="every 5s"' in page
    assert f'hx-get="{grid_url}" hx-trigger="load, every 10s"' in page
    assert "vendor/echarts/echarts.min.js" in page
    assert 'id="kehu-nav"' in page

    live = client.get(live_url).content.decode()
    assert "<html" not in live and "kehu-nav" not in live
    assert 'data-figure="accepted">1<' in live
    assert 'data-figure="scope">12<' in live

    grid = client.get(grid_url).content.decode()
    assert "<html" not in grid
    assert grid.count('class="board-cell') == 12
    assert grid.count("s-accepted") == 1

    screen = client.get(
        reverse("handover:event_board", args=[event.pk]), {"mode": "screen"}
    ).content.decode()
    assert 'data-bs-theme="dark"' in screen and 'id="kehu-nav"' not in screen
    assert f'hx-get="{live_url}"' in screen
    # An unknown mode is the normal page, not an error.
    odd = client.get(
        reverse("handover:event_board", args=[event.pk]), {"mode": "x" * 500}
    )
    assert odd.status_code == 200 and 'id="kehu-nav"' in odd.content.decode()


def _queries(client, url) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_query_count_does_not_grow_with_the_event(
    admin_user, login, manager, django_assert_max_num_queries
):
    client = login(manager)
    counts = []
    for size in (1, 4):
        event, eus, owners = _event_with_units(admin_user, floors=size * 2, per_floor=4)
        stations = ops.make_stations(event, 2 + size)
        leaves = ops.make_categories()
        for n, eu in enumerate(eus):
            case = ops.check_in(eu, owners[n], stations, _at(9, n % 60))
            if n % 3 == 0:
                ops.outcome(case, State.REFUSED, _at(11), by=admin_user)
            ops.defect(case, leaves["水电"], Severity.P0, admin_user)
        counts.append(
            tuple(
                _queries(client, reverse(name, args=[event.pk]))
                for name in (
                    "handover:event_board",
                    "handover:event_board_live",
                    "handover:event_board_grid",
                )
            )
        )
    assert counts[0] == counts[1], counts
    with django_assert_max_num_queries(counts[1][1]):
        client.get(reverse("handover:event_board_live", args=[event.pk]))


def test_the_figures_are_shared_for_two_seconds(world, login, manager):
    event, eus, owners, stations, _leaves = world
    client = login(manager)
    url = reverse("handover:event_board_live", args=[event.pk])
    cache.clear()
    assert 'data-figure="arrived">0<' in client.get(url).content.decode()
    ops.check_in(eus[0], owners[0], stations, _at(9))
    with CaptureQueriesContext(connection) as captured:
        assert 'data-figure="arrived">0<' in client.get(url).content.decode()
    assert not any("handover_boardcounter" in q["sql"] for q in captured)
    cache.clear()
    assert 'data-figure="arrived">1<' in client.get(url).content.decode()


def test_the_grid_is_cached_briefly(world, login, manager):
    event, eus, owners, stations, _leaves = world
    client = login(manager)
    url = reverse("handover:event_board_grid", args=[event.pk])
    cache.clear()
    first = client.get(url).content.decode()
    ops.check_in(eus[0], owners[0], stations, _at(9))
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).content.decode() == first
    assert not any("handover_eventunit" in q["sql"] for q in captured)
    cache.clear()
    assert "s-checked_in" in client.get(url).content.decode()


def test_the_navbar_board_opens_the_event_under_way(admin_user, login, manager):
    client = login(manager)
    url = reverse("handover:board_current")
    assert client.get(url)["Location"] == reverse("handover:event_list")
    later = make_event(admin_user, name="三期集中交付", days_ahead=5)
    assert client.get(url)["Location"] == reverse(
        "handover:event_board", args=[later.pk]
    )
    today = make_event(admin_user, name="二期集中交付", days_ahead=0)
    make_event(admin_user, name="四期（草稿）", days_ahead=0, publish=False)
    assert client.get(url)["Location"] == reverse(
        "handover:event_board", args=[today.pk]
    )
    home = client.get(reverse("handover:event_list")).content.decode()
    assert f'href="{url}"' in home


def test_the_navbar_board_is_not_offered_to_the_desk(login, sales_rep, service_agent):
    url = reverse("handover:board_current")
    for user in (sales_rep, service_agent):
        client = login(user)
        assert client.get(url).status_code == 403
        assert f'href="{url}"' not in client.get("/").content.decode()


def test_rebuild_equals_the_counters_after_random_operations_through_the_services(
    admin_user, manager, login
):
    """Check-in (h1), station start/finish/skip, outcomes and captures (h2), defects
    and their void (h3): every change through its service, the counters bumped by
    them; the recount (and so the rebuild) equals them at every tenth step."""
    import time_machine

    from service.handover import onsite
    from tests.handover.checkin_builders import at, booked_event, day_of

    event, rows = booked_event(admin_user, units=10, capacity=10)
    trade = DefectCategory.objects.create(level=1, name="门窗（大屏）")
    part = DefectCategory.objects.create(level=2, parent=trade, name="入户门")
    leaf = DefectCategory.objects.create(level=3, parent=part, name="门锁不灵")
    rng = random.Random(5)
    cases, defects = [], []
    with time_machine.travel(at(day_of(event), 9, 5), tick=True):
        appointments = [a for _eu, _o, a in rows]
        for step in range(150):
            roll = rng.random()
            open_cases = list(
                UnitHandover.objects.filter(
                    event=event, state__in=UnitHandover.OPEN_STATES
                )
            )
            try:
                if roll < 0.2 and appointments:
                    cases.append(onsite.check_in(appointments.pop(), by=manager))
                elif roll < 0.6 and open_cases:
                    visit = (
                        StationVisit.objects.filter(
                            case=rng.choice(open_cases),
                            state__in=["waiting", "in_service"],
                        )
                        .order_by("state", "station__position")
                        .first()
                    )
                    if visit is None:
                        pass
                    elif visit.state == "in_service":
                        onsite.visit_finish(visit, by=manager, version=visit.version)
                    elif rng.random() < 0.15:
                        onsite.visit_skip(
                            visit,
                            by=manager,
                            version=visit.version,
                            reason="业主稍后再来",
                        )
                    else:
                        onsite.visit_start(visit, by=manager, version=visit.version)
                elif roll < 0.68 and open_cases:
                    outcomes.case_not_accepted(
                        rng.choice(open_cases),
                        by=manager,
                        version=None,
                        reason="卫生间渗水",
                        reinspection_on=timezone.localdate() + dt.timedelta(days=3),
                    )
                elif roll < 0.74 and open_cases:
                    outcomes.case_refuse(
                        rng.choice(open_cases),
                        by=manager,
                        version=None,
                        reason=RefusalRecord.Reason.QUALITY,
                        details="外墙开裂",
                        notice_deadline=timezone.localdate(),
                        evidence=[
                            SimpleUploadedFile("e.png", png_bytes(), "image/png")
                        ],
                    )
                elif roll < 0.86 and cases:
                    case = rng.choice(cases)
                    defects.append(
                        defect_services.defect_record(
                            by=manager,
                            unit=case.event_unit.unit,
                            case=case,
                            room="living",
                            category=leaf,
                            description="门锁不灵",
                            severity=rng.choice(Severity.values),
                        )
                    )
                elif roll < 0.9 and defects:
                    item = rng.choice(defects)
                    item.refresh_from_db()
                    if item.is_open:
                        defect_services.defect_transition(
                            by=manager,
                            defect=item,
                            action="void",
                            version=item.version,
                            reason="重复登记",
                        )
                elif open_cases:
                    captures.fee_add(
                        rng.choice(open_cases),
                        by=manager,
                        item=FeePayment.Item.PROPERTY_FEE,
                        amount=Decimal(
                            f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"
                        ),
                        method=FeePayment.Method.WECHAT,
                    )
            except (onsite.OnsiteError, outcomes.OutcomeRefused):
                pass  # a rule refused it (gating, a busy owner): nothing moved
            if step % 10 == 9:
                assert counters.recount_differs(event.pk) == {}, step
    assert len(cases) >= 5 and defects
    assert StationVisit.objects.filter(case__event=event, state="done").exists()
    bumped = {k: v for k, v in counters.read(event.pk).items() if v}
    assert counters.rebuild(event.pk) == bumped
    # The board shows them.
    client = login(manager)
    live = client.get(reverse("handover:event_board_live", args=[event.pk]))
    assert f'data-figure="arrived">{len(cases)}<' in live.content.decode()
