"""Replies reach the customer (issue 13): "回复客户" is an e-mail or SMS delivered by the
channel layer through the scheduled-action pipeline; the conversation shows whether it
was sent; the first-response clock stops when it is sent (or at a phone-call note),
never for a reply that could not be delivered."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.channels.backends import ChannelError, RecordingSmsBackend
from crm.channels.models import OutboundMessage
from crm.notifications.models import Notification
from service import calendar_data, services
from service.models import Category, Priority, SLAPolicy, Ticket, TicketType
from tests.channels.delivery import deliver_messages
from tests.factories import CustomerFactory

WEDNESDAY_10AM = dt.datetime(
    2026, 3, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))
)
State = OutboundMessage.State


class RefusingSmsBackend:
    """A gateway that refuses every number for good (an SMS backend like any other)."""

    def send(self, *, to: str, body: str, key: str) -> str:
        raise ChannelError("gateway answered 400: 号码不存在", permanent=True)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(WEDNESDAY_10AM, tick=True) as traveller:
        yield traveller


@pytest.fixture
def desk(service_agent):
    calendar_data.calendar_seed(years=[])
    SLAPolicy.objects.create(
        name="repair-normal",
        ticket_type=TicketType.REPAIR,
        priority=Priority.NORMAL,
        first_response_minutes=60,
        resolution_minutes=480,
    )
    return Category.objects.create(name="报修", team=service_agent.team)


def make_ticket(agent, customer, category, **extra) -> Ticket:
    return services.ticket_create(
        by=agent,
        customer=customer,
        ticket_type=TicketType.REPAIR,
        channel=Ticket.Channel.HOTLINE,
        subject="卫生间漏水",
        description="楼下天花板渗水",
        category=category,
        **extra,
    )


def post_reply(client, ticket, **data):
    ticket.refresh_from_db()
    return client.post(
        reverse("service:ticket_reply", args=[ticket.reference]),
        {
            "version": ticket.version,
            "kind": "reply",
            "body": "师傅下午两点上门。",
            **data,
        },
    )


def page(client, ticket):
    return client.get(reverse("service:ticket_detail", args=[ticket.reference]))


def test_a_reply_is_texted_and_stops_the_clock_only_when_sent(
    login, desk, service_agent, sales_rep, settings, tmp_path
):
    settings.KEHU_SMS_FILE_PATH = str(tmp_path)
    customer = CustomerFactory(owner=sales_rep, phone="13800138000", email="")
    ticket = make_ticket(service_agent, customer, desk)
    client = login(service_agent)
    assertContains(page(client, ticket), "“回复客户”将通过短信发送至")

    response = post_reply(client, ticket)
    assert response.status_code == 302
    shown = page(client, ticket)
    assertContains(shown, 'data-state="queued"')
    assertContains(shown, "短信待发送")
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None

    assert deliver_messages()
    [sms] = RecordingSmsBackend().recorded()
    assert sms["to"] == "13800138000"
    assert "师傅下午两点上门。" in sms["body"] and ticket.reference in sms["body"]
    outbound = OutboundMessage.objects.get()
    ticket.refresh_from_db()
    assert ticket.first_responded_at == outbound.sent_at
    assert not ticket.first_response_breached
    shown = page(client, ticket)
    assertContains(shown, 'data-state="sent"')
    assertContains(shown, "短信已发送")

    # The htmx poll answers with the state alone.
    message = ticket.messages.get()
    polled = client.get(reverse("service:message_delivery", args=[message.pk]))
    assertContains(polled, 'data-state="sent"')
    assertNotContains(polled, "hx-trigger")


def test_the_agent_chooses_email_or_sms_when_the_customer_has_both(
    login, desk, service_agent, sales_rep
):
    customer = CustomerFactory(
        owner=sales_rep, phone="13800138001", email="wang@example.com"
    )
    ticket = make_ticket(service_agent, customer, desk)
    client = login(service_agent)
    assertContains(page(client, ticket), 'id="channel-email"')

    response = post_reply(client, ticket)
    assert response.status_code == 400
    assertContains(response, "请选择通过邮件还是短信发送。", status_code=400)
    assertContains(response, "师傅下午两点上门。", status_code=400)
    assert not ticket.messages.exists()

    assert post_reply(client, ticket, channel="email").status_code == 302
    deliver_messages()
    [email] = mail.outbox
    assert email.to == ["wang@example.com"]
    assert ticket.reference in email.subject
    assert email.body == "师傅下午两点上门。"


def test_no_email_or_phone_means_no_customer_reply_but_a_call_note_works(
    login, desk, service_agent, sales_rep
):
    customer = CustomerFactory(owner=sales_rep, phone="", email="")
    ticket = make_ticket(service_agent, customer, desk)
    client = login(service_agent)
    assertContains(page(client, ticket), "客户没有邮箱或手机号")

    response = post_reply(client, ticket)
    assert response.status_code == 400
    assertContains(response, "回复无法发送给客户", status_code=400)
    assert not ticket.messages.exists()
    assert not OutboundMessage.objects.exists()

    # A phone call counts as the first response, at once.
    response = post_reply(
        client, ticket, kind="call", body="已电话联系，约好明天上门。"
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.first_responded_at is not None
    assertContains(page(client, ticket), 'data-testid="message-call"')


def test_a_failed_reply_does_not_stop_the_clock_and_its_author_is_told(
    login, desk, service_agent, sales_rep, settings
):
    settings.KEHU_SMS_BACKEND = f"{__name__}.RefusingSmsBackend"
    customer = CustomerFactory(owner=sales_rep, phone="13800138002", email="")
    ticket = make_ticket(service_agent, customer, desk)
    client = login(service_agent)
    post_reply(client, ticket)
    deliver_messages()

    outbound = OutboundMessage.objects.get()
    assert outbound.state == State.FAILED and "号码不存在" in outbound.error
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None
    shown = page(client, ticket)
    assertContains(shown, 'data-state="failed"')
    assertContains(shown, "首次响应计时未停止")
    [told] = Notification.objects.filter(
        recipient=service_agent, title__contains="未能送达"
    )
    assert ticket.reference in told.title and told.url.endswith("#conversation")

    # A later reply that is sent stops the clock then.
    settings.KEHU_SMS_BACKEND = "crm.channels.backends.RecordingSmsBackend"
    post_reply(client, ticket, body="改用短信再试一次")
    deliver_messages()
    ticket.refresh_from_db()
    assert ticket.first_responded_at is not None


def test_the_delivery_state_is_only_for_those_who_see_the_ticket(
    login, desk, service_agent, sales_rep, outsider
):
    customer = CustomerFactory(owner=sales_rep, phone="13800138003")
    ticket = make_ticket(service_agent, customer, desk)
    services.ticket_message_add(by=service_agent, ticket=ticket, body="收到")
    message = ticket.messages.get()
    url = reverse("service:message_delivery", args=[message.pk])
    assertContains(login(service_agent).get(url), "hx-trigger")
    assert login(outsider).get(url).status_code == 404
