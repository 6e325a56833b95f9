"""Issue 17's "done when", in a real browser: an owner is checked in by the booking's QR
code and taken through every station to the keys and the acceptance signature on a
phone-sized screen (375×667), with two defects recorded at the joint inspection; the
defects appear on the contractor's link page and on the live board, which a manager
keeps open in a second browser and which updates without a reload; the acceptance
form (验房交接单) downloads as a PDF with Chinese text, the signature and the meter
readings (read back with pypdf; page 1 rendered to PNG where pdftoppm exists).
Screenshots go to test-artifacts/day-*.png."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import time_machine
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from crm.accounts.models import User
from service.defects import services as defect_services
from service.defects.models import Defect
from service.handover import checkin_codes
from service.handover.models import (
    MeterReading,
    StationDefinition,
    StationVisit,
    UnitHandover,
)
from tests.browser.conftest import PASSWORD
from tests.defects.builders import JPEG, contractor
from tests.handover.checkin_builders import at, booked_event, day_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHOTO = {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": JPEG}
PHONE = {"width": 375, "height": 667}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _shot(page: Page, artifacts_dir: Path, name: str) -> None:
    page.screenshot(path=artifacts_dir / f"day-{name}.png", full_page=True)


def _board_page(chromium: Browser, base_url: str, manager: User) -> Page:
    """A manager's own browser (its own cookies) with the event's board open."""
    context = chromium.new_context(
        base_url=base_url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(20_000)
    board = context.new_page()
    board.goto("/accounts/login/")
    form = board.locator("main form")
    form.locator("input[name=username]").fill(manager.username)
    form.locator("input[name=password]").fill(PASSWORD)
    with board.expect_navigation():
        form.locator("[type=submit]").click()
    return board


def _serve(
    page: Page,
    event_id: int,
    station: StationDefinition,
    capture: Callable[[], None] | None = None,
) -> None:
    """At the station's page: call the owner, start, record what the station records,
    finish — all through htmx on the one page."""
    page.goto(f"/handover/events/{event_id}/stations/{station.pk}/")
    page.get_by_test_id("call-next").click()
    called = page.locator("[data-testid^=visit-][data-state=called]")
    expect(called).to_have_count(1)
    called.get_by_test_id("start").click()
    serving = page.locator("[data-testid^=visit-][data-state=in_service]")
    expect(serving).to_have_count(1)
    if capture is not None:
        capture()
    page.locator("[data-state=in_service]").get_by_test_id("finish").click()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()


def _record_defect(page: Page, trade: str, part: str, text: str, fixer) -> None:
    form = page.get_by_test_id("defect-record-form")
    form.get_by_label("位置").select_option("bathroom")
    with page.expect_response(lambda r: "categories/options" in r.url):
        form.get_by_label("专业").select_option(label=trade)
    with page.expect_response(lambda r: "categories/options" in r.url):
        form.get_by_label("部位").select_option(label=part)
    form.get_by_label("问题", exact=True).select_option(index=1)
    form.get_by_label("问题描述").fill(text)
    form.get_by_label("问题照片").set_input_files(PHOTO)
    form.get_by_label("责任单位").select_option(label=fixer.name)
    with page.expect_navigation():
        form.get_by_role("button", name="保存", exact=True).click()
    expect(page.get_by_test_id("defect-state")).to_have_text("待接单")


def _sign(page: Page) -> None:
    pad = page.locator("canvas[data-signature-pad]")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 15, box["y"] + 40)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(box["x"] + 15 + step * 9, box["y"] + 40 + (step % 5) * 12)
    page.mouse.up()
    page.get_by_test_id("capture-acceptance").get_by_role(
        "button", name="保存签名"
    ).click()
    expect(page.get_by_test_id("signature-recorded")).to_be_visible()


def test_an_owner_from_the_door_to_the_keys_with_two_defects_live_on_the_board(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    chromium: Browser,
    live_server,
    settings,
    admin_user: User,
    manager: User,
    service_agent: User,
    artifacts_dir: Path,
) -> None:
    settings.KEHU_PUBLIC_URL = live_server.url
    event, rows = booked_event(admin_user, units=1)
    appointment = rows[0][2]
    fixer = contractor()
    page.set_viewport_size(PHONE)
    with time_machine.travel(at(day_of(event), 9, 5)):
        # The manager's board, open before the first owner arrives.
        board = _board_page(chromium, live_server.url, manager)
        board.goto(f"/handover/events/{event.pk}/board/")
        figures = board.get_by_test_id("board-live")
        expect(figures.locator("[data-figure=arrived]")).to_have_text("0")
        expect(figures.locator("[data-figure=defects_open]")).to_have_text("0")
        # A reload or a navigation would lose this mark.
        board.evaluate("window.kehuBoardMark = 'still here'")

        # 1. The desk: the owner's QR code (the scanner types it), ID checked.
        log_in(service_agent)
        page.goto(f"/handover/events/{event.pk}/onsite/check-in/")
        code = page.get_by_label("签到码、房号或业主电话")
        code.fill(checkin_codes.code_for(appointment.pk))
        code.press("Enter")
        expect(page.get_by_test_id("onsite-appointment")).to_be_visible()
        page.get_by_label("已核验身份证件").check()
        _shot(page, artifacts_dir, "1-check-in")
        with page.expect_navigation():
            page.get_by_test_id("onsite-check-in").click()
        expect(page.get_by_test_id("queue-number")).to_have_text("1")
        case = UnitHandover.objects.get(appointment=appointment)
        # The board counts the arrival by itself (its figures poll every few seconds).
        expect(figures.locator("[data-figure=arrived]")).to_have_text("1")
        expect(figures.locator("[data-figure=checked_in]")).to_have_text("1")

        stations = {s.code: s for s in StationDefinition.objects.filter(event=event)}
        Code = StationDefinition.Code

        # 2. Every station, in an order the gates allow.
        _serve(page, event.pk, stations[Code.DOCUMENTS])
        expect(figures.locator("[data-figure=in_progress]")).to_have_text("1")

        def settle() -> None:
            panel = page.get_by_test_id("capture-settlement")
            panel.get_by_label("面积补差金额（元）").fill("1280")
            panel.get_by_role("button", name="保存", exact=True).click()
            expect(page.get_by_test_id("settlement-amount")).to_contain_text("1280")

        _serve(page, event.pk, stations[Code.SETTLEMENT], settle)

        def pay() -> None:
            fees = page.get_by_test_id("capture-fees")
            fees.get_by_label("费用项").select_option("property_fee")
            fees.get_by_label("金额（元）").fill("3600")
            fees.get_by_label("支付方式").select_option("wechat")
            fees.get_by_role("button", name="添加收费").click()
            expect(page.get_by_test_id("fee-total")).to_have_text("3600.00")

        _serve(page, event.pk, stations[Code.FEES], pay)
        _serve(page, event.pk, stations[Code.SIGNING])

        def inspect() -> None:
            # Two defects on the phone, from the inspection station's 记录问题.
            for trade, part, text in (
                ("防水", "卫生间", "淋浴区墙角渗水"),
                ("门窗", "窗户", "主卧窗台渗水"),
            ):
                page.get_by_test_id("record-defect").first.click()
                page.wait_for_url("**/defects/**")
                if trade == "防水":
                    _shot(page, artifacts_dir, "2-defect-form")
                _record_defect(page, trade, part, text, fixer)
                page.goto(f"/handover/events/{event.pk}/stations/{inspection.pk}/")
            _shot(page, artifacts_dir, "3-inspection")

        inspection = stations[Code.INSPECTION]
        _serve(page, event.pk, inspection, inspect)
        assert Defect.objects.filter(case=case).count() == 2
        expect(figures.locator("[data-figure=defects_open]")).to_have_text("2")

        def read_meters() -> None:
            panel = page.get_by_test_id("capture-meters")
            panel.get_by_label("水表读数", exact=True).fill("3.25")
            panel.get_by_label("电表读数", exact=True).fill("18.6")
            panel.get_by_label("燃气表读数", exact=True).fill("0.75")
            panel.get_by_role("button", name="保存读数").click()
            expect(page.get_by_test_id("meter-recorded")).to_have_count(3)

        _serve(page, event.pk, stations[Code.METERS], read_meters)

        def hand_keys() -> None:
            keys = page.get_by_test_id("capture-keys")
            keys.get_by_label("交业主").check()
            keys.get_by_label("入户门钥匙").fill("2")
            keys.get_by_role("button", name="登记钥匙").click()
            expect(page.get_by_test_id("keys-recorded")).to_contain_text("入户门钥匙×2")

        _serve(page, event.pk, stations[Code.KEYS], hand_keys)

        def sign() -> None:
            _sign(page)
            _shot(page, artifacts_dir, "4-signed")

        _serve(page, event.pk, stations[Code.ACCEPTANCE], sign)

        # 3. 带问题收楼: two open defects.
        page.goto(f"/handover/cases/{case.pk}/outcome/")
        page.get_by_test_id("outcome-accept-defects").click()
        expect(page.get_by_test_id("case-state")).to_have_text("带问题收楼")
        _shot(page, artifacts_dir, "5-accepted")
        expect(figures.locator("[data-figure=accepted_defects]")).to_have_text("1")
        expect(figures.locator("[data-figure=fees]")).to_have_text("3600")
        board.screenshot(path=artifacts_dir / "day-6-board.png", full_page=True)
        assert board.evaluate("window.kehuBoardMark") == "still here"

        # 4. The acceptance form, from the outcome panel's link.
        with page.expect_download() as download:
            page.get_by_test_id("acceptance-form-pdf").click()
        pdf = artifacts_dir / "day-acceptance-form.pdf"
        download.value.save_as(pdf)

    # The contractor's link: both items, no login (a fresh browser).
    contractor_page = chromium.new_page(viewport=PHONE, locale="zh-CN")
    contractor_page.goto(defect_services.contractor_url(fixer))
    items = contractor_page.get_by_test_id("contractor-item")
    expect(items).to_have_count(2)
    expect(items.filter(has_text="淋浴区墙角渗水")).to_have_count(1)
    expect(items.filter(has_text="主卧窗台渗水")).to_have_count(1)
    contractor_page.screenshot(
        path=artifacts_dir / "day-7-contractor.png", full_page=True
    )
    contractor_page.close()
    board.context.close()

    reader = PdfReader(io.BytesIO(pdf.read_bytes()))
    text = "".join(p.extract_text() for p in reader.pages)
    (artifacts_dir / "day-acceptance-form.txt").write_text(text)
    assert "验房交接单" in text.replace(" ", "")  # the title is letter-spaced
    assert "签收签名" in text and "水表" in text
    assert "入户门钥匙" in text and "entrance" not in text  # the item, not its code
    for reading in ("3.25", "18.6", "0.75"):
        assert reading in text, reading
    assert "淋浴区墙角渗水" in text and "主卧窗台渗水" in text
    images = [image for p in reader.pages for image in p.images]
    assert images, "the signature image is in the PDF"
    if shutil.which("pdftoppm"):  # poppler-utils: a picture of page 1 to look at
        subprocess.run(  # noqa: S603 - fixed arguments
            [
                "pdftoppm",
                "-png",
                "-r",
                "80",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(pdf),
                str(artifacts_dir / "day-acceptance-form"),
            ],
            check=True,
            timeout=60,
        )

    case.refresh_from_db()
    assert case.state == UnitHandover.State.ACCEPTED_WITH_DEFECTS
    assert set(
        StationVisit.objects.filter(case=case).values_list("station__code", "state")
    ) >= {
        (Code.IDENTITY, "skipped"),
        (Code.INSPECTION, "done"),
        (Code.KEYS, "done"),
        (Code.ACCEPTANCE, "done"),
    }
    assert MeterReading.objects.filter(case=case).count() == 3
    assert page_problems == []
