"""A manager builds "A 级经销商 in 华东 with a complaint in the last 90 days" in real
Chromium: the count follows every edit, the segment is saved, refreshed, and exported
to XLSX through the customer export."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from culture.segments.models import Segment
from tests.factories import CustomerFactory, TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Screenshots of each step for a person to look at, when KEHU_SHOTS_DIR names a folder.
SHOTS = os.environ.get("KEHU_SHOTS_DIR", "")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(SHOTS) / f"{name}.png", full_page=True)


def count(page: Page):
    return page.get_by_test_id("count-value")


def settled(page: Page) -> None:
    """htmx wires swapped-in elements when the swap settles (20 ms later): a person
    is never that fast, a test is."""
    expect(page.locator(".htmx-added, .htmx-settling, .htmx-request")).to_have_count(0)


def add_rule(page: Page, field: str):
    rules = page.get_by_test_id("rule")
    before = rules.count()
    page.get_by_test_id("add-rule").click()
    expect(rules).to_have_count(before + 1)
    settled(page)
    rules.nth(before).get_by_test_id("rule-field").select_option(field)
    expect(
        rules.nth(before).locator(f"input[name='0.{before}-was'][value='{field}']")
    ).to_have_count(1)
    settled(page)
    return rules.nth(before)


def test_a_manager_builds_a_segment_with_a_live_count_and_exports_it(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    manager: User,
    sales_rep: User,
) -> None:
    def dealer(name, province, tier="A", complaint=True):
        customer = CustomerFactory(
            name=name, owner=sales_rep, kind="dealer", tier=tier, province=province
        )
        if complaint:
            TicketFactory(customer=customer, ticket_type="complaint")
        return customer

    dealer("杭州恒远建材", "浙江省")
    dealer("上海申达贸易", "上海市")
    dealer("南京金陵经销", "江苏省", complaint=False)
    dealer("广州粤海经销", "广东省")
    dealer("苏州太湖建材", "江苏省", tier="B")
    CustomerFactory.create_batch(5, owner=sales_rep, kind="owner", tier="A")

    log_in(manager)
    page.goto("/")
    page.get_by_role("button", name="分析").click()  # the navbar's dropdown
    page.get_by_role("link", name="客户分群").click()
    page.get_by_test_id("new-dynamic").click()
    page.locator("#id_name").fill("华东 A 级经销商（近 90 天有投诉）")

    rules = page.get_by_test_id("rule")
    # The first rule is 价值等级 属于 …: tick A.
    rules.nth(0).get_by_label("A", exact=True).check()
    expect(count(page)).to_have_text("9")

    kind = add_rule(page, "kind")
    kind.get_by_label("经销商").check()
    expect(count(page)).to_have_text("4")

    region = add_rule(page, "macro_region")
    region.get_by_label("华东").check()
    expect(count(page)).to_have_text("3")

    add_rule(page, "complaints")
    days = rules.nth(3).get_by_test_id("rule-days")
    expect(days).to_be_visible()
    # While the number of days is missing the box says what is wrong…
    expect(page.get_by_test_id("count-error")).to_contain_text(
        "第 4 条规则：请填写天数"
    )
    shot(page, "builder-invalid")
    # …and typing it updates the count without leaving the field.
    days.press_sequentially("90", delay=50)
    expect(count(page)).to_have_text("2")
    expect(page.get_by_test_id("count-definition")).to_contain_text("大区 属于 华东")
    shot(page, "builder-live-count")

    page.get_by_test_id("save-segment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("华东 A 级经销商")
    page.get_by_test_id("refresh-segment").click()
    expect(page.get_by_test_id("member-count")).to_have_text("2")
    expect(page.get_by_test_id("member-table")).to_contain_text("杭州恒远建材")
    expect(page.get_by_test_id("segment-history")).to_contain_text("进入")
    shot(page, "segment-detail")

    page.get_by_test_id("export-segment").click()
    expect(page.get_by_test_id("export-count")).to_contain_text("2")
    shot(page, "export-confirm")
    with page.expect_download() as download_info:
        page.get_by_test_id("export-xlsx").click()
    content = Path(download_info.value.path()).read_bytes()
    sheet = load_workbook(io.BytesIO(content)).active
    names = sorted(row[1] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert names == ["上海申达贸易", "杭州恒远建材"]

    page.goto("/segments/")
    shot(page, "segment-list")
    assert Segment.objects.get().member_count == 2
    assert page_problems == []


def test_a_static_list_from_a_search_with_removal_confirmed(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    manager: User,
    sales_rep: User,
) -> None:
    for name in ("王建国", "王建军", "李四"):
        CustomerFactory(name=name, owner=sales_rep)
    log_in(manager)
    page.goto("/segments/")
    page.get_by_test_id("new-static").click()
    page.locator("#id_name").fill("春节回访名单")
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("no-members")).to_be_visible()

    page.get_by_test_id("static-q").fill("王建")
    page.get_by_test_id("static-q").press("Enter")
    results = page.get_by_test_id("static-results")
    expect(results).to_contain_text("王建国")
    expect(results).not_to_contain_text("李四")
    shot(page, "static-search")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("add-all").click()
    expect(page.get_by_test_id("member-count")).to_have_text("2")

    row = page.get_by_test_id("member-table").locator("tr", has_text="王建军")
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="移出").click()
    expect(page.get_by_test_id("member-count")).to_have_text("2")  # cancelled
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="移出").click()
    expect(page.get_by_test_id("member-count")).to_have_text("1")
    expect(page.get_by_test_id("segment-history")).to_contain_text("王建军 于")
    shot(page, "static-list")

    page.get_by_test_id("open-in-list").click()
    expect(page.get_by_test_id("extra-filter")).to_contain_text("春节回访名单")
    expect(page.get_by_test_id("customer-table")).to_contain_text("王建国")
    expect(page.get_by_test_id("customer-table")).not_to_contain_text("王建军")
    shot(page, "customer-list-filtered")
    assert page_problems == []
