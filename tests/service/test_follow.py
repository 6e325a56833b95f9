"""The customer follows the case (issue 13): the acknowledgement of a /report/ ticket
(the confirmation page and an SMS through the channel layer) carries a personal link,
signed and expiring, to a mobile page with the ticket's status and public replies,
where the customer adds a message or a photo without logging in."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.channels.backends import RecordingSmsBackend
from crm.core import once
from crm.notifications.models import Notification
from service import calendar_data, services
from service.models import Ticket, TicketAttachment, TicketMessage
from tests.channels.delivery import deliver_messages
from tests.factories import CategoryFactory, SLAPolicyFactory

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=SH)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KEHU_SMS_FILE_PATH = str(tmp_path / "sms")
    settings.KEHU_PUBLIC_URL = "https://kehu.example.cn"


@pytest.fixture
def desk(service_agent):
    calendar_data.calendar_seed(years=[2026])
    SLAPolicyFactory(ticket_type="repair", priority="normal")
    CategoryFactory(name="报修", team=service_agent.team)
    return service_agent


def report(client: Client, phone: str = "13912345678") -> Ticket:
    response = client.post(
        reverse("intake"),
        {
            "name": "赵先生",
            "phone": phone,
            "ticket_type": "repair",
            "description": "厨房水龙头一直滴水，请尽快派人维修。",
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]
    return Ticket.objects.latest("pk")


def follow(ticket: Ticket) -> str:
    return reverse("intake_follow", args=[services.follow_token(ticket)])


def test_the_acknowledgement_carries_the_personal_link(desk, client):
    ticket = report(client)
    done = client.get(reverse("intake") + "?done=1")
    link = follow(ticket)
    assertContains(done, f'href="{link}"')

    deliver_messages()
    [sms] = RecordingSmsBackend().recorded()
    assert sms["to"] == "13912345678"
    assert ticket.reference in sms["body"]
    assert f"https://kehu.example.cn{link}" in sms["body"]


def test_a_landline_gets_no_sms_but_the_confirmation_page_has_the_link(desk, client):
    ticket = report(client, phone="010-8888 6666")
    assert ticket.contact_phone and not services.reply_channels(ticket)
    assertContains(client.get(reverse("intake") + "?done=1"), follow(ticket))
    assert deliver_messages() == []
    assert RecordingSmsBackend().recorded() == []


def test_the_link_shows_the_status_and_public_replies_only(desk, client, service_agent):
    ticket = report(client)
    services.ticket_message_add(
        by=service_agent, ticket=ticket, body="师傅明早九点到。"
    )
    services.ticket_message_add(
        by=service_agent, ticket=ticket, kind="note", body="内部：业主脾气急"
    )
    services.ticket_message_add(
        by=service_agent, ticket=ticket, kind="call", body="电话：约好上门时间"
    )
    page = Client().get(follow(ticket))  # a fresh browser: no session, no login
    assert page.status_code == 200
    assertContains(page, ticket.reference)
    assertContains(page, 'data-testid="status"')
    assertContains(page, "客服正在处理您的问题。")
    assertContains(page, "师傅明早九点到。")
    assertNotContains(page, "内部：业主脾气急")
    assertNotContains(page, "电话：约好上门时间")
    assertNotContains(page, service_agent.username)


def test_the_customer_adds_a_message_and_a_photo_and_the_assignee_is_told(
    desk, client, service_agent
):
    ticket = report(client)
    assert ticket.assignee == service_agent
    url = follow(ticket)
    visitor = Client()
    response = visitor.post(
        url,
        {
            "body": "水越来越大了",
            "photo": SimpleUploadedFile("leak.png", PNG, "image/png"),
        },
    )
    assert response.status_code == 302
    assertContains(visitor.get(url), "水越来越大了")
    message = ticket.messages.get(kind=TicketMessage.Kind.CUSTOMER)
    assert message.body == "水越来越大了" and message.author is None
    assert TicketAttachment.objects.filter(ticket=ticket).count() == 1
    told = Notification.objects.get(recipient=service_agent, title__contains="留言")
    assert ticket.reference in told.title and told.url.endswith("#conversation")

    agent = Client()
    agent.force_login(service_agent)
    detail = agent.get(reverse("service:ticket_detail", args=[ticket.reference]))
    assertContains(detail, "水越来越大了")


def test_bad_photos_and_empty_posts_are_refused_in_chinese(desk, client):
    ticket = report(client)
    url = follow(ticket)
    visitor = Client()
    empty = visitor.post(url, {"body": "  "})
    assert empty.status_code == 400
    assertContains(empty, "请填写留言或选择照片。", status_code=400)
    pdf = visitor.post(
        url, {"photo": SimpleUploadedFile("a.pdf", b"%PDF-1.4", "application/pdf")}
    )
    assertContains(pdf, "只能上传 JPG、PNG 或 WebP 格式的照片。", status_code=400)
    fake = visitor.post(
        url, {"photo": SimpleUploadedFile("a.png", b"MZ\x90\x00" * 8, "image/png")}
    )
    assertContains(fake, "文件内容与扩展名不符。", status_code=400)
    assert not ticket.messages.filter(kind=TicketMessage.Kind.CUSTOMER).exists()
    assert not TicketAttachment.objects.exists()


def test_an_expired_link_opens_nothing(desk, client, settings, clock):
    settings.KEHU_FOLLOW_LINK_DAYS = 30
    ticket = report(client)
    url = follow(ticket)
    clock.shift(timedelta(days=29))
    assert Client().get(url).status_code == 200
    clock.shift(timedelta(days=2))
    expired = Client().get(url)
    assert expired.status_code == 410
    assertContains(expired, "链接已过期", status_code=410)
    assertNotContains(expired, ticket.reference, status_code=410)
    posted = Client().post(url, {"body": "还在吗"})
    assert posted.status_code == 410
    assert not ticket.messages.filter(kind=TicketMessage.Kind.CUSTOMER).exists()


def test_a_tampered_or_foreign_token_opens_nothing(desk, client):
    first = report(client, phone="13912345678")
    second = report(client, phone="13912345679")
    token = services.follow_token(first)
    # The same payload for another ticket, signed by anyone without our key.
    value, _, signature = token.rpartition(":")
    forged_payload = signing.dumps({"t": second.pk}, salt=services.FOLLOW_SALT)
    forged = forged_payload.rpartition(":")[0] + ":" + signature
    for bad in (
        forged,
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        signing.dumps({"t": second.pk}),  # our key, another purpose (salt)
        signing.dumps({"t": second.pk}, salt=services.FOLLOW_SALT, key="other-key"),
        "x" * 400,
        "not-a-token",
    ):
        response = Client().get(reverse("intake_follow", args=[bad]))
        assert response.status_code == 404, bad
        assertContains(response, "链接无效", status_code=404)
        assertNotContains(response, second.reference, status_code=404)
    # Each link opens its own ticket only.
    assertContains(Client().get(follow(first)), first.reference)
    assertNotContains(Client().get(follow(first)), second.reference)


def test_a_replayed_post_adds_the_message_once(desk, client):
    ticket = report(client)
    url = follow(ticket)
    visitor = Client()
    data = {"body": "请下午来", once.FIELD: once.new_token()}
    assert visitor.post(url, data).status_code == 302
    again = visitor.post(url, data)
    assert again.status_code in (302, 409)
    assert ticket.messages.filter(body="请下午来").count() == 1


def test_messages_are_rate_limited_per_ticket(desk, client, settings):
    settings.KEHU_FOLLOW_PER_TICKET_HOUR = 2
    ticket = report(client)
    url = follow(ticket)
    for n in range(2):
        assert Client().post(url, {"body": f"第{n}次"}).status_code == 302
    third = Client().post(url, {"body": "第三次"})
    assertContains(third, "该工单的留言太频繁", status_code=400)
    assert ticket.messages.filter(kind=TicketMessage.Kind.CUSTOMER).count() == 2
