"""Headless Debian Chromium driven by Playwright for Python, against pytest-django's
live_server. No browser is ever downloaded: Playwright only launches /usr/bin/chromium.

Without that binary the browser tests skip, unless KEHU_REQUIRE_BROWSER=1 (as in
.ci/run), where a missing browser is a failure rather than a quiet skip.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from pytest_django.live_server_helper import LiveServer

from crm.accounts.models import User

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts, which
# this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
# What tests.factories.UserFactory sets for every user.
PASSWORD = "pw-for-tests-123"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("KEHU_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"{reason} (KEHU_REQUIRE_BROWSER=1 forbids skipping)", pytrace=False
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.when == "call":
        item.kehu_call_failed = report.failed
    return report


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One browser per module; each test gets its own context (cookies).

    Module scope, so the event loop and the setting below end with the browser tests
    instead of lasting into the rest of the run.
    """
    if not CHROMIUM.exists():
        _unavailable(
            f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk "
            "(Playwright's own browser download cannot work here)"
        )

    # Playwright's sync API keeps an asyncio loop running in this thread, so Django
    # would refuse ORM calls from the test (factories, assertions) as "async unsafe".
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page_problems() -> list[str]:
    """Uncaught script errors and failed static assets seen by `page`."""
    return []


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    chromium: Browser,
    live_server: LiveServer,
    artifacts_dir: Path,
    page_problems: list[str],
) -> Iterator[Page]:
    """A fresh page as a Chinese user's browser sends it (zh-CN, Beijing time).

    When the test fails, the page as it was is saved to test-artifacts/FAILED-*.png.
    """
    context = chromium.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda error: page_problems.append(f"script error: {error}"))
    page.on(
        "response",
        lambda response: (
            page_problems.append(f"{response.status} {response.url}")
            if "/static/" in response.url and response.status >= 400
            else None
        ),
    )
    try:
        yield page
        if getattr(request.node, "kehu_call_failed", False):
            name = re.sub(r"[^\w.-]+", "_", request.node.name, flags=re.ASCII)
            with contextlib.suppress(PlaywrightError):
                page.screenshot(path=artifacts_dir / f"FAILED-{name}.png")
    finally:
        context.close()


@pytest.fixture
def log_in(page: Page) -> Callable[[User], Page]:
    """Log in through the real login form, as a person would."""

    def _log_in(user: User) -> Page:
        page.goto("/accounts/login/")
        form = page.locator("main form")
        form.locator("input[name=username]").fill(user.username)
        form.locator("input[name=password]").fill(PASSWORD)
        with page.expect_navigation():
            form.locator("[type=submit]").click()
        return page

    return _log_in
