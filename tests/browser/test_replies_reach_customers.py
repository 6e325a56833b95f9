"""Issue 13's "Done when", in a real headless Chromium:

1. a reply is delivered: a service agent answers a ticket by SMS and by e-mail; a real
   Celery worker and beat (crm/scheduler/testing.start_pipeline) deliver both through
   the development backends (the SMS recording file, Django's file e-mail backend), and
   the conversation shows 待发送 then 已发送 (htmx polls the state);
2. the customer's link: on a phone-sized screen a customer reports a leak on /report/,
   follows the personal link on the confirmation page, sees the ticket's status and a
   reply, and adds a message with a photo, which lands in the agent's conversation.

Screenshots of each page in Chinese and English go to test-artifacts/issue13-*.png.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from crm.accounts.models import User
from crm.channels.models import OutboundMessage
from crm.scheduler.testing import (
    RunningPipeline,
    database_url,
    start_pipeline,
    stop_pipeline,
)
from service import calendar_data, services
from service.models import Ticket, TicketAttachment, TicketMessage
from tests.factories import CategoryFactory, CustomerFactory, SLAPolicyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
    b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def pipeline(transactional_db: None, tmp_path: Path) -> Iterator[RunningPipeline]:
    """The worker delivers with the development backends, into files of this test."""
    running = start_pipeline(
        tmp_path,
        database_url(connection.settings_dict),
        sweep_seconds=1,
        lease_seconds=10,
        worker_name="kehu-browser-replies",
        extra_env={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "mail"),
            "KEHU_SMS_BACKEND": "crm.channels.backends.RecordingSmsBackend",
            "KEHU_SMS_FILE_PATH": str(tmp_path / "sms"),
        },
    )
    try:
        yield running
    finally:
        stop_pipeline(running)


@pytest.fixture
def desk(service_agent: User) -> None:
    calendar_data.calendar_seed()
    SLAPolicyFactory(ticket_type="repair", priority="normal")
    CategoryFactory(name="报修", team=service_agent.team)


def screenshot_both(
    browser: Browser,
    live_server: LiveServer,
    url: str,
    name: str,
    artifacts: Path,
    *,
    user_cookies: list | None = None,
    viewport: dict | None = None,
) -> None:
    """The page in zh-hans and in English (django_language cookie)."""
    for language in ("zh-hans", "en"):
        context = browser.new_context(
            base_url=live_server.url,
            viewport=viewport or {"width": 1280, "height": 900},
        )
        cookies = [
            {"name": "django_language", "value": language, "url": live_server.url}
        ]
        context.add_cookies(cookies + (user_cookies or []))
        page = context.new_page()
        page.goto(url)
        page.screenshot(
            path=artifacts / f"issue13-{name}-{language}.png", full_page=True
        )
        context.close()


def test_a_reply_is_delivered_by_sms_and_email_and_its_state_shown(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    chromium: Browser,
    live_server: LiveServer,
    artifacts_dir: Path,
    pipeline: RunningPipeline,
    service_agent: User,
    desk: None,
) -> None:
    customer = CustomerFactory(
        name="钱女士", phone="13911112222", email="qian@example.com"
    )
    ticket = services.ticket_create(
        by=service_agent,
        customer=customer,
        ticket_type="repair",
        channel="hotline",
        subject="阳台推拉门卡住",
        description="推拉门拉不动，轨道有异响。",
    )
    log_in(service_agent)
    page.goto(ticket.get_absolute_url())
    form = page.get_by_test_id("reply-form")

    form.locator("#reply-body").fill("师傅明天上午十点上门检修推拉门。")
    form.locator("label[for=channel-sms]").click()
    form.get_by_role("button", name="发送").click()
    reply = page.get_by_test_id("message-reply").last
    expect(reply.get_by_test_id("delivery-state")).to_have_attribute(
        "data-state", "queued"
    )
    # The worker sends it within a sweep; the page polls every 3 s.
    expect(reply.get_by_test_id("delivery-state")).to_have_attribute(
        "data-state", "sent", timeout=30_000
    )
    expect(reply).to_contain_text("短信已发送")

    form = page.get_by_test_id("reply-form")
    form.locator("#reply-body").fill("附上维修须知，请查收。")
    form.locator("label[for=channel-email]").click()
    form.get_by_role("button", name="发送").click()
    reply = page.get_by_test_id("message-reply").last
    expect(reply).to_contain_text("邮件已发送", timeout=30_000)
    page.screenshot(path=artifacts_dir / "issue13-reply-delivered.png", full_page=True)

    sms_file = pipeline.folder / "sms" / "sms.jsonl"
    [sms] = [json.loads(line) for line in sms_file.read_text().splitlines()]
    assert sms["to"] == "13911112222"
    assert "师傅明天上午十点上门检修推拉门。" in sms["body"]
    [mail_file] = list((pipeline.folder / "mail").glob("*.log"))
    sent = message_from_bytes(
        mail_file.read_bytes().split(b"\n" + b"-" * 79)[0], policy=policy.default
    )
    assert sent["To"] == "qian@example.com"
    assert ticket.reference in sent["Subject"]
    assert sent.get_content().strip() == "附上维修须知，请查收。"
    ticket.refresh_from_db()
    first_sent = OutboundMessage.objects.filter(channel="sms").get().sent_at
    assert ticket.first_responded_at == first_sent
    assert page_problems == []

    screenshot_both(
        chromium,
        live_server,
        ticket.get_absolute_url(),
        "ticket-replies",
        artifacts_dir,
        user_cookies=page.context.cookies(),
    )


def test_the_customer_follows_the_case_on_a_phone_and_adds_a_message(
    chromium: Browser,
    live_server: LiveServer,
    artifacts_dir: Path,
    service_agent: User,
    desk: None,
    tmp_path: Path,
    settings,
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    context = chromium.new_context(
        base_url=live_server.url, locale="zh-CN", viewport=PHONE, is_mobile=True
    )
    page = context.new_page()
    page.goto("/report/")
    page.get_by_label("您的姓名").fill("孙先生")
    page.get_by_label("手机号码").fill("13922223333")
    page.get_by_label("问题描述").fill("3栋502卫生间吊顶漏水，已经滴到地板。")
    page.get_by_role("button", name="提交").click()
    expect(page.get_by_test_id("intake-reference")).to_be_visible()
    page.screenshot(path=artifacts_dir / "issue13-intake-done.png", full_page=True)

    ticket = Ticket.objects.get(contact_phone="13922223333")
    services.ticket_message_add(
        by=service_agent, ticket=ticket, body="已安排维修师傅今天下午三点上门。"
    )
    services.ticket_message_add(
        by=service_agent, ticket=ticket, kind="note", body="内部：楼上住户需配合"
    )
    page.get_by_test_id("intake-follow-link").click()
    follow_url = page.url
    expect(page.get_by_test_id("follow-page")).to_contain_text(ticket.reference)
    expect(page.get_by_test_id("status")).to_be_visible()
    expect(page.get_by_test_id("follow-reply")).to_contain_text("今天下午三点上门")
    expect(page.get_by_test_id("follow-page")).not_to_contain_text("楼上住户需配合")

    form = page.get_by_test_id("follow-form")
    form.get_by_label("补充说明").fill("下午我在家，漏水更严重了，附照片。")
    form.locator("input[type=file]").set_input_files(
        {"name": "leak.png", "mimeType": "image/png", "buffer": PNG}
    )
    form.get_by_role("button", name="提交").click()
    expect(page.get_by_test_id("follow-mine").last).to_contain_text("漏水更严重了")
    page.screenshot(path=artifacts_dir / "issue13-follow-phone.png", full_page=True)
    context.close()

    message = ticket.messages.get(kind=TicketMessage.Kind.CUSTOMER)
    assert "漏水更严重了" in message.body
    assert TicketAttachment.objects.filter(ticket=ticket).count() == 1

    path = follow_url.removeprefix(live_server.url)
    screenshot_both(
        chromium, live_server, path, "follow", artifacts_dir, viewport=PHONE
    )
    screenshot_both(
        chromium,
        live_server,
        "/report/t/broken-link/",
        "follow-invalid",
        artifacts_dir,
        viewport=PHONE,
    )
