"""The bell: the unread count a staff member sees, and reading notifications."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.notifications import services
from crm.notifications.models import Notification

BELL_URL = reverse("notifications:notification_bell")
LIST_URL = reverse("notifications:notification_list")


def unread_shown(response) -> int:
    """The number on the bell; no badge means zero."""
    assert response.status_code == 200
    match = re.search(
        r'data-testid="unread-count">\s*(\d+)\s*<', response.content.decode()
    )
    return int(match.group(1)) if match else 0


def notify(
    user, key: str, title: str = "跟进到期：张三", url: str = "/customers/1/"
) -> Notification | None:
    return services.notification_send(
        recipient=user, key=key, title=title, body="回电", url=url, email=False
    )


def read_url(notification: Notification) -> str:
    return reverse("notifications:notification_read", args=[notification.pk])


@pytest.fixture
def as_sales(client, sales_rep):
    client.force_login(sales_rep)
    return client


def test_no_notifications_shows_a_bell_without_a_number(as_sales):
    response = as_sales.get(BELL_URL)
    assertContains(response, 'data-testid="bell"')
    assert unread_shown(response) == 0


def test_the_bell_counts_only_my_unread_notifications(as_sales, sales_rep, teammate):
    notify(sales_rep, "a")
    notify(sales_rep, "b")
    notify(teammate, "c")
    assert unread_shown(as_sales.get(BELL_URL)) == 2


def test_the_same_key_notifies_once(as_sales, sales_rep):
    assert notify(sales_rep, "followup:1:remind") is not None
    assert notify(sales_rep, "followup:1:remind") is None
    assert unread_shown(as_sales.get(BELL_URL)) == 1


def test_opening_a_notification_marks_it_read_and_goes_to_its_page(as_sales, sales_rep):
    first = notify(sales_rep, "a", url="/customers/42/")
    notify(sales_rep, "b")
    response = as_sales.post(read_url(first))
    assert response["Location"] == "/customers/42/"
    assert unread_shown(as_sales.get(BELL_URL)) == 1
    first.refresh_from_db()
    assert first.read_at is not None


def test_a_notification_with_an_outside_link_goes_to_the_list(as_sales, sales_rep):
    notification = notify(sales_rep, "a", url="https://evil.example.com/")
    response = as_sales.post(read_url(notification))
    assert response["Location"] == LIST_URL


def test_read_all_clears_the_bell(as_sales, sales_rep, teammate):
    notify(sales_rep, "a")
    notify(sales_rep, "b")
    theirs = notify(teammate, "c")
    as_sales.post(reverse("notifications:notification_read_all"))
    assert unread_shown(as_sales.get(BELL_URL)) == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_nobody_can_read_someone_elses_notification(as_sales, teammate):
    theirs = notify(teammate, "c", title="同事的提醒")
    response = as_sales.post(read_url(theirs))
    assert response["Location"] == LIST_URL
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assertNotContains(as_sales.get(LIST_URL), "同事的提醒")


def test_the_list_shows_my_notifications_newest_first(as_sales, sales_rep):
    notify(sales_rep, "a", title="第一条")
    notify(sales_rep, "b", title="第二条")
    html = as_sales.get(LIST_URL).content.decode()
    assert html.index("第二条") < html.index("第一条")


def test_anonymous_gets_the_login_page(client, db):
    response = client.get(BELL_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_bell_runs_the_same_queries_for_1_and_50_notifications(
    as_sales, sales_rep, django_assert_max_num_queries
):
    notify(sales_rep, "first")
    as_sales.get(BELL_URL)
    with CaptureQueriesContext(connection) as one:
        as_sales.get(BELL_URL)
    for n in range(49):
        notify(sales_rep, f"k{n}")
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert unread_shown(as_sales.get(BELL_URL)) == 50
