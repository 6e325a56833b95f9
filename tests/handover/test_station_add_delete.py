"""The station setup's add and delete (issue 17): a station of a kind the event lacks,
with its name and order unique in the event and its prerequisites earlier stations of
the same event; a delete behind a confirmation page, refused once an owner has a visit
of the station (or for the last station), the stations that needed it inheriting its
prerequisites; the board's counters equal to a recount throughout; who may do it."""

from __future__ import annotations

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from pytest_django.asserts import assertContains

from service.handover import counters, onsite
from service.handover.models import BoardCounter, StationDefinition, StationVisit
from tests.handover.checkin_builders import at, booked_event, day_of

pytestmark = pytest.mark.django_db

Code = StationDefinition.Code
VState = StationVisit.State
MISSING = 987654321


def station(event, code):
    return StationDefinition.objects.get(event=event, code=code)


def prereq_codes(event, code):
    return sorted(p.code for p in station(event, code).prerequisites.all())


def with_defaults(admin_user, *, units=0):
    event, rows = booked_event(admin_user, units=units)
    onsite.ensure_default_stations(event)
    return event, rows


def add_title(event, by, **overrides):
    fields = {
        "code": Code.TITLE,
        "name": "交房即办证",
        "position": 110,
        "required": False,
        "prerequisites": [station(event, Code.ACCEPTANCE).pk],
        "counters": 2,
        "target_minutes": 20,
    }
    fields.update(overrides)
    return onsite.station_add(by=by, event=event, **fields)


# --- add -----------------------------------------------------------------------------------


def test_a_manager_adds_a_station_of_a_kind_the_event_lacks(admin_user, manager):
    event, _rows = with_defaults(admin_user)
    title = add_title(event, manager)
    title.refresh_from_db()
    assert (title.name, title.position, title.counters, title.target_minutes) == (
        "交房即办证",
        110,
        2,
        20,
    )
    assert not title.required
    assert prereq_codes(event, Code.TITLE) == ["acceptance"]
    assert event.stations.count() == 11
    # Audited as every change of the sequence (pghistory, with the acting user).
    events = StationDefinition.pgh_event_model.objects.filter(pgh_obj_id=title.pk)
    assert events.filter(pgh_label="insert").count() == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"code": Code.IDENTITY}, "每类站点只能有一个"),
        ({"code": "bogus"}, "请选择站点类型"),
        ({"position": 10}, "站点顺序不能重复"),
        ({"name": "身份核验"}, "站点名称不能重复"),
        ({"name": " 身份核验 "}, "站点名称不能重复"),
        ({"name": "  "}, "站点名称不能为空"),
        ({"counters": 0}, "窗口数"),
        ({"target_minutes": 241}, "目标办理时长"),
        ({"position": 5}, "必须排在它之前"),  # the prerequisite (acceptance) is later
        ({"prerequisites": [MISSING]}, "前置站点无效"),
    ],
)
def test_a_bad_station_is_refused_and_nothing_is_written(
    admin_user, manager, overrides, message
):
    event, _rows = with_defaults(admin_user)
    before = event.stations.count()
    through = StationDefinition.prerequisites.through.objects.count()
    with pytest.raises(ValidationError, match=message):
        add_title(event, manager, **overrides)
    assert event.stations.count() == before
    assert StationDefinition.prerequisites.through.objects.count() == through


def test_another_event_s_station_is_no_prerequisite(admin_user, manager):
    event, _rows = with_defaults(admin_user)
    other, _rows = with_defaults(admin_user)
    foreign = station(other, Code.ACCEPTANCE)
    with pytest.raises(ValidationError, match="前置站点无效"):
        add_title(event, manager, prerequisites=[foreign.pk])
    assert not event.stations.filter(code=Code.TITLE).exists()
    assert not foreign.unlocks.filter(event=event).exists()


def test_only_managers_and_admins_add_or_delete(admin_user, service_agent, sales_rep):
    event, _rows = with_defaults(admin_user)
    for user in (service_agent, sales_rep):
        with pytest.raises(PermissionDenied):
            add_title(event, user)
        with pytest.raises(PermissionDenied):
            onsite.station_delete(by=user, station=station(event, Code.SURVEY))
    assert event.stations.count() == 10


def test_the_event_s_station_limit(admin_user, manager, monkeypatch):
    event, _rows = with_defaults(admin_user)
    monkeypatch.setattr(onsite, "MAX_STATIONS", 10)
    with pytest.raises(ValidationError, match="最多 10 个站点"):
        add_title(event, manager)


def test_owners_checked_in_after_the_add_queue_at_the_new_station(
    admin_user, manager, service_agent
):
    """Cases checked in before keep their route (no visit of the new station, which
    blocks nothing); later ones get a gated visit; the counters equal a recount."""
    event, rows = with_defaults(admin_user, units=2)
    day = day_of(event)
    with time_machine.travel(at(day, 9, 5)):
        first = onsite.check_in(rows[0][2], by=service_agent)
        title = add_title(event, manager)
        assert counters.recount_differs(event.pk) == {}
        second = onsite.check_in(rows[1][2], by=service_agent)
    assert not StationVisit.objects.filter(case=first, station=title).exists()
    visit = StationVisit.objects.get(case=second, station=title)
    assert visit.state == VState.PENDING  # gated behind the acceptance station
    assert counters.read(event.pk)[f"station:{title.pk}:pending"] == 1
    assert counters.recount_differs(event.pk) == {}


# --- delete --------------------------------------------------------------------------------


def test_deleting_a_station_hands_its_prerequisites_to_the_stations_that_needed_it(
    admin_user, manager
):
    event, _rows = with_defaults(admin_user)
    inspection = station(event, Code.INSPECTION)
    plan = onsite.station_deletion(inspection)
    assert not plan.refused
    assert {d.code: [p.code for p in ps] for d, ps in plan.rewired} == {
        "meters": ["identity"],
        "keys": ["identity", "settlement", "fees", "signing"],
    }
    onsite.station_delete(by=manager, station=inspection)
    assert not StationDefinition.objects.filter(pk=inspection.pk).exists()
    assert prereq_codes(event, Code.METERS) == ["identity"]
    assert prereq_codes(event, Code.KEYS) == [
        "fees",
        "identity",
        "settlement",
        "signing",
    ]
    # Nothing points at the deleted station.
    through = StationDefinition.prerequisites.through.objects
    assert not through.filter(to_stationdefinition_id=inspection.pk).exists()
    assert not through.filter(from_stationdefinition_id=inspection.pk).exists()
    assert StationDefinition.pgh_event_model.objects.filter(
        pgh_obj_id=inspection.pk, pgh_label="delete"
    ).exists()
    assert counters.recount_differs(event.pk) == {}


def test_a_station_with_visits_cannot_be_deleted(admin_user, manager, service_agent):
    event, rows = with_defaults(admin_user, units=1)
    with time_machine.travel(at(day_of(event), 9, 5)):
        onsite.check_in(rows[0][2], by=service_agent)
    survey = station(event, Code.SURVEY)
    plan = onsite.station_deletion(survey)
    assert "已有 1 条办理记录" in plan.refused
    with pytest.raises(ValidationError, match="不能删除"):
        onsite.station_delete(by=manager, station=survey)
    assert StationDefinition.objects.filter(pk=survey.pk).exists()
    assert prereq_codes(event, Code.SURVEY) == ["acceptance"]
    assert counters.recount_differs(event.pk) == {}


def test_the_last_station_stays(admin_user, manager):
    event, _rows = booked_event(admin_user, units=0)
    only = StationDefinition.objects.create(
        event=event, code=Code.IDENTITY, name="身份核验", position=1
    )
    with pytest.raises(ValidationError, match="至少要保留一个站点"):
        onsite.station_delete(by=manager, station=only)
    assert StationDefinition.objects.filter(pk=only.pk).exists()


def test_an_added_station_nobody_visited_deletes_cleanly(
    admin_user, manager, service_agent
):
    event, rows = with_defaults(admin_user, units=1)
    title = add_title(event, manager)
    # A zero counter left by earlier bumps goes with the station.
    BoardCounter.objects.create(event=event, key=f"station:{title.pk}:waiting", value=0)
    with time_machine.travel(at(day_of(event), 9, 5)):
        onsite.check_in(rows[0][2], by=service_agent)
    StationVisit.objects.filter(station=title).delete()  # as if added after check-in
    counters.rebuild(event.pk)
    onsite.station_delete(by=manager, station=title)
    assert not event.board_counters.filter(key__startswith=f"station:{title.pk}:")
    assert counters.recount_differs(event.pk) == {}


# --- the pages -----------------------------------------------------------------------------


def add_data(event, **overrides):
    data = {
        "code": Code.TITLE,
        "name": "交房即办证",
        "position": "110",
        "prerequisites": [station(event, Code.ACCEPTANCE).pk],
        "counters": "1",
        "target_minutes": "15",
    }
    data.update(overrides)
    return data


def test_the_setup_page_adds_a_station(client, admin_user, manager):
    event, _rows = with_defaults(admin_user)
    client.force_login(manager)
    page = client.get(reverse("handover:station_config", args=[event.pk]))
    assertContains(page, 'data-testid="station-add"')
    assertContains(page, 'data-testid="station-delete"', count=10)
    url = reverse("handover:station_add", args=[event.pk])
    response = client.post(url, add_data(event))
    assert response.status_code == 302
    assert station(event, Code.TITLE).name == "交房即办证"
    # Every kind is used now: the form says so.
    page = client.get(reverse("handover:station_config", args=[event.pk]))
    assertContains(page, "所有类型的站点都已添加")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"code": Code.IDENTITY}, "选择一个有效的选项"),  # a kind the event has
        ({"position": "10"}, "站点顺序不能重复"),
        ({"name": "缴费"}, "站点名称不能重复"),
        ({"position": "abc"}, "顺序"),
        ({"position": "99999999999999999999"}, "顺序"),
        ({"counters": "51"}, "窗口数"),
        ({"prerequisites": ["x"]}, "选择一个有效的选项"),
        ({"position": "5"}, "必须排在它之前"),
        ({"name": ""}, "名称"),
    ],
)
def test_bad_input_on_the_add_form_re_renders_with_the_message(
    client, admin_user, manager, overrides, message
):
    event, _rows = with_defaults(admin_user)
    client.force_login(manager)
    response = client.post(
        reverse("handover:station_add", args=[event.pk]), add_data(event, **overrides)
    )
    assertContains(response, message, status_code=400)
    assert event.stations.count() == 10


def test_another_event_s_station_is_an_invalid_choice_on_the_form(
    client, admin_user, manager
):
    event, _rows = with_defaults(admin_user)
    other, _rows = with_defaults(admin_user)
    client.force_login(manager)
    response = client.post(
        reverse("handover:station_add", args=[event.pk]),
        add_data(event, prerequisites=[station(other, Code.KEYS).pk]),
    )
    assertContains(response, "选择一个有效的选项", status_code=400)
    assert event.stations.count() == 10


def test_the_delete_page_confirms_then_deletes(client, admin_user, manager):
    event, _rows = with_defaults(admin_user)
    inspection = station(event, Code.INSPECTION)
    url = reverse("handover:station_delete", args=[event.pk, inspection.pk])
    client.force_login(manager)
    page = client.get(url)
    assertContains(page, 'data-testid="delete-confirm"')
    assertContains(page, 'data-testid="delete-rewired"')
    assert StationDefinition.objects.filter(pk=inspection.pk).exists()  # GET: nothing
    response = client.post(url)
    assert response.status_code == 302
    assert response.url == reverse("handover:station_config", args=[event.pk])
    assert not StationDefinition.objects.filter(pk=inspection.pk).exists()
    assert client.post(url).status_code == 404  # gone


def test_the_delete_page_refuses_a_visited_station(
    client, admin_user, manager, service_agent
):
    event, rows = with_defaults(admin_user, units=1)
    with time_machine.travel(at(day_of(event), 9, 5)):
        onsite.check_in(rows[0][2], by=service_agent)
    identity = station(event, Code.IDENTITY)
    url = reverse("handover:station_delete", args=[event.pk, identity.pk])
    client.force_login(manager)
    page = client.get(url)
    assertContains(page, 'data-testid="delete-refused"')
    assert 'data-testid="delete-confirm"' not in page.content.decode()
    response = client.post(url)
    assertContains(response, "不能删除", status_code=409)
    assert StationDefinition.objects.filter(pk=identity.pk).exists()
    assert counters.recount_differs(event.pk) == {}


def test_who_may_use_the_add_and_delete_pages(
    client, admin_user, manager, service_agent, sales_rep
):
    event, _rows = with_defaults(admin_user)
    other, _rows = with_defaults(admin_user)
    survey = station(event, Code.SURVEY)
    add = reverse("handover:station_add", args=[event.pk])
    delete = reverse("handover:station_delete", args=[event.pk, survey.pk])
    anonymous = client.post(delete)
    assert anonymous.status_code == 302 and "login" in anonymous.url
    for user in (service_agent, sales_rep):
        client.force_login(user)
        assert client.post(add, add_data(event)).status_code == 403
        assert client.get(delete).status_code == 403
        assert client.post(delete).status_code == 403
    client.force_login(manager)
    assert client.get(add).status_code == 405
    # A station of another event under this event's address: not found.
    foreign = reverse(
        "handover:station_delete", args=[event.pk, station(other, Code.SURVEY).pk]
    )
    assert client.post(foreign).status_code == 404
    assert (
        client.post(
            reverse("handover:station_delete", args=[MISSING, survey.pk])
        ).status_code
        == 404
    )
    assert other.stations.count() == event.stations.count() == 10


@pytest.mark.django_db(transaction=True)
def test_a_delete_during_a_check_in_waits_for_it_and_then_sees_its_visit(
    admin_user, manager, service_agent
):
    """The check-in holds its stations' keys until it commits: the delete waits, then
    refuses (the owner has a visit of the station) instead of deleting the station
    under a check-in that then fails at commit."""
    from tests.handover.test_customer_merge_race import (
        Holder,
        Worker,
        _wait_until_blocked,
    )

    event, rows = with_defaults(admin_user, units=1)
    survey = station(event, Code.SURVEY)
    with time_machine.travel(at(day_of(event), 9, 5)):
        checking_in = Holder(lambda: onsite.check_in(rows[0][2], by=service_agent))
        checking_in.start()
        assert checking_in.started_work.wait(timeout=30)
        assert not isinstance(checking_in.result, Exception), checking_in.result
        deleting = Worker(lambda: onsite.station_delete(by=manager, station=survey))
        deleting.start()
        assert deleting.has_pid.wait(timeout=30)
        _wait_until_blocked(deleting.pid)
        checking_in.release.set()
        checking_in.join(timeout=30)
        deleting.join(timeout=30)

    assert isinstance(deleting.result, ValidationError), deleting.result
    assert "不能删除" in str(deleting.result)
    assert StationDefinition.objects.filter(pk=survey.pk).exists()
    assert StationVisit.objects.filter(station=survey).count() == 1
    assert counters.recount_differs(event.pk) == {}
