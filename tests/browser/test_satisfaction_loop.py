"""Issue 16's "Done when", in a real headless Chromium, through the real pipeline:

a service agent resolves a ticket; a real Celery worker and beat deliver the survey SMS
through the recording development backend; the customer opens the personal link on a
phone-sized screen and answers 2; a recovery task appears for the team lead, who records
the call back; the manager's scorecard counts the unsatisfied answer and its drill-down
lists the case. Screenshots go to test-artifacts/issue16-*.png.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader
from pytest_django.live_server_helper import LiveServer

from crm.accounts.models import User
from crm.accounts.roles import Role
from crm.scheduler.testing import (
    RunningPipeline,
    database_url,
    start_pipeline,
    stop_pipeline,
)
from culture.satisfaction.models import RecoveryTask, Survey
from culture.scorecard import rollups
from service import calendar_data, services
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    SLAPolicyFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}
LINK = re.compile(r"https?://\S+?/s/[^/\s（]+/")


@pytest.fixture
def pipeline(transactional_db: None, tmp_path: Path) -> Iterator[RunningPipeline]:
    running = start_pipeline(
        tmp_path,
        database_url(connection.settings_dict),
        sweep_seconds=1,
        lease_seconds=10,
        worker_name="kehu-browser-satisfaction",
        extra_env={
            "KEHU_SMS_BACKEND": "crm.channels.backends.RecordingSmsBackend",
            "KEHU_SMS_FILE_PATH": str(tmp_path / "sms"),
        },
    )
    try:
        yield running
    finally:
        stop_pipeline(running)


def sms_sent(pipeline: RunningPipeline) -> list[dict]:
    path = pipeline.folder / "sms" / "sms.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_unhappy_answer_is_recovered_and_counted_on_the_scorecard(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    chromium: Browser,
    live_server: LiveServer,
    artifacts_dir: Path,
    pipeline: RunningPipeline,
    service_agent: User,
    settings,
) -> None:
    settings.KEHU_SURVEY_DELAY_MINUTES = 0
    team = service_agent.team
    lead = UserFactory(username="lead_a", team=team, role=Role.SERVICE)
    team.lead = lead
    team.save(update_fields=["lead"])
    manager = UserFactory(username="manager_s", team=team, role=Role.MANAGER)
    calendar_data.calendar_seed()
    SLAPolicyFactory(ticket_type="repair", priority="normal")
    CategoryFactory(name="报修", team=team)
    customer = CustomerFactory(name="周女士", phone="13933334444", team=team)
    ticket = services.ticket_create(
        by=service_agent,
        customer=customer,
        ticket_type="repair",
        channel="hotline",
        subject="厨房水龙头漏水",
        description="水龙头底座一直滴水。",
    )

    # 1. The agent resolves the ticket on its page.
    log_in(service_agent)
    page.goto(ticket.get_absolute_url())
    resolve = page.get_by_test_id("resolve")
    resolve.locator("summary").click()
    resolve.locator("textarea").fill("已更换水龙头阀芯，试水正常。")
    resolve.get_by_role("button", name="确认解决").click()
    expect(page.get_by_test_id("resolution")).to_contain_text("已更换水龙头阀芯")

    # 2. The worker sends the survey by SMS through the recording backend.
    for _ in range(60):
        messages = sms_sent(pipeline)
        if messages:
            break
        page.wait_for_timeout(500)
    [sms] = sms_sent(pipeline)
    assert sms["to"] == "13933334444"
    assert ticket.reference in sms["body"]
    link = LINK.search(sms["body"])
    assert link, sms["body"]
    survey = Survey.objects.get(ticket=ticket)
    assert survey.status == Survey.Status.SENT

    # 3. The customer answers 2 on a phone.
    phone = chromium.new_context(
        base_url=live_server.url, locale="zh-CN", viewport=PHONE, is_mobile=True
    )
    owner_page = phone.new_page()
    path = link.group(0).split("/s/", 1)[1]
    owner_page.goto(f"/s/{path}")
    expect(owner_page.get_by_test_id("survey-form")).to_contain_text(ticket.reference)
    owner_page.screenshot(path=artifacts_dir / "issue16-survey-phone.png")
    owner_page.get_by_test_id("survey-comment").fill("上门晚了两个小时。")
    owner_page.get_by_test_id("score-2").click()
    expect(owner_page.locator("body")).to_contain_text("谢谢")
    owner_page.screenshot(path=artifacts_dir / "issue16-survey-thanks-phone.png")
    # The link works once.
    owner_page.goto(f"/s/{path}")
    expect(owner_page.get_by_test_id("survey-form")).to_have_count(0)
    phone.close()

    survey.refresh_from_db()
    assert (survey.score, survey.status) == (2, Survey.Status.ANSWERED)
    task = RecoveryTask.objects.get(survey=survey)
    assert task.assignee == lead and task.status == RecoveryTask.Status.OPEN

    # 4. The team lead finds the task and records the call back.
    log_in(lead)
    page.goto("/recovery/")
    row = page.get_by_test_id("recovery-row").filter(has_text="周女士")
    expect(row).to_have_count(1)
    row.get_by_role("link").first.click()
    expect(page.get_by_test_id("survey-answer")).to_contain_text("上门晚了两个小时")
    form = page.get_by_test_id("recovery-form")
    form.locator("select[name=outcome]").select_option("resolved")
    form.locator("textarea[name=note]").fill("致电道歉，补送滤芯，客户表示理解。")
    form.locator("input[name=second_score]").fill("4")
    page.screenshot(path=artifacts_dir / "issue16-recovery-form.png", full_page=True)
    form.get_by_test_id("recovery-submit").click()
    expect(page.get_by_test_id("recovery-result")).to_contain_text("补送滤芯")
    task.refresh_from_db()
    assert task.status == RecoveryTask.Status.DONE and task.closed_by == lead

    # 5. The manager's scorecard counts the answer, and the drill-down shows the case.
    rollups.refresh()
    log_in(manager)
    page.goto("/scorecard/")
    csat = page.locator("[data-figure=csat_rate]")
    expect(csat.locator("[data-value]")).to_have_text("0.0%")
    expect(csat.locator("[data-detail]")).to_contain_text("1 个回答")
    page.screenshot(path=artifacts_dir / "issue16-scorecard.png", full_page=True)
    csat.locator("[data-drill]").click()
    expect(page.get_by_test_id("cases")).to_contain_text("周女士")
    page.screenshot(path=artifacts_dir / "issue16-scorecard-cases.png", full_page=True)

    # 6. The weekly report the managers get, as the scorecard's download button gives it.
    page.goto("/scorecard/")
    with page.expect_download() as download:
        page.get_by_test_id("weekly-report-pdf").click()
    pdf = artifacts_dir / "issue16-weekly-report.pdf"
    download.value.save_as(pdf)
    text = "".join(
        p.extract_text() for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages
    )
    assert "每周文化报告" in text and "满意率" in text
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
                str(pdf),
                str(artifacts_dir / "issue16-weekly-report"),
            ],
            check=True,
        )
    assert page_problems == []
