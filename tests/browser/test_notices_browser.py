"""Issue 15's notices in a real headless Chromium: a manager sends a batch's owners the
入伙通知 by SMS; a real Celery worker and beat (crm/scheduler/testing.start_pipeline)
run the notice job and deliver the messages through the recording SMS backend, and the
run's card follows the job (htmx polls it) until every owner's SMS is recorded once.

Screenshots go to test-artifacts/issue15-notices-*.png.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from crm.celery import app
from crm.scheduler.testing import (
    RunningPipeline,
    database_url,
    start_pipeline,
    stop_pipeline,
)
from service.handover.models import Notice
from tests.handover.builders import make_event
from tests.handover.notice_builders import make_batch, make_units

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
UNITS = 450  # three chunks of the job (200 units each)


@pytest.fixture
def pipeline(transactional_db: None, tmp_path: Path) -> Iterator[RunningPipeline]:
    running = start_pipeline(
        tmp_path,
        database_url(connection.settings_dict),
        sweep_seconds=1,
        lease_seconds=10,
        worker_name="kehu-browser-notices",
        extra_env={
            "KEHU_SMS_BACKEND": "crm.channels.backends.RecordingSmsBackend",
            "KEHU_SMS_FILE_PATH": str(tmp_path / "sms"),
            "KEHU_DATA_DIR": str(tmp_path / "data"),
        },
    )
    # The run's task is queued by the live server (this process) after commit: to the
    # pipeline's Redis, where its worker listens.
    _publish_to(running.env["REDIS_URL"])
    try:
        yield running
    finally:
        _publish_to(settings.CELERY_BROKER_URL)
        stop_pipeline(running)


def _publish_to(url: str) -> None:
    if app._pool is not None:
        app._pool.force_close_all()
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def test_a_manager_sends_a_batch_its_notices_and_watches_them_go_out(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    pipeline: RunningPipeline,
    manager: User,
) -> None:
    event = make_event(manager)
    batch = make_batch(event, "一号楼批次")
    make_units(event, count=UNITS, batch=batch)
    make_units(event, count=5)  # not in the batch

    log_in(manager)
    page.goto(reverse("handover:notice_list", args=[event.pk]))
    form = page.get_by_test_id("run-form")
    form.locator("select[name=channel]").select_option("sms")
    form.locator("select[name=batch]").select_option(str(batch.pk))
    form.get_by_role("button", name="下一步：确认人数").click()
    expect(page.get_by_test_id("run-preview")).to_contain_text(
        f"将通过短信通知 {UNITS} 位业主"
    )
    page.screenshot(path=artifacts_dir / "issue15-notices-confirm.png")
    page.get_by_test_id("run-confirm").click()

    card = page.get_by_test_id("notice-run").first
    seen = []
    deadline = time.monotonic() + 180
    while card.get_attribute("data-state") != "done":
        seen.append(card.get_by_test_id("run-percent").inner_text())
        if len(seen) == 3:
            page.screenshot(path=artifacts_dir / "issue15-notices-progress.png")
        assert time.monotonic() < deadline, seen
        page.wait_for_timeout(250)
    expect(card.get_by_test_id("run-percent")).to_have_text("100%")
    # The bar moved on the page itself (htmx swapped the card), without a reload.
    assert seen and seen[0] != "100%", seen
    expect(card.get_by_test_id("run-counts")).to_contain_text(
        f"已送达 {UNITS}", timeout=90_000
    )
    page.screenshot(path=artifacts_dir / "issue15-notices-done.png", full_page=True)

    sms_file = pipeline.folder / "sms" / "sms.jsonl"
    recorded = [json.loads(line) for line in sms_file.read_text().splitlines()]
    assert len(recorded) == UNITS
    assert len({r["to"] for r in recorded}) == UNITS
    assert all("/o/" in r["body"] for r in recorded)
    assert Notice.objects.filter(state="delivered").count() == UNITS
    assert page_problems == []
