"""The per-segment dashboard: the daily rollup against hand-computed days, recent
recomputation == rebuild, access as the segment's, drill-down in scope, export."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from io import BytesIO

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from culture.segments import services as segment_services
from culture.value import segment_dashboard
from culture.value.models import SegmentDay
from customers.models import Customer
from tests.factories import ContactLogFactory, CustomerFactory, TicketFactory

pytestmark = pytest.mark.django_db
# The story runs over the last five days up to today: the customers' history
# trigger stamps the database's clock, which time-machine cannot move, so the stage
# change happens really today (day 5).


def _at(day: int, hour: int = 0) -> datetime:
    today = timezone.localdate()
    moment = datetime.combine(today - timedelta(days=5 - day), time(hour, 1))
    return timezone.make_aware(moment)


@pytest.fixture
def static_segment(manager):
    return segment_services.segment_create(
        by=manager,
        data={"name": "重点经销商名单", "kind": "static", "visibility": "department"},
    )


def _add(segment, by, customers, day):
    with time_machine.travel(_at(day), tick=False):
        segment_services.static_members_add(
            by=by,
            segment=segment,
            customers=Customer.objects.filter(pk__in=[c.pk for c in customers]),
        )


def _remove(segment, by, customers, day):
    with time_machine.travel(_at(day), tick=False):
        segment_services.static_members_remove(
            by=by, segment=segment, customer_ids=[c.pk for c in customers]
        )


@pytest.fixture
def story(static_segment, manager, sales_rep, pay):
    """Day 1: A, B, C join. Day 2: A pays 100, B is contacted twice, C complains.
    Day 3: C leaves; C then pays 999 (not a member: not counted). Day 5 (today): B
    becomes dormant. The dashboard is computed today for 5 days."""
    a, b, c = (CustomerFactory(owner=sales_rep, stage="customer") for _ in range(3))
    _add(static_segment, manager, [a, b, c], 1)
    pay(a, 100, _at(2).date())
    ContactLogFactory(customer=b, author=sales_rep, occurred_at=_at(2, 9))
    ContactLogFactory(customer=b, author=sales_rep, occurred_at=_at(2, 15))
    with time_machine.travel(_at(2), tick=False):
        TicketFactory(customer=c, ticket_type="complaint")
    _remove(static_segment, manager, [c], 3)
    pay(c, 999, _at(3).date())
    b.stage = "dormant"
    b.save()
    segment_dashboard.snapshot_compute(segment_id=static_segment.pk, days=5)
    return {"a": a, "b": b, "c": c}


def _days(segment):
    first = timezone.localdate() - timedelta(days=4)
    return {
        (d.day - first).days + 1: (
            d.size,
            d.entered,
            d.left,
            int(d.revenue),
            d.contacts,
            d.complaints,
            d.churned,
        )
        for d in SegmentDay.objects.filter(segment=segment)
    }


def test_daily_figures_by_hand(story, static_segment):
    assert _days(static_segment) == {
        1: (3, 3, 0, 0, 0, 0, 0),
        2: (3, 0, 0, 100, 2, 1, 0),
        3: (2, 0, 1, 0, 0, 0, 0),
        4: (2, 0, 0, 0, 0, 0, 0),
        5: (2, 0, 0, 0, 0, 0, 1),
    }


def test_recent_recompute_equals_rebuild(story, static_segment, pay):
    pay(story["a"], 50, _at(5).date())
    segment_dashboard.snapshot_compute(
        segment_id=static_segment.pk, days=segment_dashboard.RECENT_DAYS
    )
    recent = _days(static_segment)
    segment_dashboard.snapshots_rebuild()
    rebuilt = _days(static_segment)
    assert len(rebuilt) == segment_dashboard.HORIZON
    assert {k: rebuilt[k] for k in recent} == recent
    assert recent[5][3] == 50


def test_segments_refreshed_since_their_snapshot_are_recomputed(story, static_segment):
    from culture.segments.models import Segment

    later = timezone.now()
    Segment.objects.filter(pk=static_segment.pk).update(refreshed_at=later)
    assert segment_dashboard.snapshots_after_refresh(now=later) == 1
    assert segment_dashboard.snapshots_after_refresh(now=later) == 0


URLS = ["segment_dashboard:dashboard", "segment_dashboard:members"]


@pytest.mark.parametrize("name", URLS)
def test_access_is_the_segments(
    name,
    static_segment,
    login,
    manager,
    sales_rep,
    far_outsider,
    admin_user,
    readonly_user,
    service_agent,
):
    url = reverse(name, args=[static_segment.pk])
    assert login(manager).get(url).status_code == 200
    assert login(admin_user).get(url).status_code == 200
    # Shared with the department: the salesperson of team A may open it.
    assert login(sales_rep).get(url).status_code == 200
    assert login(far_outsider).get(url).status_code == 404
    assert login(readonly_user).get(url).status_code == 403
    assert login(service_agent).get(url).status_code == 403


def test_private_segment_is_404_for_others(login, sales_rep, teammate, manager):
    mine = segment_services.segment_create(
        by=sales_rep, data={"name": "我的名单", "kind": "static"}
    )
    url = reverse("segment_dashboard:dashboard", args=[mine.pk])
    assert login(sales_rep).get(url).status_code == 200
    assert login(teammate).get(url).status_code == 404


def test_members_drill_down_lists_only_visible_customers(
    static_segment, manager, far_outsider, login
):
    far_customer = CustomerFactory(owner=far_outsider, name="远方客户")
    near = CustomerFactory(owner=manager, name="近处客户")
    from culture.segments.models import SegmentMember

    for c in (far_customer, near):
        SegmentMember.objects.create(
            segment=static_segment, customer=c, since=timezone.now()
        )
    page = (
        login(manager)
        .get(reverse("segment_dashboard:members", args=[static_segment.pk]))
        .content.decode()
    )
    assert "近处客户" in page and "远方客户" not in page


def test_dashboard_page_charts_figures_and_export(
    story, static_segment, login, manager
):
    client = login(manager)
    response = client.get(
        reverse("segment_dashboard:dashboard", args=[static_segment.pk]) + "?days=30"
    )
    page = response.content.decode()
    assert 'data-chart="segment-size"' in page and "数据更新于" in page
    board = response.context["board"]
    assert board.size == 2 and board.total("revenue") == 100
    assert board.total("churned") == 1
    assert board.size_at_start == 0
    export = client.get(
        reverse("segment_dashboard:export", args=[static_segment.pk]) + "?days=30"
    )
    rows = list(
        load_workbook(BytesIO(b"".join(export.streaming_content))).active.values
    )
    assert rows[0][0] == "日期" and len(rows) == 6  # header + the 5 computed days


@pytest.mark.parametrize(
    "query", ["days=7", "days=abc", "show=everyone", "day=0001-01-01", "after=-3"]
)
def test_bad_parameters_never_500(query, static_segment, login, manager):
    client = login(manager)
    for name in URLS:
        response = client.get(reverse(name, args=[static_segment.pk]) + "?" + query)
        assert response.status_code in (200, 400)


@pytest.mark.parametrize("name", URLS)
def test_constant_queries_at_two_sizes(name, static_segment, manager, sales_rep, login):
    client = login(manager)
    url = reverse(name, args=[static_segment.pk])

    def count():
        segment_dashboard.snapshot_compute(segment_id=static_segment.pk, days=90)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    _add(static_segment, manager, [CustomerFactory(owner=sales_rep)], 1)
    small = count()
    _add(
        static_segment,
        manager,
        [CustomerFactory(owner=sales_rep) for _ in range(12)],
        2,
    )
    assert count() == small


def test_dynamic_segment_refresh_then_snapshot(manager, sales_rep):
    dealer = CustomerFactory(
        owner=sales_rep, kind=Customer.Kind.DEALER, tier=Customer.Tier.A
    )
    segment = segment_services.segment_create(
        by=manager,
        data={
            "name": "A 级经销商",
            "kind": "dynamic",
            "rules": {
                "op": "and",
                "rules": [
                    {"field": "tier", "operator": "in", "value": ["A"]},
                    {"field": "kind", "operator": "in", "value": ["dealer"]},
                ],
            },
        },
    )
    segment_services.segment_refresh(segment_id=segment.pk)
    segment_dashboard.snapshots_after_refresh()
    today = SegmentDay.objects.get(segment=segment, day=timezone.localdate())
    assert (today.size, today.entered) == (1, 1)
    assert dealer.segment_memberships.exists()
