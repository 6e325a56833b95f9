"""An unknown caller becomes a customer and a ticket in one flow, in real Chromium:
the agent finds nobody, registers the caller with the ticket in one submit, then
verifies the contact so that it reaches the sales pool (公海)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from customers.models import Customer, PoolEvent
from service import calendar_data
from service.models import Ticket
from tests.factories import CategoryFactory, SLAPolicyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desk(service_agent: User) -> None:
    calendar_data.calendar_seed(years=[])
    SLAPolicyFactory(ticket_type="repair", priority="normal")
    CategoryFactory(name="报修", team=service_agent.team)


def test_an_unknown_caller_becomes_a_customer_and_a_ticket_in_one_flow(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    service_agent: User,
    desk: None,
) -> None:
    log_in(service_agent)
    page.goto("/service/new/")
    page.get_by_role("searchbox", name="查找客户").press_sequentially(
        "13900001234", delay=30
    )
    empty = page.get_by_test_id("empty-state")
    expect(empty).to_contain_text("没有找到")
    # The number never shows up in the address bar.
    assert "13900001234" not in page.url
    with page.expect_navigation():
        empty.get_by_role("link", name="登记为新来电客户并建单").click()

    expect(page.locator("main h1")).to_have_text("新建工单：新来电客户")
    caller = page.get_by_test_id("caller-form")
    expect(caller.get_by_label("来电号码")).to_have_value("13900001234")
    caller.get_by_label("来电人姓名").fill("李女士")
    caller.get_by_label("房号或资产（可选）").fill("3栋2单元1801")
    form = page.get_by_test_id("ticket-form")
    form.locator("select[name=ticket_type]").select_option(label="报修")
    form.get_by_label("分类").select_option(label="报修")
    form.get_by_label("主题").fill("厨房漏水")
    form.get_by_label("描述").fill("水槽下面一直滴水，地板已经泡了。")
    page.screenshot(path=artifacts_dir / "new-caller-1-form.png", full_page=True)
    with page.expect_navigation():
        form.get_by_role("button", name="创建工单").click()

    expect(page.locator(".alert-success")).to_contain_text(
        "已登记来电客户“李女士”（待核实）"
    )
    ticket = Ticket.objects.select_related("customer", "asset").get()
    expect(page).to_have_url(re.compile(rf"/service/t/{ticket.reference}/$"))
    panel = page.get_by_test_id("customer-panel")
    expect(panel.get_by_test_id("unverified")).to_have_text("待核实")
    expect(panel.get_by_test_id("asset")).to_contain_text("3栋2单元1801")
    customer = ticket.customer
    assert (customer.name, customer.phone, customer.is_verified) == (
        "李女士",
        "13900001234",
        False,
    )
    assert not Customer.objects.in_pool().filter(pk=customer.pk).exists()
    page.screenshot(path=artifacts_dir / "new-caller-2-ticket.png", full_page=True)

    # The agent confirms the caller is real: the contact reaches the pool.
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        panel.get_by_test_id("verify").click()
    expect(page.locator(".alert-success")).to_contain_text("已核实客户“李女士”")
    expect(panel.get_by_test_id("unverified")).to_have_count(0)
    assert Customer.objects.in_pool().filter(pk=customer.pk).exists()
    assert PoolEvent.objects.get(customer=customer).actor == service_agent
    assert page_problems == []
