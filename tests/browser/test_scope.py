"""In a real browser: an admin puts a 1,000-unit project in an event's scope, makes two
batches, assigns buildings to them, marks ticked units as not ready through the action
bar (confirming), and books a unit for its owner; the call centre sees phones masked.
Screenshots go to test-artifacts/scope-*.png."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from service.handover.models import Appointment, Batch, EventUnit
from service.property.models import UnitOwnership
from tests.factories import CustomerFactory
from tests.handover.builders import make_event
from tests.handover.scope_builders import buildings_of, make_project, make_units

pytestmark = pytest.mark.browser
SHOTS = (
    Path(os.environ.get("KEHU_SHOTS_DIR", ""))
    if os.environ.get("KEHU_SHOTS_DIR")
    else None
)


def _shot(page: Page, artifacts_dir: Path, name: str) -> None:
    page.screenshot(path=artifacts_dir / f"scope-{name}.png", full_page=True)
    if SHOTS:
        page.screenshot(path=SHOTS / f"scope-{name}.png", full_page=True)


@pytest.fixture
def thousand_units(admin_user):
    project = make_project(buildings=10, name="翠湖花园")
    units = [
        unit
        for building in buildings_of(project)
        for unit in make_units(building, floors=25, per_floor=4)
    ]
    owners = [
        CustomerFactory(name=f"业主{n}", phone=f"1380000{n:04d}", owner=admin_user)
        for n in range(len(units))
    ]
    UnitOwnership.objects.bulk_create(
        UnitOwnership(unit=unit, customer=owner)
        for unit, owner in zip(units, owners, strict=True)
    )
    event = make_event(admin_user, slots_per_day=3, capacity=10)
    event.project = project
    event.save(update_fields=["project"])
    return event


def test_admin_scopes_batches_and_marks_units(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    admin_user: User,
    service_agent: User,
    thousand_units,
    artifacts_dir: Path,
):
    event = thousand_units
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(admin_user)
    page.goto(f"/handover/events/{event.pk}/scope/")
    expect(page.get_by_text("还没有划定交付范围")).to_be_visible()
    page.get_by_role("link", name="加入房间").first.click()
    page.get_by_role("button", name="加入交付范围").click()
    expect(page.get_by_text("已将 1000 个房间加入交付范围")).to_be_visible()
    assert EventUnit.objects.filter(event=event).count() == 1000

    for name, buildings in (
        ("第一批", ("1栋", "2栋", "3栋", "4栋", "5栋")),
        ("第二批", ("6栋", "7栋", "8栋", "9栋", "10栋")),
    ):
        page.goto(f"/handover/events/{event.pk}/batches/new/")
        page.get_by_label("批次名称").fill(name)
        page.get_by_label("开放预约").fill("2026-12-01T09:00")
        page.get_by_label("截止预约").fill("2026-12-31T18:00")
        page.get_by_role("button", name="保存").click()
        expect(page.get_by_text("批次已保存")).to_be_visible()
        batch = Batch.objects.get(event=event, name=name)
        page.goto(f"/handover/batches/{batch.pk}/assign/")
        for building in buildings:
            page.get_by_label(f"一期 · {building}", exact=True).check()
        page.get_by_role("button", name="分配到本批次").click()
        expect(page.get_by_text(f"已将 500 个房间分配到批次“{name}”")).to_be_visible()
    page.goto(f"/handover/batches/{Batch.objects.get(name='第一批').pk}/slots/new/")
    page.get_by_label("现场预留比例（%）").fill("20")
    page.get_by_role("button", name="添加时段").click()
    _shot(page, artifacts_dir, "batches")

    page.goto(f"/handover/events/{event.pk}/scope/")
    rows = page.locator('[data-testid="scope-row"]')
    expect(rows).to_have_count(50)
    for n in range(3):
        rows.nth(n).locator('input[name="units"]').check()
    page.locator("#b-action").select_option("eligibility")
    page.locator("#b-eligibility").select_option("not_ready")
    page.locator("#b-note").fill("外立面整改中")
    page.get_by_test_id("bulk-submit").click()
    expect(page.get_by_text("已修改 3 个房间的交付资格")).to_be_visible()
    expect(page.get_by_test_id("not-eligible")).to_have_count(3)
    _shot(page, artifacts_dir, "scope")

    page.goto(f"/handover/events/{event.pk}/book/")
    page.locator("#unit-search").fill("101")
    page.get_by_role("button", name="查找").click()
    expect(page.get_by_test_id("unit-choice").first).to_be_visible()
    _shot(page, artifacts_dir, "pick-unit")
    page.get_by_test_id("pick-party").first.click()
    expect(page.get_by_test_id("booking-unit")).to_be_visible()
    page.get_by_label("时段").select_option(index=4)  # a slot of 第一批
    page.get_by_label("例外原因").fill("业主已确认可以验房")
    page.get_by_role("button", name="确认预约").click()
    expect(page.get_by_text("已为")).to_be_visible()
    assert Appointment.objects.get().override_reason == "业主已确认可以验房"

    page.context.clear_cookies()
    log_in(service_agent)
    page.goto(f"/handover/events/{event.pk}/scope/?booked=booked")
    expect(page.get_by_test_id("owner-phone")).to_have_text("138****0000")
    expect(page.get_by_test_id("bulk-bar")).to_have_count(0)
    _shot(page, artifacts_dir, "scope-service")
    assert not page_problems
