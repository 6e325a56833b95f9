"""The owner's timeline shows their 入伙 case (issue 17, item 7): the check-in, each
station finished or skipped, the outcome; station calls and starts stay on the case
page; one bounded query however long the case's log."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains

from customers import timeline
from service.handover import case_timeline, onsite, outcomes
from service.handover.models import StationDefinition, StationVisit, UnitHandover
from tests.handover.checkin_builders import at, booked_event, day_of

pytestmark = pytest.mark.django_db

Code = StationDefinition.Code


def serve(case, code, by):
    visit = StationVisit.objects.get(case=case, station__code=code)
    visit = onsite.visit_start(visit, by=by, version=visit.version)
    return onsite.visit_finish(visit, by=by, version=visit.version)


def test_check_in_stations_and_outcome_on_the_owners_timeline(
    login, admin_user, service_agent
):
    event, rows = booked_event(admin_user, units=2)
    day = day_of(event)
    _eu, owner, appointment = rows[0]
    with time_machine.travel(at(day, 9, 5)):
        case = onsite.check_in(appointment, by=service_agent)
    with time_machine.travel(at(day, 9, 20)):
        serve(case, Code.IDENTITY, service_agent)
        serve(case, Code.INSPECTION, service_agent)
    with time_machine.travel(at(day, 9, 40)):
        case.refresh_from_db()
        outcomes.case_not_accepted(
            case,
            by=service_agent,
            version=case.version,
            reason="卫生间渗漏",
            reinspection_on=day + dt.timedelta(days=7),
        )
    entries, _cursor = timeline.entries(owner)
    ours = [e for e in entries if e.kind == "handover"]
    titles = [e.title for e in ours]
    # Newest first: the outcome, the two stations, the check-in; no calls or starts.
    assert len(ours) == 4, titles
    assert titles[0].startswith("入伙结果") and ours[0].badge == "验收未通过"
    assert ours[0].body == "卫生间渗漏"
    assert "联合验房" in titles[1] and "身份核验" in titles[2]
    assert titles[3].startswith("入伙签到") and event.name in titles[3]
    assert {e.url for e in ours} == {reverse("handover:case_detail", args=[case.pk])}
    # The other owner's case is not on this owner's timeline.
    _eu2, other, appointment2 = rows[1]
    with time_machine.travel(at(day, 9, 6)):
        onsite.check_in(appointment2, by=service_agent)
    entries, _cursor = timeline.entries(owner)
    assert len([e for e in entries if e.kind == "handover"]) == 4
    # On the customer page.
    page = login(admin_user).get(reverse("customers:customer_detail", args=[owner.pk]))
    assertContains(page, "入伙签到")
    assertContains(page, "验收未通过")


def test_one_query_and_the_cursor_pages_through(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1)
    day = day_of(event)
    _eu, owner, appointment = rows[0]
    with time_machine.travel(at(day, 9, 5)):
        case = onsite.check_in(appointment, by=service_agent)
    for minute, code in enumerate(
        (Code.IDENTITY, Code.DOCUMENTS, Code.SETTLEMENT, Code.FEES), start=10
    ):
        with time_machine.travel(at(day, 9, minute)):
            serve(case, code, service_agent)
    with CaptureQueriesContext(connection) as captured:
        newest = case_timeline.case_entries(owner, None, 3)
    assert len(captured.captured_queries) == 1
    assert len(newest) == 3
    older = case_timeline.case_entries(owner, newest[-1].at, 10)
    assert [e.id for e in older][:1] == [
        newest[-1].id
    ]  # ties included (the page skips)
    assert len(older) == 3  # fees … check-in, from the third newest on
    assert UnitHandover.objects.get(pk=case.pk).customer_id == owner.pk
