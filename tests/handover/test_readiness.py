"""交付准备: the event's numbers per batch and per day, computed by hand on a small
event, the page for each role, and a constant query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from service.handover import readiness
from service.handover.models import Appointment, EventUnit, Notice
from tests.handover.builders import slots_of
from tests.handover.readiness_builders import (
    book,
    make_batch,
    make_units,
    notify,
    put_in_scope,
)

pytestmark = pytest.mark.django_db

SENT, DELIVERED, FAILED, QUEUED = (
    Notice.State.SENT,
    Notice.State.DELIVERED,
    Notice.State.FAILED,
    Notice.State.QUEUED,
)


@pytest.fixture
def small_event(new_event, admin_user, sales_rep):
    """Batch A: a1 delivered+booked, a2 sent+checked in, a3 failed, a4 in arrears.
    Batch B: b1 delivered 5 days ago, b2 nothing, b3 sent and a cancelled booking.
    No batch: n1 only a queued notice, booked by staff."""
    event = new_event(days=2, slots_per_day=2, capacity=5)
    units = make_units(8, owner_user=sales_rep)
    batch_a = make_batch(event, "第一批", opens_in_days=-10)
    batch_b = make_batch(event, "第二批", opens_in_days=-5)
    a1, a2, a3 = put_in_scope(event, units[:3], batch=batch_a)
    (a4,) = put_in_scope(
        event, units[3:4], batch=batch_a, eligibility=EventUnit.Eligibility.ARREARS
    )
    b1, b2, b3 = put_in_scope(event, units[4:7], batch=batch_b)
    (n1,) = put_in_scope(event, units[7:])
    now = timezone.now()
    day1 = now - dt.timedelta(days=5)
    day2 = now - dt.timedelta(days=1)
    notify(a1, by=admin_user, state=DELIVERED, sent_at=day1)
    notify(a1, by=admin_user, state=FAILED, sent_at=day1, channel="email")
    notify(a2, by=admin_user, state=SENT, sent_at=day1)
    notify(a3, by=admin_user, state=FAILED, sent_at=day2)
    notify(b1, by=admin_user, state=DELIVERED, sent_at=day1)
    notify(b3, by=admin_user, state=SENT, sent_at=now)
    notify(n1, by=admin_user, state=QUEUED)
    first, second, *_rest = slots_of(event)
    book(a1, slot=first, by=admin_user, made_at=day2)
    checked = book(a2, slot=second, by=admin_user, made_at=day2)
    Appointment.objects.filter(pk=checked.pk).update(
        state=Appointment.State.CHECKED_IN, checked_in_at=now
    )
    cancelled = book(b3, slot=first, by=admin_user, made_at=now)
    Appointment.objects.filter(pk=cancelled.pk).update(
        state=Appointment.State.CANCELLED, cancelled_at=now
    )
    last_slot = slots_of(event)[-1]
    book(n1, slot=last_slot, by=admin_user, made_at=now)
    return {
        "event": event,
        "batches": (batch_a, batch_b),
        "units": {"a1": a1, "a2": a2, "a3": a3, "a4": a4, "b1": b1, "b2": b2}
        | {"b3": b3, "n1": n1},
        "days": (day1, day2, now),
        "slots": (first, second, last_slot),
    }


def _as_tuple(row: readiness.Numbers) -> tuple[int, ...]:
    return tuple(getattr(row, name) for name in readiness.Numbers.FIELDS)


def test_numbers_per_batch_and_total_match_the_hand_count(small_event):
    rows, total = readiness.batch_numbers(small_event["event"])

    # (in scope, eligible, notified, delivered, booked, checked in)
    assert [(row.label, _as_tuple(row)) for row in rows] == [
        ("第一批", (4, 3, 2, 1, 2, 1)),
        ("第二批", (3, 3, 2, 1, 0, 0)),
        ("未分批", (1, 1, 0, 0, 1, 0)),
    ]
    assert _as_tuple(total) == (8, 7, 4, 2, 3, 1)
    assert (total.eligible_pct, total.notified_pct, total.booked_pct) == (88, 57, 43)
    assert total.checked_in_pct == 33


def test_numbers_per_day_count_sent_notices_bookings_made_and_slot_days(small_event):
    day1, day2, now = (timezone.localtime(d).date() for d in small_event["days"])
    first, _second, last = small_event["slots"]

    days = {row["day"]: row for row in readiness.day_numbers(small_event["event"])}

    # Sent (or delivered, or failed after sending) notices by their sending day;
    # the queued one has not been sent.
    assert days[day1]["sent"] == 4
    assert days[day2]["sent"] == 1
    assert days[now]["sent"] == 1
    # Bookings made that day, the later-cancelled one included.
    assert (days[day1]["made"], days[day2]["made"], days[now]["made"]) == (0, 2, 2)
    # Active bookings by the day of their slot.
    assert days[first.date]["on_day"] == 2
    assert days[last.date]["on_day"] == 1


def test_quiet_days_between_are_listed_with_zeros(small_event):
    day1, _day2, _now = (timezone.localtime(d).date() for d in small_event["days"])

    days = [row["day"] for row in readiness.day_numbers(small_event["event"])]
    quiet = {"day": day1 + dt.timedelta(days=1), "sent": 0, "made": 0, "on_day": 0}

    assert days == [days[0] + dt.timedelta(days=n) for n in range(len(days))]
    assert quiet in readiness.day_numbers(small_event["event"])


def test_numbers_per_day_for_one_batch(small_event):
    batch_a, _batch_b = small_event["batches"]
    day1, day2, _now = (timezone.localtime(d).date() for d in small_event["days"])

    days = {
        row["day"]: row for row in readiness.day_numbers(small_event["event"], batch_a)
    }

    assert days[day1]["sent"] == 3
    assert days[day2] == {"day": day2, "sent": 1, "made": 2, "on_day": 0}


def test_an_event_without_scope_shows_the_empty_state(login, manager, new_event):
    event = new_event()

    response = login(manager).get(reverse("handover:event_readiness", args=[event.pk]))

    assert response.status_code == 200
    assert "该活动还没有范围内的房间。" in response.content.decode()


def test_page_shows_the_table_and_the_chart(login, manager, small_event):
    event = small_event["event"]

    response = login(manager).get(reverse("handover:event_readiness", args=[event.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="readiness-table"' in page
    assert 'id="readiness-days"' in page  # the chart's data
    assert response.context["numbers"].total.booked == 3


def test_event_page_links_to_readiness(login, service_agent, small_event):
    event = small_event["event"]

    response = login(service_agent).get(event.get_absolute_url())

    assert (
        reverse("handover:event_readiness", args=[event.pk])
        in response.content.decode()
    )


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("sales_rep", 200),
        ("service_agent", 200),
        ("manager", 200),
        ("admin_user", 200),
        ("readonly_user", 403),
    ],
)
def test_every_staff_role_sees_the_numbers(
    request, login, small_event, persona, status
):
    user = request.getfixturevalue(persona)
    url = reverse("handover:event_readiness", args=[small_event["event"].pk])

    assert login(user).get(url).status_code == status


def test_anonymous_is_sent_to_login(client, small_event):
    url = reverse("handover:event_readiness", args=[small_event["event"].pk])

    response = client.get(url)

    assert response.status_code == 302
    assert "login" in response["Location"]


def test_draft_event_is_404_for_service_and_visible_to_managers(
    login, service_agent, manager, new_event
):
    draft = new_event(publish=False)
    url = reverse("handover:event_readiness", args=[draft.pk])

    assert login(service_agent).get(url).status_code == 404
    assert login(manager).get(url).status_code == 200


def test_another_events_batch_in_the_filter_is_404(
    login, manager, small_event, new_event
):
    other = new_event(name="别的活动")
    foreign = make_batch(other, "别的批次")
    url = reverse("handover:event_readiness", args=[small_event["event"].pk])

    assert login(manager).get(url, {"batch": foreign.pk}).status_code == 404
    assert login(manager).get(url, {"batch": "x"}).status_code == 404


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context)


def test_query_count_is_the_same_for_10_and_50_units(
    login, manager, admin_user, sales_rep, new_event
):
    client = login(manager)
    counts = []
    for size in (10, 50):
        event = new_event(name=f"活动{size}", days=1, slots_per_day=5, capacity=20)
        batch = make_batch(event, "第一批")
        scope = put_in_scope(event, make_units(size, owner_user=sales_rep), batch=batch)
        slots = slots_of(event)
        for n, event_unit in enumerate(scope):
            notify(event_unit, by=admin_user, state=DELIVERED if n % 2 else SENT)
            if n % 3 == 0:
                book(event_unit, slot=slots[n % len(slots)], by=admin_user)
        url = reverse("handover:event_readiness", args=[event.pk])
        client.get(url)  # warm the session and the permission caches
        counts.append(_queries(client, url))

    assert counts[0] == counts[1]
