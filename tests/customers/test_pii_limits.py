"""Rate limits on reading personal data in bulk (S14, S16): exports per user per day and
ID-number reveals per user per hour, both counted from the audit log in the database."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.accounts.roles import Role
from crm.core import audit
from crm.core.models import AccessLog
from crm.notifications.models import Notification
from customers import services
from tests.factories import CustomerFactory, UserFactory

DOWNLOAD_URL = reverse("customers:export_download")
ID_NUMBER = "11010519491231002X"
# A Wednesday morning in Beijing; "today" for the daily limit is the local day.
MORNING = dt.datetime(2026, 3, 4, 1, 0, tzinfo=dt.UTC)


def _ok(action: str):
    return AccessLog.objects.filter(action=action, outcome=audit.OK)


# --- exports per day ---------------------------------------------------------------------


@pytest.fixture
def admins(db):
    return [
        UserFactory(
            username=f"admin_{n}", team=None, role=Role.ADMIN, email=f"a{n}@x.cn"
        )
        for n in range(2)
    ]


def test_ten_exports_a_day_then_a_clear_refusal_and_one_alert_to_each_admin(
    client, manager, sales_rep, admins, settings, mailoutbox
):
    assert settings.KEHU_EXPORT_DAILY_LIMIT == 10
    CustomerFactory(owner=sales_rep, name="张三")
    client.force_login(manager)
    with time_machine.travel(MORNING, tick=False):
        for _ in range(10):
            assert client.get(DOWNLOAD_URL, {"format": "csv"}).status_code == 200
        refused = client.get(DOWNLOAD_URL, {"format": "csv"}, follow=True)
        assert refused.redirect_chain  # back to the export page, no file
        assertContains(refused, "您今天已导出 10 次，达到每日上限")
        client.get(DOWNLOAD_URL, {"format": "xlsx"})  # refused again: no second alert
    assert _ok(audit.EXPORTED).filter(user=manager).count() == 10
    assert (
        AccessLog.objects.filter(
            action=audit.EXPORTED, outcome=audit.DENIED, user=manager
        ).count()
        == 2
    )
    alerts = Notification.objects.filter(title__contains="导出次数达到上限")
    assert sorted(a.recipient.username for a in alerts) == ["admin_0", "admin_1"]
    assert len([m for m in mailoutbox if "导出次数达到上限" in m.subject]) == 2


def test_the_limit_is_per_user_and_per_local_day(
    client, manager, admin_user, sales_rep, settings
):
    settings.KEHU_EXPORT_DAILY_LIMIT = 2
    CustomerFactory(owner=sales_rep)
    # 23:30 in Beijing is still the same day; 00:10 the next day starts afresh.
    late = dt.datetime(2026, 3, 4, 15, 30, tzinfo=dt.UTC)
    with time_machine.travel(late, tick=False):
        client.force_login(manager)
        for _ in range(2):
            assert client.get(DOWNLOAD_URL).status_code == 200
        assert client.get(DOWNLOAD_URL).status_code == 302
        client.force_login(admin_user)  # someone else's count is their own
        assert client.get(DOWNLOAD_URL).status_code == 200
    with time_machine.travel(late + dt.timedelta(minutes=40), tick=False):
        client.force_login(manager)
        assert client.get(DOWNLOAD_URL).status_code == 200


def test_a_request_for_approval_counts_against_the_limit_too(
    client, manager, sales_rep, settings
):
    settings.KEHU_EXPORT_DAILY_LIMIT = 1
    settings.KEHU_EXPORT_APPROVAL_ROWS = 1
    CustomerFactory(owner=sales_rep)
    client.force_login(manager)
    assert client.get(DOWNLOAD_URL).status_code == 200
    CustomerFactory(owner=sales_rep)
    response = client.post(
        reverse("customers:export_request_create"),
        {"reason": "回访", "file_format": "csv"},
        follow=True,
    )
    assertContains(response, "达到每日上限")
    assert not _ok(audit.EXPORT_REQUESTED).exists()


# --- reveals per hour ----------------------------------------------------------------------


@pytest.fixture
def customer(sales_rep):
    return services.customer_create(
        by=sales_rep,
        data={"name": "张三"},
        phone_numbers=["13812345678"],
        id_number=ID_NUMBER,
    )


def reveal(client, customer, **headers):
    return client.post(
        reverse("customers:customer_reveal", args=[customer.pk]),
        {"reason": "客户来电核实身份"},
        **headers,
    )


def test_thirty_reveals_an_hour_then_a_clear_refusal(
    client, manager, customer, settings
):
    assert settings.KEHU_REVEAL_HOURLY_LIMIT == 30
    client.force_login(manager)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(30):
            response = reveal(client, customer, HTTP_HX_REQUEST="true")
            assertContains(response, ID_NUMBER)
            assert response["Cache-Control"] == "no-store"
        refused = reveal(client, customer, HTTP_HX_REQUEST="true")
        assertContains(refused, "一小时内已查看 30 次完整身份证号")
        assertNotContains(refused, ID_NUMBER)
        without_htmx = reveal(client, customer)
        assert without_htmx.status_code == 302
    assert _ok(audit.ID_REVEALED).filter(user=manager).count() == 30
    # The window slides: an hour after the first reveals, revealing works again.
    with time_machine.travel(start + dt.timedelta(minutes=61), tick=False):
        assertContains(reveal(client, customer, HTTP_HX_REQUEST="true"), ID_NUMBER)


def test_the_reveal_limit_is_per_user(client, manager, sales_rep, customer, settings):
    settings.KEHU_REVEAL_HOURLY_LIMIT = 1
    client.force_login(manager)
    assertContains(reveal(client, customer, HTTP_HX_REQUEST="true"), ID_NUMBER)
    assertNotContains(reveal(client, customer, HTTP_HX_REQUEST="true"), ID_NUMBER)
    client.force_login(sales_rep)
    assertContains(reveal(client, customer, HTTP_HX_REQUEST="true"), ID_NUMBER)
