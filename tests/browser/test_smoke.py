"""Smoke tests in a real headless Chromium: each role logs in through the login form,
lands on its own home page in Chinese, switches to English, and a salesperson cannot
open another team's customer. A screenshot of each page goes to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from crm.accounts.models import User
from tests.factories import CustomerFactory

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    "persona, title",
    [
        ("sales_rep", "我的一天"),
        ("service_agent", "客服工作台"),
        ("manager", "部门概览"),
        ("admin_user", "系统管理"),
    ],
    ids=["sales", "service", "manager", "admin"],
)
def test_each_role_logs_in_to_its_chinese_home_and_switches_to_english(
    request: pytest.FixtureRequest,
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    live_server: LiveServer,
    artifacts_dir: Path,
    persona: str,
    title: str,
) -> None:
    user = request.getfixturevalue(persona)
    home = f"{live_server.url}/"

    log_in(user)

    expect(page).to_have_url(home)
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_test_id("home-title")).to_have_text(title)
    page.screenshot(path=artifacts_dir / f"home-{persona}-zh.png", full_page=True)

    switch = page.get_by_test_id("language-switch")
    with page.expect_navigation():
        switch.get_by_role("button", name="English").click()

    expect(page).to_have_url(home)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("home-title")).to_be_visible()
    page.screenshot(path=artifacts_dir / f"home-{persona}-en.png", full_page=True)
    assert page_problems == []


def test_wrong_password_stays_on_login_page(
    page: Page, sales_rep: User, live_server: LiveServer
) -> None:
    page.goto("/accounts/login/")
    form = page.locator("main form")
    form.locator("input[name=username]").fill(sales_rep.username)
    form.locator("input[name=password]").fill("not-the-password")
    with page.expect_navigation():
        form.locator("[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_test_id("home-title")).to_have_count(0)


def test_salesperson_gets_404_page_for_another_teams_customer(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    sales_rep: User,
    teammate: User,
    outsider: User,
) -> None:
    own_team = CustomerFactory(name="本组客户甲", owner=teammate)
    other_team = CustomerFactory(name="他组客户乙", owner=outsider)
    log_in(sales_rep)

    # The same page for a customer of the salesperson's own team opens, so the 404
    # below comes from the access scope, not from a broken page.
    response = page.goto(f"/customers/{own_team.pk}/")
    assert response is not None and response.status == 200
    expect(page.locator("main h1")).to_contain_text("本组客户甲")

    response = page.goto(f"/customers/{other_team.pk}/")
    assert response is not None and response.status == 404
    expect(page.locator("main h1")).to_have_text("404")
    expect(page.locator("main")).to_contain_text("找不到您要的页面或记录。")
    assert "他组客户乙" not in page.content()
    page.screenshot(path=artifacts_dir / "customer-other-team-404.png", full_page=True)
    assert page_problems == []
