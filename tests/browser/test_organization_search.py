"""The organisation search box on the new-customer form, in a real headless Chromium.

The select lists only the first ORGANIZATIONS_SHOWN organisations by name; typing part of
another's name into the box under it asks the server (htmx POST) for matching options.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from customers import services
from customers.forms import ORGANIZATIONS_SHOWN
from customers.models import Customer

pytestmark = pytest.mark.browser

# Sorts after every 单位NNN (远 U+8FDC > 单 U+5355), so it is not among the first 50.
FAR_DOWN = "远景物业服务有限公司"


def test_an_organisation_beyond_the_list_is_found_by_typing_and_saved_with_the_customer(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    sales_rep: User,
) -> None:
    Customer.objects.bulk_create(
        Customer(
            name=f"单位{n:03d}",
            is_organization=True,
            owner=sales_rep,
            team=sales_rep.team,
        )
        for n in range(ORGANIZATIONS_SHOWN + 5)
    )
    services.customer_create(
        by=sales_rep, data={"name": FAR_DOWN, "is_organization": True}
    )
    log_in(sales_rep)
    page.goto("/customers/new/")
    select = page.locator("select#id_organization")
    expect(select.locator("option")).to_have_count(1 + ORGANIZATIONS_SHOWN)
    expect(select.locator("option", has_text=FAR_DOWN)).to_have_count(0)

    page.get_by_test_id("organization-search").fill("远景物业")
    expect(select.locator("option", has_text=FAR_DOWN)).to_have_count(1)
    expect(select.locator("option")).to_have_count(2)  # the empty choice and it
    select.select_option(label=FAR_DOWN)
    page.locator("input#id_name").fill("王小明")
    page.screenshot(path=artifacts_dir / "organization-search.png", full_page=True)
    with page.expect_navigation():
        page.locator("form [type=submit]").last.click()

    expect(page.locator("main h1")).to_contain_text("王小明")
    page.get_by_role("tab", name="资料").click()
    expect(page.locator("main dd a", has_text=FAR_DOWN)).to_be_visible()
    page.screenshot(path=artifacts_dir / "organization-saved.png", full_page=True)
    person = Customer.objects.get(name="王小明")
    assert person.organization.name == FAR_DOWN
    assert page_problems == []
