"""In a real browser: an admin imports 1,000 units with owners (three bad rows
reported in the preview), confirms, watches the job finish, then opens the project,
a building's floor grid and a unit; the service desk sees the owner masked."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from customers import tasks
from service.property.models import Unit
from tests.property.test_import import HEADER, row

pytestmark = pytest.mark.browser


@pytest.fixture
def tasks_inline(monkeypatch, settings):
    """No worker here: the import's tasks run where they are queued."""
    settings.KEHU_IMPORT_PAUSE_RATIO = 0
    for task in (tasks.import_job_validate_task, tasks.import_job_execute_task):
        monkeypatch.setattr(task, "delay", lambda job_id, task=task: task(job_id))


def _file(tmp_path: Path) -> Path:
    rows = [HEADER]
    for n in range(1000):
        building, rest = divmod(n, 100)
        floor, position = divmod(rest, 4)
        rows.append(
            row(
                f"{floor + 1}{position + 1:02d}",
                name=f"业主{n}",
                phone=f"1390000{n:04d}",
                **{"楼栋": str(building + 1), "单元": "1"},
            )
        )
    rows[5][HEADER.index("业主电话")] = "12345"
    rows[6][HEADER.index("房号")] = ""
    rows[7][HEADER.index("合同面积")] = "九十"
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    path = tmp_path / "房间业主.csv"
    path.write_bytes(text.getvalue().encode("gbk"))
    return path


def test_an_admin_imports_a_thousand_units_with_owners(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    admin_user: User,
    service_agent: User,
    tasks_inline: None,
    artifacts_dir: Path,
    tmp_path: Path,
    settings,
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    log_in(admin_user)
    page.goto("/property/")
    page.get_by_test_id("import-units").first.click()
    page.screenshot(path=artifacts_dir / "property-import-upload.png", full_page=True)
    page.locator("input[type=file]").set_input_files(_file(tmp_path))
    with page.expect_navigation():
        page.get_by_role("button", name="上传并校验").click()
    expect(page.get_by_test_id("valid-rows")).to_have_text("997")
    expect(page.get_by_test_id("invalid-rows")).to_have_text("3")
    expect(page.get_by_test_id("problem-rows")).to_contain_text("不是有效的电话号码")
    expect(page.get_by_test_id("problem-rows")).to_contain_text("缺少房号")
    page.screenshot(path=artifacts_dir / "property-import-preview.png", full_page=True)
    page.get_by_test_id("import-valid").click()
    expect(page.get_by_test_id("import-done")).to_contain_text("已导入 997 条房间")
    page.screenshot(path=artifacts_dir / "property-import-done.png", full_page=True)
    assert Unit.objects.count() == 997

    page.goto("/property/")
    expect(page.get_by_test_id("unit-count")).to_have_text("997")
    page.get_by_role("link", name="翠湖花园").click()
    page.screenshot(path=artifacts_dir / "property-project.png", full_page=True)
    page.get_by_role("link", name="3栋").click()
    expect(page.get_by_test_id("unit-cell").first).to_be_visible()
    page.screenshot(path=artifacts_dir / "property-building.png", full_page=True)
    unit = Unit.objects.get(code="CHG-1-3-1-1502")
    page.goto(unit.get_absolute_url())
    expect(page.get_by_test_id("owners")).to_contain_text("13900000257")
    page.screenshot(path=artifacts_dir / "property-unit-admin.png", full_page=True)

    page.context.clear_cookies()
    log_in(service_agent)
    page.goto(unit.get_absolute_url())
    expect(page.get_by_test_id("owners")).to_contain_text("139****0257")
    page.screenshot(path=artifacts_dir / "property-unit-service.png", full_page=True)
    assert page_problems == []
