"""The pipeline board in a real Chromium: a salesperson drags a deal card from 认购 to
签约 (HTML5 drag and drop, static/js/pipeline.js, htmx), sees it in the new column with
the counts and totals updated, then moves it back with the ← button (keyboard users).
The board, the deal page and the customer page are photographed
(test-artifacts/deals-*.png)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from culture.deals import services
from culture.deals.models import Deal
from tests.factories import CustomerFactory, deal_stage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("KEHU_SHOTS_DIR", "")


def _shot(page: Page, artifacts_dir: Path, name: str) -> None:
    path = artifacts_dir / f"deals-{name}.png"
    page.screenshot(path=path, full_page=True)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SHOTS) / path.name)


def test_a_deal_is_dragged_from_subscribe_to_sign(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    sales_rep: User,
) -> None:
    subscribe, sign = deal_stage("subscribe"), deal_stage("sign")
    customer = CustomerFactory(owner=sales_rep, name="王建国")
    dealer = CustomerFactory(
        owner=sales_rep, name="华东置业代理", kind="agent", is_organization=True
    )
    deal = services.deal_create(
        by=sales_rep,
        customer=customer,
        data={"title": "3号楼1201", "amount": Decimal("2860000"), "channel": dealer},
        stage=subscribe,
    )
    for title, code, amount in (
        ("5号楼302", "visit", 1_200_000),
        ("别墅B12", "pledge", 6_800_000),
        ("7号楼801", "subscribe", 1_950_000),
    ):
        services.deal_create(
            by=sales_rep,
            customer=CustomerFactory(owner=sales_rep),
            data={"title": title, "amount": amount},
            stage=deal_stage(code),
        )
    log_in(sales_rep)
    page.get_by_role("link", name="商机").first.click()
    page.get_by_test_id("board-link").click()
    source = page.get_by_test_id("column-subscribe")
    target = page.get_by_test_id("column-sign")
    expect(source.get_by_test_id("count")).to_have_text("2")
    expect(target.get_by_test_id("count")).to_have_text("0")
    _shot(page, artifacts_dir, "board-before")

    card = source.locator(f"#deal-{deal.pk}")
    card.drag_to(target.locator(".deal-drop"))

    expect(target.locator(f"#deal-{deal.pk}")).to_be_visible()
    expect(
        page.get_by_test_id("column-subscribe").locator(f"#deal-{deal.pk}")
    ).to_have_count(0)
    expect(page.get_by_test_id("column-sign").get_by_test_id("count")).to_have_text("1")
    expect(page.get_by_test_id("column-sign").get_by_test_id("total")).to_have_text(
        "¥2,860,000"
    )
    expect(
        page.get_by_test_id("column-subscribe").get_by_test_id("count")
    ).to_have_text("1")
    _shot(page, artifacts_dir, "board-after")
    deal.refresh_from_db()
    assert (deal.stage_id, deal.status) == (sign.pk, Deal.Status.WON)
    assert deal.closed_on == timezone.localdate()

    # The keyboard way back: the card's ← button.
    page.get_by_test_id("column-sign").locator(f"#deal-{deal.pk}").get_by_test_id(
        "move-back"
    ).click()
    expect(
        page.get_by_test_id("column-subscribe").locator(f"#deal-{deal.pk}")
    ).to_be_visible()
    deal.refresh_from_db()
    assert deal.stage_id == subscribe.pk and deal.status == Deal.Status.OPEN

    # The deal page and the customer page with its deals panel and timeline.
    services.payment_add(
        by=sales_rep, deal=deal, amount="860000", received_on=timezone.localdate()
    )
    page.goto(deal.get_absolute_url())
    expect(page.get_by_test_id("received")).to_have_text("¥860,000.00")
    _shot(page, artifacts_dir, "detail")
    page.goto(customer.get_absolute_url())
    expect(page.get_by_test_id("deals-panel")).to_contain_text("3号楼1201")
    expect(page.get_by_test_id("panel-lifetime-value")).to_have_text("¥860,000.00")
    _shot(page, artifacts_dir, "customer")
    page.goto(dealer.get_absolute_url())
    expect(page.get_by_test_id("channel-revenue")).to_have_text("¥860,000.00")
    page.goto("/deals/")
    _shot(page, artifacts_dir, "list")
    assert page_problems == []
