"""The value page and a segment dashboard in a real Chromium: the ECharts canvases
render, a drill-down opens, and each page is photographed for review
(test-artifacts/value-*.png, and the folder KEHU_SHOTS names)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from culture.deals.models import Payment
from culture.segments import services as segment_services
from culture.value import rollups, segment_dashboard, services
from customers.models import Customer
from tests.factories import ContactLogFactory, CustomerFactory, DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# A second copy of the photographs for review, when KEHU_SHOTS names a folder.
SHOTS = Path(os.environ["KEHU_SHOTS"]) if os.environ.get("KEHU_SHOTS") else None
NAMES = [
    "华东建材",
    "龙湖置业",
    "滨江经销",
    "明月地产",
    "星河代理",
    "远景装饰",
    "海岸家居",
]


def _shoot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=artifacts / f"value-{name}.png", full_page=True)
    if SHOTS is not None and SHOTS.is_dir():
        page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def _world(manager: User, sales_rep: User) -> int:
    rng = random.Random(14)
    today = timezone.localdate()
    dealers = [
        CustomerFactory(owner=sales_rep, name=f"{n}有限公司", kind=Customer.Kind.DEALER)
        for n in NAMES[:3]
    ]
    people = [CustomerFactory(owner=sales_rep) for _ in range(40)]
    for i, customer in enumerate(people):
        # A few big buyers, many small ones, some with nothing: a Pareto shape.
        for months_ago in range(0, 14, rng.choice([1, 2, 3, 6])):
            if rng.random() < 0.5:
                continue
            amount = Decimal(
                rng.choice([3_000_000, 1_200_000])
                if i < 4
                else rng.randint(20_000, 400_000)
            )
            day = today - timedelta(days=30 * months_ago + rng.randint(0, 20))
            channel = dealers[i % 3] if i % 4 == 0 else None
            deal = DealFactory(customer=customer, channel=channel, owner=sales_rep)
            Payment.objects.create(
                deal=deal,
                customer=customer,
                channel=channel,
                amount=amount,
                received_on=day,
            )
        for _k in range(rng.randint(0, 6)):
            ContactLogFactory(
                customer=customer,
                author=sales_rep,
                occurred_at=timezone.now() - timedelta(days=rng.randint(0, 80)),
            )
    rollups.revenue_rebuild()
    services.rfm_compute()
    services.tiers_assign()
    segment = segment_services.segment_create(
        by=manager,
        data={"name": "华东重点客户", "kind": "static", "visibility": "department"},
    )
    # Members joined in three waves over the last 80 days; four left a month ago.
    for days_ago, wave in ((80, people[:15]), (50, people[15:22]), (20, people[22:28])):
        with time_machine.travel(timezone.now() - timedelta(days=days_ago)):
            segment_services.static_members_add(
                by=manager,
                segment=segment,
                customers=Customer.objects.filter(pk__in=[c.pk for c in wave]),
            )
    with time_machine.travel(timezone.now() - timedelta(days=30)):
        segment_services.static_members_remove(
            by=manager, segment=segment, customer_ids=[c.pk for c in people[3:7]]
        )
    segment_dashboard.snapshot_compute(segment_id=segment.pk, days=90)
    return segment.pk


def test_manager_sees_value_charts_and_a_segment_dashboard(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    manager: User,
    sales_rep: User,
) -> None:
    segment_id = _world(manager, sales_rep)
    log_in(manager)
    page.goto(reverse("value:overview") + "?kind=year")
    expect(page.locator("[data-chart=pareto-chart] canvas").first).to_be_visible()
    expect(page.locator("[data-chart=rfm-chart] canvas").first).to_be_visible()
    expect(page.get_by_test_id("top-share")).not_to_have_text("—")
    expect(page.get_by_test_id("freshness").first).to_contain_text("数据更新于")
    page.wait_for_timeout(600)  # the charts' entry animation
    _shoot(page, artifacts_dir, "overview")

    page.get_by_test_id("core-all").click()
    expect(page.get_by_test_id("value-rows")).to_be_visible()
    _shoot(page, artifacts_dir, "core-list")

    page.goto(reverse("value:rfm_cell", args=[5, 5]))
    _shoot(page, artifacts_dir, "rfm-cell")

    page.goto(reverse("segment_dashboard:dashboard", args=[segment_id]))
    for chart in ("segment-size", "segment-revenue", "segment-service"):
        expect(page.locator(f"[data-chart={chart}] canvas").first).to_be_visible()
    expect(page.get_by_test_id("segment-figures")).to_contain_text("24")
    page.wait_for_timeout(600)
    _shoot(page, artifacts_dir, "segment-dashboard")
    assert page_problems == []
