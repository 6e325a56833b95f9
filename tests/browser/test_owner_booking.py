"""An owner on a phone (375×667) opens their personal link, books a slot, changes it
and shows the check-in QR code, in a real headless Chromium against the live server.
Screenshots go to test-artifacts/owner-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from service.handover.models import Appointment
from tests.handover.builders import make_event, slots_of
from tests.handover.owner_builders import owned_unit, scoped_event

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 667}


@pytest.fixture
def home(admin_user):
    event = make_event(admin_user, days_ahead=5, days=2, slots_per_day=3, capacity=3)
    batch = scoped_event(event)
    event.refresh_from_db()
    return owned_unit(event, batch)


def _fits_the_phone(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width}px wide on a 375px phone"


def test_owner_books_changes_and_shows_the_qr_code_on_a_phone(
    page: Page, page_problems: list[str], artifacts_dir: Path, home
) -> None:
    console_errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.set_viewport_size(PHONE)
    first, second = slots_of(home.event_unit.event)[:2]

    page.goto(f"/o/{home.token}/")
    expect(page.get_by_test_id("owner-unit")).to_contain_text("1栋2单元1502")
    expect(page.get_by_test_id("owner-holder")).to_have_text("林晓东")
    expect(page.get_by_test_id("owner-slot")).to_have_count(6)
    _fits_the_phone(page)
    page.screenshot(path=artifacts_dir / "owner-1-open.png", full_page=True)

    page.locator(f"input[name=slot][value='{first.pk}']").check()
    page.locator("input[name=party_size]").fill("2")
    with page.expect_navigation():
        page.get_by_test_id("owner-book").click()
    expect(page.get_by_test_id("owner-done")).to_contain_text("预约成功")
    expect(page.get_by_test_id("owner-booking-when")).to_contain_text(
        first.start_time.strftime("%H:%M")
    )
    _fits_the_phone(page)
    page.screenshot(path=artifacts_dir / "owner-2-booked.png", full_page=True)

    with page.expect_navigation():
        page.get_by_test_id("owner-change").click()
    page.locator(f"input[name=slot][value='{second.pk}']").check()
    with page.expect_navigation():
        page.get_by_test_id("owner-change-submit").click()
    expect(page.get_by_test_id("owner-done")).to_contain_text("改约成功")
    expect(page.get_by_test_id("owner-booking-when")).to_contain_text(
        second.start_time.strftime("%H:%M")
    )

    qr = page.get_by_test_id("owner-qr")
    qr.scroll_into_view_if_needed()
    expect(qr).to_be_visible()
    # The PNG is drawn by its own request: wait for it rather than read it at once
    # (on a loaded CI machine the <img> was visible before its bytes came).
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=owner-qr]');"
        " return i !== null && i.complete && i.naturalWidth > 0; }"
    )
    expect(page.get_by_test_id("owner-code")).to_be_visible()
    _fits_the_phone(page)
    page.screenshot(path=artifacts_dir / "owner-3-changed-qr.png", full_page=True)

    appointment = Appointment.objects.active().get(event_unit=home.event_unit)
    assert appointment.slot_id == second.pk
    assert appointment.channel == Appointment.Channel.OWNER_LINK
    assert page_problems == []
    assert console_errors == []
