"""In a real browser, on a phone-sized screen: an inspector records two defects on a
handover case (the three category selects cascade through htmx, a photo is attached),
then the contractor opens their link without signing in, sees both items and marks one
ready with a photo. Screenshots go to test-artifacts/defects-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from service.defects import services
from service.defects.models import Defect
from tests.defects.builders import JPEG, case_for, contractor

pytestmark = pytest.mark.browser
PHOTO = {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": JPEG}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _record(page: Page, trade: str, part: str, symptom: str, text: str, fixer=None):
    form = page.get_by_test_id("defect-record-form")
    form.get_by_label("位置").select_option("bathroom")
    with page.expect_response(lambda r: "categories/options" in r.url):
        form.get_by_label("专业").select_option(label=trade)
    with page.expect_response(lambda r: "categories/options" in r.url):
        form.get_by_label("部位").select_option(label=part)
    form.get_by_label("问题", exact=True).select_option(index=1)
    expect(form.get_by_label("问题", exact=True)).to_contain_text(symptom)
    form.get_by_label("问题描述").fill(text)
    form.get_by_label("问题照片").set_input_files(PHOTO)
    if fixer is not None:
        form.get_by_label("责任单位").select_option(label=fixer.name)
    with page.expect_navigation():
        form.get_by_role("button", name="保存", exact=True).click()


def test_two_defects_on_a_phone_then_the_contractor_marks_one_ready(
    page: Page,
    page_problems: list[str],
    log_in,
    service_agent,
    admin_user,
    artifacts_dir: Path,
    live_server,
    settings,
):
    settings.KEHU_PUBLIC_URL = live_server.url
    case = case_for(admin_user)
    fixer = contractor()
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(service_agent)
    page.goto(reverse("defects:record", args=[case.pk]))
    page.screenshot(path=artifacts_dir / "defects-record.png", full_page=True)
    _record(page, "防水", "卫生间", "渗漏", "淋浴区墙角渗水", fixer)
    expect(page.get_by_test_id("defect-state")).to_have_text("待接单")
    expect(page.get_by_test_id("defect-photos")).to_be_visible()
    page.goto(reverse("defects:record", args=[case.pk]))
    _record(page, "门窗", "窗户", "渗水", "主卧窗台渗水", fixer)
    page.screenshot(path=artifacts_dir / "defects-detail.png", full_page=True)
    assert Defect.objects.filter(case=case).count() == 2
    assert set(Defect.objects.values_list("severity", flat=True)) == {"P0", "P1"}

    # The contractor: no account, their link on a phone.
    contractor_page = page.context.browser.new_page(
        viewport={"width": 390, "height": 844}, locale="zh-CN"
    )
    contractor_page.goto(services.contractor_url(fixer))
    items = contractor_page.get_by_test_id("contractor-item")
    expect(items).to_have_count(2)
    first = items.filter(has_text="淋浴区墙角渗水")
    first.locator("input[type=file]").set_input_files(PHOTO)
    with contractor_page.expect_navigation():
        first.get_by_role("button", name="已整改，拍照提交").click()
    expect(contractor_page.get_by_text("已提交整改完成，等待复验。")).to_be_visible()
    expect(
        contractor_page.get_by_test_id("contractor-item")
        .filter(has_text="淋浴区墙角渗水")
        .get_by_test_id("defect-state")
    ).to_have_text("待复验")
    contractor_page.screenshot(
        path=artifacts_dir / "defects-contractor.png", full_page=True
    )
    contractor_page.close()
    assert not page_problems
