"""Notifications are signal, not noise: nobody hears of their own action, similar ones
fold into one line with a count, "mark all read" works in place (htmx), and each one
says why its recipient got it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.notifications import services
from crm.notifications.models import Notification

BELL_URL = reverse("notifications:notification_bell")
LIST_URL = reverse("notifications:notification_list")
READ_ALL_URL = reverse("notifications:notification_read_all")


def unread_shown(response) -> int:
    assert response.status_code == 200
    match = re.search(
        r'data-testid="unread-count">\s*(\d+)\s*<', response.content.decode()
    )
    return int(match.group(1)) if match else 0


def send(user, key: str, **kwargs) -> Notification | None:
    kwargs.setdefault("title", "已超时（首次响应）：2026000001")
    return services.notification_send(recipient=user, key=key, email=False, **kwargs)


@pytest.fixture
def as_sales(client, sales_rep):
    client.force_login(sales_rep)
    return client


def test_nobody_is_notified_of_their_own_action(sales_rep, teammate):
    assert send(sales_rep, "a", actor=sales_rep) is None
    assert send(sales_rep, "b", actor=teammate) is not None
    created = services.notify_many(
        [
            services.Draft(recipient_id=sales_rep.pk, key="c", title="x"),
            services.Draft(recipient_id=teammate.pk, key="d", title="x"),
        ],
        actor_id=sales_rep.pk,
    )
    assert created == ["d"]
    keys = Notification.objects.order_by("pk").values_list("idempotency_key")
    assert [key for (key,) in keys] == ["b", "d"]


def test_similar_notifications_show_as_one_line_with_a_count(as_sales, sales_rep):
    send(sales_rep, "w", group="ticket:1:sla", title="即将超时：2026000001")
    send(sales_rep, "b", group="ticket:1:sla", title="已超时：2026000001")
    send(sales_rep, "m", group="ticket:1:sla", title="升级到经理：2026000001")
    send(sales_rep, "other", group="ticket:2:sla", title="即将超时：2026000002")

    assert unread_shown(as_sales.get(BELL_URL)) == 2
    html = as_sales.get(LIST_URL).content.decode()
    assert html.count('data-testid="notification"') == 2
    assert re.search(r'data-testid="group-count">\s*共 3 条', html)
    # The group's line reads as its newest notification.
    assert "升级到经理：2026000001" in html
    assert "即将超时：2026000001" not in html
    assert "即将超时：2026000002" in html


def test_a_batch_folds_into_the_same_line(as_sales, sales_rep, teammate):
    send(sales_rep, "first", group="ticket:1:sla")
    services.notify_many(
        [
            services.Draft(sales_rep.pk, "k1", "已超时", group="ticket:1:sla"),
            services.Draft(sales_rep.pk, "k2", "升级", group="ticket:1:sla"),
            services.Draft(teammate.pk, "k3", "已超时", group="ticket:1:sla"),
            services.Draft(teammate.pk, "k4", "升级", group="ticket:1:sla"),
        ]
    )
    assert unread_shown(as_sales.get(BELL_URL)) == 1
    theirs = Notification.objects.filter(recipient=teammate).order_by("pk")
    assert [n.grouped_into_id for n in theirs] == [None, theirs[0].pk]


def test_a_group_reopens_once_its_line_is_read_or_old(as_sales, sales_rep):
    first = send(sales_rep, "a", group="g")
    as_sales.post(reverse("notifications:notification_read", args=[first.pk]))
    second = send(sales_rep, "b", group="g")
    assert second.grouped_into_id is None
    with time_machine.travel(timezone.now() + services.GROUP_WINDOW + timedelta(1)):
        third = send(sales_rep, "c", group="g")
    assert third.grouped_into_id is None
    assert unread_shown(as_sales.get(BELL_URL)) == 2


def test_opening_a_line_reads_the_whole_group(as_sales, sales_rep):
    line = send(sales_rep, "a", group="g", url="/customers/1/")
    send(sales_rep, "b", group="g")
    as_sales.post(reverse("notifications:notification_read", args=[line.pk]))
    assert Notification.objects.unread().count() == 0
    assert unread_shown(as_sales.get(BELL_URL)) == 0


def test_ungrouped_notifications_never_fold(as_sales, sales_rep):
    send(sales_rep, "a")
    send(sales_rep, "b")
    assert unread_shown(as_sales.get(BELL_URL)) == 2


def test_the_list_says_why_each_one_came(as_sales, sales_rep):
    send(sales_rep, "a", reason="你是该工单的处理人")
    send(sales_rep, "b")
    response = as_sales.get(LIST_URL)
    assertContains(response, "为什么收到：你是该工单的处理人", count=1)


def test_read_all_is_a_button_that_clears_the_list_in_place(as_sales, sales_rep):
    send(sales_rep, "a")
    send(sales_rep, "b", group="g")
    send(sales_rep, "c", group="g")
    page = as_sales.get(LIST_URL)
    assertContains(page, f'hx-post="{READ_ALL_URL}"')

    response = as_sales.post(READ_ALL_URL, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response["HX-Trigger"] == "kehu:notifications"
    assertNotContains(response, "<html")
    assertNotContains(response, "list-group-item-warning")
    assert Notification.objects.unread().count() == 0
    assert unread_shown(as_sales.get(BELL_URL)) == 0


def test_read_all_without_javascript_goes_back_to_the_list(as_sales, sales_rep):
    send(sales_rep, "a")
    response = as_sales.post(READ_ALL_URL)
    assert response["Location"] == LIST_URL


def test_the_list_runs_the_same_queries_for_1_and_60_lines(
    as_sales, sales_rep, django_assert_max_num_queries
):
    send(sales_rep, "first", group="g0")
    send(sales_rep, "second", group="g0")
    as_sales.get(LIST_URL)
    with CaptureQueriesContext(connection) as one:
        as_sales.get(LIST_URL)
    for n in range(60):
        send(sales_rep, f"k{n}", group=f"g{n % 20}")
        send(sales_rep, f"u{n}")
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = as_sales.get(LIST_URL)
    assert response.content.decode().count('data-testid="notification"') == 30


def test_the_bell_and_the_groups_are_read_through_indexes(sales_rep):
    """With the planner told not to scan sequentially, the bell's lines and a group's
    open line are still found through the partial indexes made for them."""
    for n in range(50):
        send(sales_rep, f"k{n}", group=f"g{n % 5}")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    bell = Notification.objects.unread().lines().filter(recipient=sales_rep)
    plan = bell.explain()
    assert "Seq Scan" not in plan and "notification_" in plan, plan
    group = (
        Notification.objects.unread()
        .lines()
        .filter(recipient=sales_rep, group_key="g1")
        .order_by("-created_at")
    )
    plan = group.explain()
    assert "Seq Scan" not in plan and "notification_" in plan, plan


def test_a_batch_finds_the_open_lines_through_their_index(sales_rep, teammate):
    """notify_many's INSERT looks up each draft's open line with the partial index
    notification_open_group, not by reading the recipient's recent unread lines one by
    one (an escalation sweep gives a team lead thousands of them within the window)."""
    # Thousands of recent unread lines, as a sweep leaves a team lead, and fresh
    # statistics: on a handful of rows either index costs the same to the planner.
    services.notify_many(
        [
            services.Draft(
                recipient_id=sales_rep.pk,
                key=f"recent{n}",
                title="x",
                group=f"ticket:{n}:sla",
            )
            for n in range(3000)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_notification")
    drafts = [
        services.Draft(
            recipient_id=sales_rep.pk, key=f"new{n}", title="x", group=f"ticket:{n}:sla"
        )
        for n in range(45, 55)
    ]
    with CaptureQueriesContext(connection) as queries:
        services.notify_many(drafts)
    (insert,) = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + insert)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "notification_open_group" in plan, plan


def test_a_batch_finds_the_open_lines_through_their_index_on_stale_statistics(
    sales_rep,
):
    """As during an escalation sweep: the statistics were taken before the window's
    lines existed (no ANALYZE runs mid-sweep), and an earlier sweep's lines are dead
    rows still in the indexes. The lookup must still start from notification_open_group,
    not walk the recipient's recent unread lines (issue 18: on the bench data, with an
    earlier run's dead rows, the planner chose notification_unread_line for the old
    form of the lookup and the sweep spent 53 s in this INSERT; that exact state is not
    rebuilt here, the plan of the new form is checked on the nearest one)."""
    services.notify_many(
        [
            services.Draft(recipient_id=sales_rep.pk, key=f"old{n}", title="x")
            for n in range(20)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_notification")
    services.notify_many(
        [
            services.Draft(
                recipient_id=sales_rep.pk,
                key=f"recent{n}",
                title="x",
                group=f"ticket:{n}:sla",
            )
            for n in range(3000)
        ]
    )
    Notification.objects.filter(idempotency_key__startswith="recent1").delete()
    drafts = [
        services.Draft(
            recipient_id=sales_rep.pk, key=f"new{n}", title="x", group=f"ticket:{n}:sla"
        )
        for n in range(45, 55)
    ]
    with CaptureQueriesContext(connection) as queries:
        created = services.notify_many(drafts)
    assert len(created) == 10
    (insert,) = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + insert)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "notification_open_group" in plan, plan
    assert "notification_unread_line" not in plan, plan
    # Each joined the open line of its group (new45 and new46 ... that exist).
    for n in range(45, 55):
        note = Notification.objects.get(idempotency_key=f"new{n}")
        line = Notification.objects.filter(idempotency_key=f"recent{n}").first()
        assert note.grouped_into_id == (line.pk if line else None)
