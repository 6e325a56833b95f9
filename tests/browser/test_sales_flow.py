"""Sales without detours, in real Chromium: the duplicate check answers while the
phone is typed, and a quick contact from the list updates that row in place."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from customers import services
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_duplicate_check_answers_while_typing(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    sales_rep: User,
) -> None:
    services.customer_create(
        by=sales_rep, data={"name": "张三"}, phone_numbers=["13800138000"]
    )
    log_in(sales_rep)
    page.goto("/customers/new/")
    page.locator("#id_name").fill("张三丰")
    phone = page.get_by_label("主电话")
    phone.fill("138 0013 8000")
    phone.blur()  # change
    expect(page.get_by_test_id("duplicate-phone")).to_have_text(
        "电话 13800138000 已属于客户“张三”。"
    )
    phone.fill("13900139000")
    phone.blur()
    expect(page.get_by_test_id("duplicate-phone")).to_have_text("未发现重复。")
    assert page_problems == []


def test_a_quick_contact_from_the_list_updates_its_row(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    sales_rep: User,
) -> None:
    customer = CustomerFactory(name="王业主", owner=sales_rep)
    CustomerFactory(name="赵业主", owner=sales_rep)
    log_in(sales_rep)
    page.goto("/customers/")
    row = page.locator(f"#customer-row-{customer.pk}")
    expect(row.get_by_test_id("last-contact")).to_have_text("从未")
    row.get_by_test_id("quick-log").click()
    form = page.get_by_test_id("contact-form")
    form.locator("select[name=channel]").select_option("phone")
    form.locator("textarea[name=summary]").fill("聊了装修方案")
    form.get_by_role("button", name="保存").click()
    expect(page.get_by_test_id("contact-saved")).to_be_visible()
    expect(row.get_by_test_id("last-contact")).to_have_text("现在")
    expect(page.get_by_test_id("customer-row")).to_have_count(2)
    assert page_problems == []
