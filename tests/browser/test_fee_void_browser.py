"""In a real browser: a clerk voids a wrong fee line on the case page (htmx panel) and
enters the right one; the owner's signature shows as an image loaded through the
access-checked view; a manager adds a station and deletes it behind the confirmation
page. Screenshots go to test-artifacts/fee-void-*.png and station-*.png."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from service.handover import captures
from service.handover.models import FeePayment, StationDefinition
from tests.handover.outcome_builders import make_case, sign

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_void_a_fee_line_and_see_the_signature(
    page: Page, page_problems: list[str], log_in, admin_user, artifacts_dir: Path
):
    case = make_case(admin_user)
    sign(case)
    captures.fee_add(
        case, by=admin_user, item="property_fee", amount=Decimal("3600"), method="pos"
    )
    wrong = captures.fee_add(
        case, by=admin_user, item="other", amount=Decimal("999"), method="cash"
    )
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(admin_user)
    page.goto(f"/handover/cases/{case.pk}/outcome/")
    fees = page.get_by_test_id("capture-fees")
    expect(page.get_by_test_id("fee-total")).to_have_text("4599.00")
    row = fees.get_by_test_id("fee-line").filter(has_text="999.00")
    row.get_by_text("作废", exact=True).click()
    row.get_by_label("作废原因（作废后请重新录入正确的收费）").fill("金额录错")
    page.screenshot(path=artifacts_dir / "fee-void-form.png", full_page=True)
    row.get_by_role("button", name="确认作废").click()
    expect(page.get_by_test_id("fee-total")).to_have_text("3600.00")
    expect(page.get_by_test_id("fee-line")).to_have_count(1)
    assert FeePayment.objects.get(pk=wrong.pk).void_reason == "金额录错"
    image = page.get_by_test_id("signature-image")
    image.scroll_into_view_if_needed()
    expect(image).to_be_visible()
    width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
    assert width == 300  # the PNG came through the view
    page.screenshot(path=artifacts_dir / "fee-void-done.png", full_page=True)
    assert not page_problems


def test_add_then_delete_a_station(
    page: Page, page_problems: list[str], log_in, admin_user, artifacts_dir: Path
):
    case = make_case(admin_user)
    event = case.event
    log_in(admin_user)
    page.goto(f"/handover/events/{event.pk}/stations/")
    add = page.get_by_test_id("station-add")
    add.get_by_label("站点类型").select_option("title")
    add.get_by_label("名称").fill("交房即办证")
    add.get_by_label("顺序").fill("100")
    add.get_by_role("button", name="添加站点").click()
    expect(page.get_by_text("已添加站点“交房即办证”。")).to_be_visible()
    title = StationDefinition.objects.get(event=event, code="title")
    page.screenshot(path=artifacts_dir / "station-added.png", full_page=True)
    page.goto(f"/handover/events/{event.pk}/stations/{title.pk}/delete/")
    page.screenshot(path=artifacts_dir / "station-delete.png", full_page=True)
    page.get_by_role("button", name="确认删除").click()
    expect(page.get_by_text("已删除站点“交房即办证”。")).to_be_visible()
    assert not StationDefinition.objects.filter(pk=title.pk).exists()
    # A station with visits: the page says why it stays.
    fees = StationDefinition.objects.get(event=event, code="fees")
    page.goto(f"/handover/events/{event.pk}/stations/{fees.pk}/delete/")
    expect(page.get_by_test_id("delete-refused")).to_contain_text("不能删除")
    page.screenshot(path=artifacts_dir / "station-delete-refused.png", full_page=True)
    assert not page_problems
