"""Rough edges a new user saw on day one, checked where they showed: in a real browser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from customers import services

pytestmark = pytest.mark.browser

LONG_NAME = "深圳市前海国际商业保理与供应链金融服务集团有限公司华南区域第二分公司（筹）"


def test_a_long_name_wraps_in_its_own_column_and_the_short_columns_stay_on_one_line(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    sales_rep: User,
) -> None:
    services.customer_create(
        by=sales_rep, data={"name": LONG_NAME, "phone": "13912345678"}
    )
    log_in(sales_rep)
    page.goto("/customers/")
    row = page.get_by_test_id("customer-table").locator("tr", has_text="（筹）")
    # 类型, 阶段, 等级, 电话 and 负责人 keep one line each, however long the name.
    for column in (1, 2, 3, 4, 5):
        spans = (
            row.locator("td")
            .nth(column)
            .evaluate(
                "td => { const r = document.createRange(); r.selectNodeContents(td);"
                " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }"
            )
        )
        assert spans == 1, f"column {column} wraps onto {spans} lines"

    # The grade filter shows its whole empty choice, not "全部等".
    tier = page.locator("select#id_tier")
    fits = tier.evaluate(
        "s => { const c = document.createElement('canvas').getContext('2d');"
        " c.font = getComputedStyle(s).font;"
        " return c.measureText(s.options[s.selectedIndex].text).width"
        " + 36 <= s.clientWidth; }"
    )
    assert fits, "the grade filter clips 全部等级"


def test_the_new_customer_form_reads_right(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    sales_rep: User,
) -> None:
    log_in(sales_rep)
    page.goto("/customers/new/")
    # Nothing to keep on a new customer, so no "leave empty to keep it".
    expect(page.locator("main")).not_to_contain_text("留空表示不修改")
    # The organisation's label, then its select, then the box that searches it.
    label = page.locator("label[for=id_organization]").bounding_box()
    select = page.locator("select#id_organization").bounding_box()
    search = page.get_by_test_id("organization-search").bounding_box()
    assert label["y"] < select["y"] < search["y"]
    # The tab shows Kehu's icon.
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(icon).status == 200
