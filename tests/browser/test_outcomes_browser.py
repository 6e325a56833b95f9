"""In a real browser, on a phone-sized screen: a clerk records the keys and a fee on a
case's page (htmx panels), the owner signs on the canvas with a finger-like drag, and
the clerk records 收楼. The stored signature is a PNG. Screenshots go to
test-artifacts/outcome-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from service.handover.models import FeePayment, StationVisit, UnitHandover
from tests.handover.outcome_builders import finish_stations, make_case

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_keys_fee_signature_then_accepted(
    page: Page, page_problems: list[str], log_in, admin_user, artifacts_dir: Path
):
    case = make_case(admin_user)
    finish_stations(case, except_codes=["acceptance", "survey"])
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(admin_user)
    page.goto(f"/handover/cases/{case.pk}/outcome/")
    expect(page.get_by_test_id("outcome-blockers")).to_contain_text("尚未登记钥匙去向")

    keys = page.get_by_test_id("capture-keys")
    keys.get_by_label("交业主").check()
    keys.get_by_label("入户门钥匙").fill("2")
    keys.get_by_label("门禁卡").fill("3")
    keys.get_by_role("button", name="登记钥匙").click()
    expect(page.get_by_test_id("keys-recorded")).to_contain_text("入户门钥匙×2")

    fees = page.get_by_test_id("capture-fees")
    fees.get_by_label("费用项").select_option("property_fee")
    fees.get_by_label("金额（元）").fill("3600")
    fees.get_by_label("支付方式").select_option("wechat")
    fees.get_by_role("button", name="添加收费").click()
    expect(page.get_by_test_id("fee-total")).to_have_text("3600.00")

    pad = page.locator("canvas[data-signature-pad]")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + 40)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(box["x"] + 20 + step * 9, box["y"] + 40 + (step % 5) * 12)
    page.mouse.up()
    page.screenshot(path=artifacts_dir / "outcome-signing.png", full_page=True)
    page.get_by_test_id("capture-acceptance").get_by_role(
        "button", name="保存签名"
    ).click()
    expect(page.get_by_test_id("signature-recorded")).to_be_visible()

    # The outcome panel re-reads itself after each capture (no reload).
    expect(page.get_by_test_id("outcome-blockers")).to_have_count(0)
    page.get_by_test_id("outcome-accept").click()
    expect(page.get_by_test_id("case-state")).to_have_text("已收楼")
    page.screenshot(path=artifacts_dir / "outcome-accepted.png", full_page=True)

    case.refresh_from_db()
    assert case.state == UnitHandover.State.ACCEPTED
    assert case.key_items == {"entrance": 2, "access_card": 3}
    assert FeePayment.objects.filter(case=case).count() == 1
    with case.signature.open("rb") as stored:
        assert stored.read(8) == b"\x89PNG\r\n\x1a\n"
    assert page_problems == []


def test_the_station_pages_polling_spares_a_panel_being_filled(
    page: Page, page_problems: list[str], log_in, admin_user, artifacts_dir: Path
):
    case = make_case(admin_user)
    keys = case.visits.select_related("station").get(station__code="keys")
    StationVisit.objects.filter(pk=keys.pk).update(
        state=StationVisit.State.IN_SERVICE, started_at=timezone.now()
    )
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(admin_user)
    url = reverse("handover:station_page", args=[case.event_id, keys.station_id])
    page.goto(url)
    panel = page.get_by_test_id("capture-keys")
    panel.get_by_label("入户门钥匙").fill("4")
    # The queue's poll (every 15 s) comes now: it must not wipe the typed count.
    page.evaluate(
        "url => htmx.ajax('GET', url, {source: '#station-queue', target: '#station-queue'})",
        url,
    )
    page.wait_for_timeout(800)
    expect(panel.get_by_label("入户门钥匙")).to_have_value("4")
    panel.get_by_label("物业托管").check()
    panel.get_by_role("button", name="登记钥匙").click()
    expect(page.get_by_test_id("keys-recorded")).to_contain_text("入户门钥匙×4")
    page.screenshot(path=artifacts_dir / "outcome-station-keys.png", full_page=True)
    case.refresh_from_db()
    assert (case.key_action, case.key_items) == ("custody", {"entrance": 4})
    assert page_problems == []
