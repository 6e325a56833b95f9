"""Issue 15's main flow in a real browser, on 150 units instead of 1,000 (the same
path; tests/browser/test_property_import.py imports the full 1,000):

an admin imports units with owners (three bad rows reported), makes an event of the
project, puts the units in scope, makes two batches with their windows and slots,
publishes, and sends the notices by SMS: the progress bar moves chunk by chunk and the
development SMS backend records one message per owner. 交付准备 shows the numbers and
the call list the owners not booked yet. An owner opens the link from their SMS on a
375×667 phone, books, changes the slot and sees the QR code; the unit then counts as
booked and leaves the call list.

The import's and the notice run's tasks are run here, not by a worker: the import's
inline (as test_property_import.py does), the run's one chunk at a time, so that the
page's poll can be seen moving. Screenshots go to test-artifacts/before-the-day-*.png
(and KEHU_SHOTS_DIR when set).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from crm.accounts.models import User
from crm.channels.backends import RecordingSmsBackend
from crm.scheduler import services as scheduler
from customers import tasks as customer_tasks
from service.handover import notices
from service.handover import tasks as handover_tasks
from service.handover.models import Appointment, HandoverEvent, NoticeRun
from tests.property.test_import import HEADER, row

pytestmark = pytest.mark.browser

# 3 buildings × 25 floors × 2 rooms; 3 rows are bad. The issue's own size (1,000 good
# rows: KEHU_FLOW_UNITS=1003) runs by hand; CI keeps to 150 for time.
UNITS = int(os.environ.get("KEHU_FLOW_UNITS", "150"))
CHUNK = 50
SHOTS = Path(os.environ["KEHU_SHOTS_DIR"]) if os.environ.get("KEHU_SHOTS_DIR") else None


def _shot(page: Page, artifacts_dir: Path, name: str) -> None:
    page.screenshot(path=artifacts_dir / f"before-the-day-{name}.png", full_page=True)
    if SHOTS:
        page.screenshot(path=SHOTS / f"before-the-day-{name}.png", full_page=True)


@pytest.fixture
def queued_runs(monkeypatch, settings, tmp_path) -> list[int]:
    """The import's tasks run where they are queued; the notice run's task is only
    noted (the test advances the run itself), so is the scheduled-action publish."""
    settings.KEHU_IMPORT_PAUSE_RATIO = 0
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KEHU_SMS_FILE_PATH = str(tmp_path / "sms")
    for task in (
        customer_tasks.import_job_validate_task,
        customer_tasks.import_job_execute_task,
    ):
        monkeypatch.setattr(task, "delay", lambda job_id, task=task: task(job_id))
    queued: list[int] = []
    monkeypatch.setattr(handover_tasks.notice_run_advance_task, "delay", queued.append)
    monkeypatch.setattr(scheduler, "_publish", lambda ids, lease_until: None)
    monkeypatch.setattr(notices, "CHUNK", CHUNK)
    return queued


def _units_file(tmp_path: Path) -> Path:
    rows = [HEADER]
    for n in range(UNITS):
        building, rest = divmod(n, 50)
        floor, position = divmod(rest, 2)
        rows.append(
            row(
                f"{floor + 1}{position + 1:02d}",
                name=f"业主{n:03d}",
                phone=f"1390015{n:04d}",
                **{
                    "项目编码": "LH",
                    "项目名称": "蓝海花园",
                    "楼栋": str(building + 1),
                    "单元": "1",
                    "购房合同号": f"LH-{n:03d}",
                },
            )
        )
    rows[5][HEADER.index("业主电话")] = "12345"
    rows[60][HEADER.index("房号")] = ""
    rows[120][HEADER.index("合同面积")] = "九十"
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    path = tmp_path / "蓝海花园房间业主.csv"
    path.write_bytes(text.getvalue().encode("gbk"))
    return path


def _local(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _deliver_due() -> int:
    """Sweep as beat would and deliver as a worker would."""
    delivered = 0
    while ids := scheduler.actions_sweep():
        delivered += sum(bool(scheduler.action_deliver(action_id=pk)) for pk in ids)
    return delivered


def _import(page: Page, artifacts_dir: Path, tmp_path: Path) -> None:
    page.goto("/property/")
    page.get_by_test_id("import-units").first.click()
    page.locator("input[type=file]").set_input_files(_units_file(tmp_path))
    with page.expect_navigation():
        page.get_by_role("button", name="上传并校验").click()
    expect(page.get_by_test_id("valid-rows")).to_have_text(str(UNITS - 3))
    expect(page.get_by_test_id("invalid-rows")).to_have_text("3")
    expect(page.get_by_test_id("problem-rows")).to_contain_text("不是有效的电话号码")
    expect(page.get_by_test_id("problem-rows")).to_contain_text("缺少房号")
    _shot(page, artifacts_dir, "1-import-preview")
    page.get_by_test_id("import-valid").click()
    expect(page.get_by_test_id("import-done")).to_contain_text(
        f"已导入 {UNITS - 3} 条房间"
    )


def _event(page: Page, start: dt.date) -> HandoverEvent:
    page.goto("/handover/events/new/")
    page.get_by_label("名称").fill("蓝海花园集中交付")
    page.get_by_label("楼盘").select_option(label="蓝海花园")
    page.get_by_label("项目").fill("蓝海花园")
    page.get_by_label("交付地点").fill("蓝海花园会所")
    page.get_by_label("开始日期").fill(start.isoformat())
    page.get_by_label("结束日期").fill((start + dt.timedelta(days=1)).isoformat())
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_text("活动已创建")).to_be_visible()
    return HandoverEvent.objects.get(name="蓝海花园集中交付")


def _scope_and_batches(page: Page, event: HandoverEvent, artifacts_dir: Path) -> None:
    page.goto(f"/handover/events/{event.pk}/scope/")
    page.get_by_role("link", name="加入房间").first.click()
    page.get_by_role("button", name="加入交付范围").click()
    expect(page.get_by_text(f"已将 {UNITS - 3} 个房间加入交付范围")).to_be_visible()
    opens = timezone.now() - dt.timedelta(hours=1)
    closes = timezone.make_aware(
        dt.datetime.combine(event.start_date - dt.timedelta(days=1), dt.time(18))
    )
    for n, (name, buildings) in enumerate(
        (("第一批", ("1栋", "2栋")), ("第二批", ("3栋",)))
    ):
        page.goto(f"/handover/events/{event.pk}/batches/new/")
        page.get_by_label("批次名称").fill(name)
        page.get_by_label("开放预约").fill(_local(opens))
        page.get_by_label("截止预约").fill(_local(closes))
        page.get_by_role("button", name="保存").click()
        expect(page.get_by_text("批次已保存")).to_be_visible()
        batch = event.batches.get(name=name)
        page.goto(f"/handover/batches/{batch.pk}/assign/")
        for building in buildings:
            page.get_by_label(f"1期 · {building}", exact=True).check()
        page.get_by_role("button", name="分配到本批次").click()
        expect(page.get_by_text(f"分配到批次“{name}”")).to_be_visible()
        page.goto(f"/handover/batches/{batch.pk}/slots/new/")
        page.get_by_label("日期").fill(
            (event.start_date + dt.timedelta(days=n)).isoformat()
        )
        page.get_by_label("开始时间").fill("09:00")
        page.get_by_label("结束时间").fill("12:00")
        page.get_by_label("每个时段容量（户）").fill("40")
        page.get_by_label("现场预留比例（%）").fill("10")
        page.get_by_role("button", name="添加时段").click()
        expect(page.get_by_text("已添加 3 个时段")).to_be_visible()
    page.goto(f"/handover/events/{event.pk}/batches/")
    _shot(page, artifacts_dir, "2-batches")
    page.goto(event.get_absolute_url())
    page.get_by_role("button", name="发布").click()
    expect(page.get_by_text("已发布").first).to_be_visible()


def _send_notices(
    page: Page, event: HandoverEvent, queued: list[int], artifacts_dir: Path
) -> NoticeRun:
    page.goto(event.get_absolute_url())
    page.get_by_test_id("notices-link").click()
    page.locator("#id_channel").select_option("sms")
    page.get_by_role("button", name="下一步：确认人数").click()
    expect(page.get_by_test_id("run-preview")).to_contain_text(str(UNITS - 3))
    page.get_by_test_id("run-confirm").click()
    expect(page.get_by_test_id("notice-run")).to_be_visible()
    run = NoticeRun.objects.get(event=event)
    assert set(queued) == {run.pk}  # the job was queued; this test is its worker
    percent = page.get_by_test_id("run-percent")
    expect(percent).to_have_text("0%")
    seen = []
    total = UNITS - 3
    for done in range(CHUNK, total + CHUNK, CHUNK):
        notices.notice_run_advance(run_id=run.pk, chunks=1)
        shown = f"{min(done, total) * 100 // total}%"
        expect(percent).to_have_text(shown)  # the page's poll (every second)
        seen.append(shown)
        if done == CHUNK:
            _shot(page, artifacts_dir, "3-notices-running")
    notices.notice_run_advance(run_id=run.pk, chunks=1)  # nothing left: done
    expect(page.get_by_test_id("run-state")).to_have_text("已完成")
    # Chunk by chunk up to 100 % (on 147 owners: 34 %, 68 %, 100 %).
    assert seen[-1] == "100%"
    assert len(seen) == -(-total // CHUNK)
    assert [int(p.rstrip("%")) for p in seen] == sorted(
        {int(p.rstrip("%")) for p in seen}
    )
    return run


def _owner_books(
    chromium: Browser,
    live_server: LiveServer,
    path: str,
    artifacts_dir: Path,
) -> None:
    phone = chromium.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
    )
    phone.set_default_timeout(15_000)
    owner = phone.new_page()
    try:
        owner.goto(path)
        expect(owner.get_by_test_id("owner-unit")).to_be_visible()
        _shot(owner, artifacts_dir, "5-owner-link")
        slots = owner.locator("[data-testid=owner-slot] input:not([disabled])")
        slots.nth(0).check()
        owner.get_by_test_id("owner-book").click()
        expect(owner.get_by_test_id("owner-booking")).to_be_visible()
        expect(owner.get_by_test_id("owner-booking-when")).to_contain_text("09:00")
        owner.get_by_test_id("owner-change").click()
        owner.locator("[data-testid=owner-slot]", has_text="10:00–11:00").locator(
            "input"
        ).check()
        _shot(owner, artifacts_dir, "6-owner-change")
        owner.get_by_test_id("owner-change-submit").click()
        expect(owner.get_by_test_id("owner-booking-when")).to_contain_text("10:00")
        qr = owner.get_by_test_id("owner-qr")
        expect(qr).to_be_visible()
        # The PNG is drawn by its own request: wait for it rather than read it at once
        # (on a loaded CI machine the <img> was visible before its bytes came).
        owner.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=owner-qr]');"
            " return i !== null && i.complete && i.naturalWidth > 0; }"
        )
        _shot(owner, artifacts_dir, "7-owner-qr")
    finally:
        phone.close()


def test_from_the_import_to_an_owner_booking_on_a_phone(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    chromium: Browser,
    live_server: LiveServer,
    admin_user: User,
    service_agent: User,
    queued_runs: list[int],
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(admin_user)
    _import(page, artifacts_dir, tmp_path)
    event = _event(page, timezone.localdate() + dt.timedelta(days=10))
    _scope_and_batches(page, event, artifacts_dir)
    run = _send_notices(page, event, queued_runs, artifacts_dir)

    # The messages go out through the scheduled-action pipeline's delivery.
    assert _deliver_due() >= UNITS - 3
    recorded = RecordingSmsBackend().recorded()
    assert len(recorded) == UNITS - 3 == run.notices.count()
    assert {m["to"] for m in recorded} == set(
        run.notices.values_list("recipient__phone", flat=True)
    )
    page.reload()
    expect(page.get_by_test_id("run-counts")).to_contain_text(f"已送达 {UNITS - 3}")
    _shot(page, artifacts_dir, "3-notices-done")

    page.goto(f"/handover/events/{event.pk}/readiness/")
    expect(page.get_by_test_id("total-in-scope")).to_have_text(str(UNITS - 3))
    expect(page.get_by_test_id("total-delivered")).to_contain_text(str(UNITS - 3))
    expect(page.get_by_test_id("total-booked")).to_contain_text("0")
    _shot(page, artifacts_dir, "4-readiness")

    # The owner of 1栋1单元101 opens the link of their SMS on a phone.
    message = next(m for m in recorded if m["to"] == "13900150000")
    path = re.search(r"/o/[^/\s]+/", message["body"]).group(0)
    _owner_books(chromium, live_server, path, artifacts_dir)
    booking = Appointment.objects.get(event=event)
    assert (booking.channel, booking.state) == ("owner_link", "booked")
    assert booking.slot.start_time == dt.time(10, 0)

    page.reload()
    expect(page.get_by_test_id("total-booked")).to_contain_text("1")
    page.context.clear_cookies()
    log_in(service_agent)
    page.goto(f"/handover/events/{event.pk}/calls/?days=0")
    expect(page.get_by_test_id("call-count")).to_have_text(f"共 {UNITS - 4} 户")
    expect(page.locator('[data-unit="LH-1-1-1-101"]')).to_have_count(0)
    expect(page.get_by_test_id("call-row").first).to_contain_text("139****")
    _shot(page, artifacts_dir, "8-call-list")
    assert page_problems == []
