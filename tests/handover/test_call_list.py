"""待联系业主: who is on the call list, the call recorded on the owner's timeline, the
phones each role sees, access to every view, and a constant query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.core import audit
from crm.core.models import AccessLog
from customers.models import ContactLog, FollowUp
from service.handover import readiness
from service.handover.models import EventUnit, Notice
from tests.handover.builders import slots_of
from tests.handover.readiness_builders import (
    book,
    make_batch,
    make_units,
    notify,
    primary_owner,
    put_in_scope,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def scoped(new_event, admin_user, sales_rep):
    """Batch A: a1 delivered and booked, a2 notice failed, a3 in arrears (no notice).
    Batch B: b1 delivered 5 days ago, b2 no notice, b3 sent today (not delivered),
    b4 delivered yesterday. No batch: n1 no notice."""
    event = new_event(days=1, slots_per_day=2, capacity=5)
    units = make_units(8, owner_user=sales_rep)
    batch_a = make_batch(event, "第一批", opens_in_days=-10)
    batch_b = make_batch(event, "第二批", opens_in_days=-5)
    a1, a2 = put_in_scope(event, units[:2], batch=batch_a)
    (a3,) = put_in_scope(
        event, units[2:3], batch=batch_a, eligibility=EventUnit.Eligibility.ARREARS
    )
    b1, b2, b3, b4 = put_in_scope(event, units[3:7], batch=batch_b)
    (n1,) = put_in_scope(event, units[7:])
    now = timezone.now()
    notify(a1, by=admin_user, state=Notice.State.DELIVERED)
    notify(a2, by=admin_user, state=Notice.State.FAILED)
    notify(
        b1,
        by=admin_user,
        state=Notice.State.DELIVERED,
        sent_at=now - dt.timedelta(days=5),
    )
    notify(b3, by=admin_user, state=Notice.State.SENT)
    notify(
        b4,
        by=admin_user,
        state=Notice.State.DELIVERED,
        sent_at=now - dt.timedelta(days=1),
    )
    book(a1, slot=slots_of(event)[0], by=admin_user)
    return {
        "event": event,
        "batches": (batch_a, batch_b),
        "u": {"a1": a1, "a2": a2, "a3": a3, "b1": b1, "b2": b2, "b3": b3, "b4": b4}
        | {"n1": n1},
    }


def _names(scoped, rows) -> list[str]:
    by_id = {eu.pk: name for name, eu in scoped["u"].items()}
    return [by_id[eu.pk] for eu in rows]


def test_list_holds_unreached_and_slow_units_in_batch_then_room_order(scoped):
    rows = readiness.call_list(scoped["event"])

    # a1 booked, a3 not eligible, b4 reached only yesterday: not on the list.
    assert _names(scoped, rows) == ["a2", "b1", "b2", "b3", "n1"]


def test_reason_filter_splits_unreached_from_notified_but_not_booked(scoped):
    event = scoped["event"]

    unreached = readiness.call_list(event, reason=readiness.Reason.UNREACHED)
    slow = readiness.call_list(event, reason=readiness.Reason.NOT_BOOKED)
    slow_after_one_day = readiness.call_list(
        event, reason=readiness.Reason.NOT_BOOKED, wait_days=1
    )

    assert _names(scoped, unreached) == ["a2", "b2", "b3", "n1"]
    assert _names(scoped, slow) == ["b1"]
    assert _names(scoped, slow_after_one_day) == ["b1", "b4"]


def test_batch_filter(scoped):
    _batch_a, batch_b = scoped["batches"]

    assert _names(scoped, readiness.call_list(scoped["event"], batch=batch_b)) == [
        "b1",
        "b2",
        "b3",
    ]
    assert _names(scoped, readiness.call_list(scoped["event"], without_batch=True)) == [
        "n1"
    ]


def test_a_unit_leaves_the_list_when_booked(scoped, admin_user):
    event = scoped["event"]
    book(scoped["u"]["b2"], slot=slots_of(event)[1], by=admin_user)

    assert "b2" not in _names(scoped, readiness.call_list(event))


def test_page_lists_rows_with_masked_phones_for_the_call_centre(
    login, service_agent, scoped
):
    event = scoped["event"]
    owner = primary_owner(scoped["u"]["b2"])

    response = login(service_agent).get(reverse("handover:call_list", args=[event.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 5
    assert owner.name in page
    assert owner.phone not in page
    assert owner.phone[:3] + "****" + owner.phone[-4:] in page
    assert 'data-testid="dial"' in page


def test_primary_owner_comes_first(login, manager, scoped):
    response = login(manager).get(
        reverse("handover:call_list", args=[scoped["event"].pk])
    )

    row = next(
        eu
        for eu in response.context["page"].object_list
        if eu.pk == scoped["u"]["b3"].pk  # the sixth unit: it has a co-owner
    )
    assert [o.role for o in row.owners] == ["primary", "co_owner"]


def test_manager_sees_full_numbers_as_links(login, manager, scoped):
    owner = primary_owner(scoped["u"]["b2"])

    response = login(manager).get(
        reverse("handover:call_list", args=[scoped["event"].pk])
    )

    assert f'href="tel:{owner.phone}"' in response.content.decode()


def test_owners_outside_the_callers_scope_are_not_shown(login, outsider, scoped):
    owner = primary_owner(scoped["u"]["b2"])

    response = login(outsider).get(
        reverse("handover:call_list", args=[scoped["event"].pk])
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert owner.name not in page
    assert "（无可见业主）" in page


def test_dial_shows_one_number_and_audits_it(login, service_agent, scoped):
    event_unit = scoped["u"]["b2"]
    owner = primary_owner(event_unit)
    url = reverse(
        "handover:call_dial", args=[scoped["event"].pk, event_unit.pk, owner.pk]
    )

    response = login(service_agent).post(url)

    assert response.status_code == 200
    assert f'href="tel:{owner.phone}"' in response.content.decode()
    assert AccessLog.objects.filter(
        user=service_agent,
        action=audit.CUSTOMER_VIEWED,
        object_type="customer",
        object_id=owner.pk,
    ).exists()


def test_dial_for_someone_not_owning_the_unit_is_404(login, service_agent, scoped):
    other_owner = primary_owner(scoped["u"]["b1"])
    url = reverse(
        "handover:call_dial",
        args=[scoped["event"].pk, scoped["u"]["b2"].pk, other_owner.pk],
    )

    assert login(service_agent).post(url).status_code == 404
    assert login(service_agent).get(url).status_code == 405


def test_recorded_call_lands_on_the_owners_timeline_and_in_the_list(
    login, service_agent, scoped
):
    event = scoped["event"]
    event_unit = scoped["u"]["b2"]
    owner = primary_owner(event_unit)
    client = login(service_agent)
    url = reverse("handover:call_record", args=[event.pk, event_unit.pk])

    response = client.post(
        f"{url}?batch={scoped['batches'][1].pk}",
        {"customer": owner.pk, "outcome": "no_answer", "note": "占线"},
    )

    assert response.status_code == 302
    assert response["Location"].endswith(
        f"{reverse('handover:call_list', args=[event.pk])}?batch={scoped['batches'][1].pk}"
    )
    log = ContactLog.objects.get(customer=owner)
    assert (log.channel, log.outcome, log.author) == ("phone", "未接通", service_agent)
    assert event_unit.unit.label in log.summary and "占线" in log.summary
    timeline = client.get(reverse("customers:customer_detail", args=[owner.pk]))
    assert f"入伙通知回访（未接通）：{event.name} · {event_unit.unit.label}" in (
        timeline.content.decode()
    )
    listed = client.get(reverse("handover:call_list", args=[event.pk]))
    row = next(
        eu for eu in listed.context["page"].object_list if eu.pk == event_unit.pk
    )
    assert row.last_call.outcome == "未接通"
    # Still on the list: only a booking takes a unit off it.
    assert "b2" in _names(scoped, readiness.call_list(event))


def test_call_back_time_becomes_a_follow_up_for_the_caller(
    login, service_agent, scoped
):
    event_unit = scoped["u"]["b2"]
    owner = primary_owner(event_unit)
    url = reverse("handover:call_record", args=[scoped["event"].pk, event_unit.pk])
    later = timezone.localtime() + dt.timedelta(days=1)

    response = login(service_agent).post(
        url,
        {
            "customer": owner.pk,
            "outcome": "later",
            "call_back_at": later.strftime("%Y-%m-%dT%H:%M"),
        },
    )

    assert response.status_code == 302
    assert ContactLog.objects.get(customer=owner).outcome == "已接通-稍后预约"
    assert FollowUp.objects.filter(customer=owner, assignee=service_agent).exists()


def test_call_logged_from_an_english_page_is_stored_in_chinese(
    login, service_agent, scoped
):
    event_unit = scoped["u"]["b2"]
    owner = primary_owner(event_unit)
    url = reverse("handover:call_record", args=[scoped["event"].pk, event_unit.pk])

    login(service_agent).post(
        url,
        {"customer": owner.pk, "outcome": "refused"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert ContactLog.objects.get(customer=owner).outcome == "拒绝"


@pytest.mark.parametrize(
    "data",
    [
        {"outcome": "no_answer"},  # no owner chosen
        {"customer": "1", "outcome": "maybe"},  # unknown outcome
        {"customer": "abc", "outcome": "no_answer"},
        {"outcome": "later", "call_back_at": "1999-01-01T10:00"},
    ],
)
def test_bad_call_form_rerenders_with_errors_and_saves_nothing(
    login, service_agent, scoped, data
):
    event_unit = scoped["u"]["b2"]
    url = reverse("handover:call_record", args=[scoped["event"].pk, event_unit.pk])
    if "customer" not in data and data.get("outcome") == "later":
        data = {**data, "customer": primary_owner(event_unit).pk}

    response = login(service_agent).post(url, data)

    assert response.status_code == 400
    assert ContactLog.objects.count() == 0


def test_a_customer_not_owning_the_unit_cannot_be_logged(login, service_agent, scoped):
    stranger = primary_owner(scoped["u"]["b1"])
    url = reverse(
        "handover:call_record", args=[scoped["event"].pk, scoped["u"]["b2"].pk]
    )

    response = login(service_agent).post(
        url, {"customer": stranger.pk, "outcome": "no_answer"}
    )

    assert response.status_code == 400
    assert ContactLog.objects.count() == 0


def test_bad_filters_are_refused_without_a_500(login, manager, scoped):
    url = reverse("handover:call_list", args=[scoped["event"].pk])
    client = login(manager)

    assert client.get(url, {"days": "999"}).status_code == 400
    assert client.get(url, {"days": "x"}).status_code == 400
    assert client.get(url, {"batch": "99999999"}).status_code == 404
    assert client.get(url, {"reason": "whatever", "page": "zz"}).status_code == 200


def test_unit_of_another_event_is_404(login, manager, scoped, new_event):
    other = new_event(name="别的活动")
    url = reverse("handover:call_record", args=[other.pk, scoped["u"]["b2"].pk])

    assert login(manager).get(url).status_code == 404


@pytest.mark.parametrize(
    ("persona", "list_status", "record_status"),
    [
        ("sales_rep", 200, 200),
        ("service_agent", 200, 200),
        ("manager", 200, 200),
        ("admin_user", 200, 200),
        ("readonly_user", 403, 403),
    ],
)
def test_access_for_each_role(
    request, login, scoped, persona, list_status, record_status
):
    client = login(request.getfixturevalue(persona))
    event = scoped["event"]
    unit_pk = scoped["u"]["b2"].pk

    assert (
        client.get(reverse("handover:call_list", args=[event.pk])).status_code
        == list_status
    )
    record = reverse("handover:call_record", args=[event.pk, unit_pk])
    assert client.get(record).status_code == record_status


def test_unit_without_visible_owners_has_no_call_form(login, outsider, scoped):
    url = reverse(
        "handover:call_record", args=[scoped["event"].pk, scoped["u"]["b2"].pk]
    )

    assert login(outsider).get(url).status_code == 404


def test_anonymous_is_sent_to_login(client, scoped):
    url = reverse("handover:call_list", args=[scoped["event"].pk])

    assert client.get(url).status_code == 302


def test_htmx_filter_renders_only_the_rows(login, manager, scoped):
    url = reverse("handover:call_list", args=[scoped["event"].pk])

    response = login(manager).get(url, {"reason": "not_booked"}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert "<html" not in page
    assert page.count('data-testid="call-row"') == 1


def test_query_count_is_the_same_for_10_and_50_units(
    login, service_agent, admin_user, sales_rep, new_event
):
    client = login(service_agent)
    counts = []
    for size in (10, 50):
        event = new_event(name=f"活动{size}")
        batch = make_batch(event, "第一批")
        scope = put_in_scope(event, make_units(size, owner_user=sales_rep), batch=batch)
        for n, event_unit in enumerate(scope):
            if n % 2:
                notify(event_unit, by=admin_user, state=Notice.State.FAILED)
            owner = primary_owner(event_unit)
            ContactLog.objects.create(
                customer=owner,
                author=admin_user,
                channel="phone",
                occurred_at=timezone.now(),
                summary="入伙通知回访",
                outcome="未接通",
            )
        url = reverse("handover:call_list", args=[event.pk])
        client.get(url)
        with CaptureQueriesContext(connection) as context:
            response = client.get(url)
        assert len(response.context["page"].object_list) == min(size, 25)
        counts.append(len(context))

    assert counts[0] == counts[1]


def test_book_link_opens_the_staff_booking_for_that_unit_and_owner(
    login, service_agent, scoped
):
    event_unit = scoped["u"]["b2"]
    owner = primary_owner(event_unit)
    client = login(service_agent)
    listed = client.get(reverse("handover:call_list", args=[scoped["event"].pk]))
    link = (
        f"{reverse('handover:appointment_book', args=[scoped['event'].pk])}"
        f"?unit={event_unit.pk}&amp;customer={owner.pk}"
    )
    assert link in listed.content.decode()

    response = client.get(link.replace("&amp;", "&"))

    assert response.status_code == 200
    assert response.context["event_unit"] == event_unit
    assert response.context["customer"] == owner
