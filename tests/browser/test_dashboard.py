"""The manager's home is the dashboard: in a real Chromium the charts render (a canvas
each) and a click on a bar of the pipeline chart opens the customers behind it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from culture.dashboards import rollups
from tests.dashboards import conftest as dashboards
from tests.dashboards.conftest import make_deal, pay
from tests.factories import ContactLogFactory, CustomerFactory, FollowUpFactory

pytestmark = pytest.mark.browser
# Also kept where the team reviews screenshots, besides test-artifacts/.
SHOTS = Path("/tmp/kehu-notes/shots/h3")  # noqa: S108 - a review folder, not a temp file


stages = dashboards.stages  # the fixture


@pytest.fixture
def department(sales_rep, teammate, stages):
    now = timezone.now()
    today = timezone.localdate()
    key = CustomerFactory(
        name="华东置业集团",
        owner=sales_rep,
        tier="A",
        last_contacted_at=now - timedelta(days=2),
    )
    ContactLogFactory(customer=key, occurred_at=now - timedelta(days=2))
    for n, (owner, stage) in enumerate(
        [(sales_rep, "subscribe"), (teammate, "pledge"), (teammate, "visit")]
    ):
        customer = CustomerFactory(name=f"意向客户{n}", owner=owner, tier="B")
        make_deal(customer, amount=f"{(n + 2) * 1000000}", stage=stage)
        FollowUpFactory(
            customer=customer,
            due_at=now - timedelta(days=n + 1),
            status="done",
            done_at=now - timedelta(days=n + 1, hours=-n),
        )
    won = make_deal(key, amount="3000000", stage="sign", status="won", closed_on=today)
    pay(won, "900000", today)
    rollups.rebuild()


def _click_bar(page: Page, chart: str, series: int, index: int) -> None:
    """Click the centre of one bar, found through the chart's own coordinates."""
    box = page.locator(f'[data-chart="{chart}"]').bounding_box()
    x, y = page.evaluate(
        """([chart, series, index]) => {
            const el = document.querySelector(`[data-chart="${chart}"]`);
            const instance = window.echarts.getInstanceByDom(el);
            const option = instance.getOption();
            const value = option.series[series].data[index].value;
            const [px, py] = instance.convertToPixel({seriesIndex: series}, [index, value]);
            const [, base] = instance.convertToPixel({seriesIndex: series}, [index, 0]);
            // Two bars share a category: the first sits left of its centre.
            const [next] = instance.convertToPixel({seriesIndex: series}, [index - 1, 0]);
            const shift = (px - next) * 0.2 * (series === 0 ? -1 : 1);
            return [px + shift, (py + base) / 2];
        }""",
        [chart, series, index],
    )
    page.mouse.click(box["x"] + x, box["y"] + y)


def test_manager_home_dashboard_renders_and_drills_down(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    manager: User,
    department: None,
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    log_in(manager)

    expect(page.get_by_test_id("manager-dashboard")).to_be_visible()
    charts = page.locator(".kehu-chart canvas")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 5
    expect(page.locator("[data-freshness]").first).to_contain_text("数据更新于")
    page.screenshot(path=SHOTS / "browser-manager-home.png", full_page=True)

    # The pipeline's bars, in stage order: 来访, 认筹, 认购 — click 认购's amount.
    with page.expect_navigation():
        _click_bar(page, "chart-pipeline", 0, 2)
    expect(page.get_by_test_id("drill-title")).to_contain_text("认购")
    expect(page.get_by_test_id("drill-customers")).to_contain_text("意向客户0")
    page.screenshot(path=SHOTS / "browser-drill-pipeline.png", full_page=True)
    assert page_problems == []
