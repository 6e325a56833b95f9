"""Issue 13: a work order created by the desk notifies its department. In a real
Chromium, against a real Celery worker and beat (the scheduled-action pipeline): the
desk agent sends a work order to 工程部 from the ticket page; the engineer logs in,
sees it in the bell with the reason, lands on the department's work orders on the home
page, and marks everything read in place.

Screenshots of the engineer's pages, in Chinese and English, go to test-artifacts/, or
to the folder named by KEHU_SHOTS_DIR.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from crm.accounts.models import User
from crm.accounts.roles import Role
from crm.notifications import services as notifications
from crm.notifications.models import Notification
from tests.browser.test_flows import (  # noqa: F401 - `pipeline` is a fixture
    Pipeline,
    log_in_context,
    pipeline,
    poll,
)
from tests.factories import (
    CustomerFactory,
    DepartmentFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page: Page, artifacts_dir: Path, name: str) -> None:
    folder = Path(os.environ.get("KEHU_SHOTS_DIR") or artifacts_dir)
    page.screenshot(path=folder / f"{name}.png", full_page=True)


def test_a_work_order_from_the_desk_reaches_the_engineer_bell_and_home(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    chromium: Browser,
    live_server: LiveServer,
    pipeline: Pipeline,  # noqa: F811 - the fixture imported above
    service_agent: User,
) -> None:
    engineering = DepartmentFactory(name="工程部")
    crew = TeamFactory(name="工程维修组", department=engineering)
    engineer = UserFactory(
        username="engineer1",
        display_name="张工",
        team=crew,
        role=Role.SERVICE,
        email="engineer1@example.com",
    )
    customer = CustomerFactory(name="王美丽")
    ticket = TicketFactory(
        customer=customer,
        subject="3 栋 1202 卫生间漏水到楼下",
        status="in_progress",
        assignee=service_agent,
        team=service_agent.team,
    )

    # --- the desk agent sends the work order from the ticket page ---
    log_in(service_agent)
    page.goto(ticket.get_absolute_url())
    work_orders = page.get_by_test_id("work-orders")
    work_orders.locator("summary", has_text="发起后台工单").click()
    work_orders.get_by_label("后台部门").select_option(label="工程部")
    work_orders.get_by_label("事项").fill("上门检查 1202 卫生间防水")
    due = (timezone.localtime() + timedelta(days=1)).replace(
        hour=17, minute=0, second=0, microsecond=0
    )
    work_orders.get_by_label("完成时限").fill(due.strftime("%Y-%m-%dT%H:%M"))
    with page.expect_navigation():
        work_orders.get_by_role("button", name="发出").click()
    expect(page.locator(".alert-success")).to_contain_text("已向工程部发出后台工单")
    sent = time.monotonic()

    # --- the pipeline tells the department; the desk agent hears nothing ---
    title = "新后台工单（工程部）：上门检查 1202 卫生间防水"
    assert poll(
        lambda: Notification.objects.filter(recipient=engineer, title=title).exists(),
        deadline=sent + 60,
    ), f"no notification within 60 s\n{pipeline.log_tails()}"
    assert not Notification.objects.filter(
        recipient=service_agent, title=title
    ).exists()

    # --- the engineer logs in: the bell, the reason, the home page ---
    other = log_in_context(chromium, live_server, engineer)
    try:
        panel = other.locator('[data-panel="department_workorders"]')
        expect(panel).to_be_visible()
        expect(other.locator('[data-panel="desk"]')).to_have_count(0)
        expect(panel.get_by_test_id("home-workorder")).to_contain_text(
            "上门检查 1202 卫生间防水"
        )
        expect(panel.get_by_test_id("workorder-department")).to_have_text("工程部")
        expect(panel.get_by_test_id("workorder-open-count")).to_have_text("1")
        expect(other.get_by_test_id("unread-count")).to_have_text("1")
        shot(other, artifacts_dir, "engineer-home-zh")

        other.get_by_test_id("bell").click()
        item = other.get_by_test_id("notification").filter(has_text=title)
        expect(item).to_contain_text(title)
        expect(item.get_by_test_id("reason")).to_have_text("为什么收到：你是该部门成员")

        # Three SLA steps of one ticket fold into one line with a count.
        for step, title_of_step in enumerate(
            ("即将超时（解决）", "已超时（解决），升级到组长", "超时未处理，升级到经理")
        ):
            notifications.notification_send(
                recipient=engineer,
                key=f"browser-sla:{step}",
                title=f"{title_of_step}：{ticket.reference}",
                body=ticket.subject,
                url=ticket.get_absolute_url(),
                email=False,
                reason="你是该工单的处理人；SLA 已超时",
                group=f"ticket:{ticket.pk}:sla",
            )
        other.reload()
        expect(other.get_by_test_id("notification")).to_have_count(2)
        expect(other.get_by_test_id("group-count")).to_have_text("共 3 条")
        expect(other.get_by_test_id("unread-count")).to_have_text("2")
        shot(other, artifacts_dir, "notifications-zh")

        # "Mark all read" in place: the list loses its highlight and the bell clears.
        other.get_by_test_id("read-all").click()
        expect(other.locator(".list-group-item-warning")).to_have_count(0)
        expect(other.get_by_test_id("unread-count")).to_have_count(0)
        assert other.url.endswith("/notifications/")

        # The same pages in English.
        other.context.add_cookies(
            [{"name": "django_language", "value": "en", "url": live_server.url}]
        )
        other.goto("/")
        expect(other.locator('[data-panel="department_workorders"]')).to_be_visible()
        shot(other, artifacts_dir, "engineer-home-en")
        other.goto("/notifications/")
        shot(other, artifacts_dir, "notifications-en")

        # The notification leads to the work order itself.
        other.goto("/notifications/")
        with other.expect_navigation():
            other.get_by_test_id("notification").filter(has_text=title).get_by_role(
                "button"
            ).click()
        expect(other.locator("main")).to_contain_text("上门检查 1202 卫生间防水")
    finally:
        other.context.close()
    assert page_problems == []
