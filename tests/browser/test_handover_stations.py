"""入伙 on the day in a real browser on a phone-sized screen (375×667): the desk checks
an owner in by the booking's QR code, the documents station calls the next owner,
starts and finishes with htmx (no reload), and the gated stations open on the route
sheet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import time_machine
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from service.handover import checkin_codes
from service.handover.models import StationDefinition, StationVisit, UnitHandover
from tests.handover.checkin_builders import at, booked_event, day_of

pytestmark = pytest.mark.django_db(transaction=True)


def _shot(page: Page, artifacts_dir: Path, name: str) -> None:
    page.screenshot(path=artifacts_dir / f"stations-{name}.png", full_page=True)


def test_check_in_by_qr_code_and_a_station_on_a_phone(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    admin_user: User,
    service_agent: User,
    artifacts_dir: Path,
) -> None:
    event, rows = booked_event(admin_user, units=2)
    appointment = rows[0][2]
    page.set_viewport_size({"width": 375, "height": 667})
    with time_machine.travel(at(day_of(event), 9, 5)):
        log_in(service_agent)
        page.goto(f"/handover/events/{event.pk}/onsite/check-in/")
        page.get_by_label("签到码、房号或业主电话").fill(
            checkin_codes.code_for(appointment.pk)
        )
        page.get_by_label("签到码、房号或业主电话").press("Enter")
        expect(page.get_by_test_id("onsite-appointment")).to_be_visible()
        page.get_by_label("已核验身份证件").check()
        _shot(page, artifacts_dir, "1-desk")
        with page.expect_navigation():
            page.get_by_test_id("onsite-check-in").click()
        expect(page.get_by_test_id("queue-number")).to_have_text("1")
        case = UnitHandover.objects.get(appointment=appointment)
        _shot(page, artifacts_dir, "2-case")

        docs = StationDefinition.objects.get(event=event, code="documents")
        page.goto(f"/handover/events/{event.pk}/stations/{docs.pk}/")
        page.get_by_test_id("call-next").click()
        row = page.locator("[data-testid^=visit-][data-state=called]")
        expect(row).to_have_count(1)
        _shot(page, artifacts_dir, "3-called")
        row.get_by_test_id("start").click()
        expect(page.locator("[data-state=in_service]")).to_have_count(1)
        page.locator("[data-state=in_service]").get_by_test_id("finish").click()
        expect(page.get_by_test_id("queue-empty")).to_be_visible()
        _shot(page, artifacts_dir, "4-station-done")

        visit = StationVisit.objects.get(case=case, station=docs)
        assert visit.state == StationVisit.State.DONE
        case.refresh_from_db()
        assert case.state == UnitHandover.State.IN_PROGRESS
        page.goto(f"/handover/cases/{case.pk}/")
        expect(page.get_by_test_id("route-documents")).to_have_attribute(
            "data-state", "done"
        )
        _shot(page, artifacts_dir, "5-route-sheet")
    assert page_problems == []
