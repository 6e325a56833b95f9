"""Logging a contact in seconds, the follow-ups it promises, "my day" and the reminders.

Reminders go through the real scheduled-action pipeline: the sweeper claims due rows and
the delivery function (what the Celery task calls) sends the notification and e-mail.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from customers import services
from customers.models import ContactLog, Customer, FollowUp
from tests.factories import CustomerFactory

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
# Monday 2 March 2026, 10:00 in Shanghai.
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
HOME_URL = reverse("home")
LIST_URL = reverse("customers:customer_list")
HTMX = {"HTTP_HX_REQUEST": "true"}


def contact_url(customer: Customer) -> str:
    return reverse("customers:contact_create", args=[customer.pk])


def done_url(followup: FollowUp) -> str:
    return reverse("customers:followup_complete", args=[followup.pk])


def reminder_of(followup: FollowUp) -> ScheduledAction:
    return ScheduledAction.objects.get(idempotency_key=f"followup:{followup.pk}:remind")


@pytest.fixture(autouse=True)
def at_ten_on_monday():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(name="张三丰", owner=sales_rep)


@pytest.fixture
def as_sales(client, sales_rep):
    sales_rep.email = "sales_a@example.com"
    sales_rep.save(update_fields=["email"])
    client.force_login(sales_rep)
    return client


# --- quick contact entry ---------------------------------------------------------------


def test_a_contact_needs_only_a_channel_and_a_summary(as_sales, sales_rep, customer):
    response = as_sales.post(
        contact_url(customer), {"channel": "phone", "summary": "客户想看三居室"}, **HTMX
    )
    assert response.status_code == 200
    assertContains(response, 'data-testid="contact-saved"')
    assertNotContains(response, "已安排跟进")
    assert "<html" not in response.content.decode()
    # The page refreshes its timeline on this event, without a reload.
    assert response["HX-Trigger"] == "contact-logged"

    log = ContactLog.objects.get()
    assert (log.customer, log.author, log.channel) == (customer, sales_rep, "phone")
    assert log.summary == "客户想看三居室"
    assert log.direction == ContactLog.Direction.OUTBOUND
    assert log.sentiment == ContactLog.Sentiment.NEUTRAL
    assert log.occurred_at == NOW
    assert not FollowUp.objects.exists()


def test_a_contact_updates_the_customers_last_contact_and_count(
    as_sales, customer, at_ten_on_monday
):
    as_sales.post(contact_url(customer), {"channel": "phone", "summary": "一"}, **HTMX)
    # Within the 30-minute idle timeout, so the same session logs the second one.
    at_ten_on_monday.shift(dt.timedelta(minutes=20))
    as_sales.post(contact_url(customer), {"channel": "wechat", "summary": "二"}, **HTMX)
    customer.refresh_from_db()
    assert customer.contact_count == 2
    assert customer.last_contacted_at == NOW + dt.timedelta(minutes=20)

    page = as_sales.get(customer.get_absolute_url())
    html = page.content.decode()
    assert re.search(r"联系次数</dt><dd[^>]*>2</dd>", html)
    titles = re.findall(
        r'data-testid="timeline-entry">.*?<strong>(.*?)</strong>', html, re.S
    )
    assert titles == ["微信 · 我方主动", "电话 · 我方主动"]  # newest first


def test_a_next_step_with_a_date_becomes_a_follow_up_with_a_reminder(
    as_sales, sales_rep, customer
):
    due = NOW + dt.timedelta(days=1)
    response = as_sales.post(
        contact_url(customer),
        {
            "channel": "visit",
            "summary": "看了样板间",
            "next_step": "带家人复看",
            "next_step_at": "2026-03-03T10:00",
        },
        **HTMX,
    )
    assertContains(response, "已安排跟进")
    followup = FollowUp.objects.get()
    assert followup.customer == customer
    assert followup.assignee == sales_rep
    assert followup.note == "带家人复看"
    assert followup.due_at == due
    assert followup.source_contact == ContactLog.objects.get()
    reminder = reminder_of(followup)
    assert reminder.state == ScheduledAction.State.PENDING
    assert reminder.due_at == due
    assertContains(as_sales.get(customer.get_absolute_url()), "带家人复看")


def test_a_next_step_date_without_text_gets_a_default_note(as_sales, customer):
    as_sales.post(
        contact_url(customer),
        {"channel": "phone", "summary": "约了下周", "next_step_at": "2026-03-09T09:30"},
        **HTMX,
    )
    assert FollowUp.objects.get().note == "按约回访"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"channel": "phone", "summary": ""}, "这个字段是必填项"),
        ({"channel": "phone", "summary": "   "}, "这个字段是必填项"),
        ({"channel": "", "summary": "打了电话"}, "这个字段是必填项"),
        ({"channel": "telepathy", "summary": "打了电话"}, "选择一个有效的选项"),
        (
            {"channel": "phone", "summary": "x", "next_step_at": "2026-03-01T09:00"},
            "跟进时间 2026-03-01 09:00 已经过去，请选择现在之后的时间",
        ),
        (
            {"channel": "phone", "summary": "x", "next_step_at": "明天上午"},
            "日期/时间",
        ),
    ],
)
def test_bad_contact_input_re_renders_with_the_error_and_writes_nothing(
    as_sales, customer, data, message
):
    response = as_sales.post(contact_url(customer), data, **HTMX)
    assert response.status_code == 200
    assertContains(response, message)
    assertContains(response, 'data-testid="contact-form"')
    assertNotContains(response, 'data-testid="contact-saved"')
    assert "HX-Trigger" not in response
    assert not ContactLog.objects.exists()
    assert not FollowUp.objects.exists()
    assert not ScheduledAction.objects.exists()
    customer.refresh_from_db()
    assert (customer.contact_count, customer.last_contacted_at) == (0, None)


def test_the_form_keeps_what_was_typed_after_an_error(as_sales, customer):
    response = as_sales.post(
        contact_url(customer), {"channel": "wechat", "summary": ""}, **HTMX
    )
    assertContains(response, '<option value="wechat" selected>')


def test_without_htmx_a_contact_redirects_to_the_customer_with_a_message(
    as_sales, customer
):
    response = as_sales.post(
        contact_url(customer), {"channel": "phone", "summary": "打了电话"}, follow=True
    )
    assert response.redirect_chain == [(customer.get_absolute_url(), 302)]
    assertContains(response, "联系记录已保存")
    bad = as_sales.post(contact_url(customer), {"channel": "phone"}, follow=True)
    assertContains(bad, "联系记录未保存")
    assert ContactLog.objects.count() == 1


def test_the_lists_log_button_opens_the_form_for_that_customer(as_sales, customer):
    html = as_sales.get(LIST_URL).content.decode()
    assert f'hx-get="{contact_url(customer)}"' in html
    assert 'data-testid="quick-log"' in html

    response = as_sales.get(contact_url(customer), **HTMX)
    assert response.status_code == 200
    assertContains(response, "记录联系：张三丰")
    assertContains(response, 'data-testid="contact-form"')
    assertContains(response, 'name="show_name" value="1"')
    assert "<html" not in response.content.decode()

    # Saved from the list, the refreshed form still names the customer.
    saved = as_sales.post(
        contact_url(customer),
        {"channel": "phone", "summary": "列表里记的", "show_name": "1"},
        **HTMX,
    )
    assertContains(saved, "记录联系：张三丰")
    assertContains(saved, 'data-testid="contact-saved"')


def test_a_service_agent_may_log_a_contact_too(client, service_agent, customer):
    client.force_login(service_agent)
    response = client.post(
        contact_url(customer), {"channel": "phone", "summary": "客户来电咨询"}, **HTMX
    )
    assertContains(response, 'data-testid="contact-saved"')
    assert ContactLog.objects.get().author == service_agent


@pytest.mark.parametrize("persona", ["outsider", "far_outsider"])
def test_nobody_outside_the_team_can_log_a_contact(request, client, customer, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(contact_url(customer), **HTMX).status_code == 404
    response = client.post(
        contact_url(customer), {"channel": "phone", "summary": "偷偷记录"}, **HTMX
    )
    assert response.status_code == 404
    assert not ContactLog.objects.exists()


def test_a_user_without_a_role_cannot_log_a_contact(client, readonly_user, customer):
    client.force_login(readonly_user)
    response = client.post(
        contact_url(customer), {"channel": "phone", "summary": "x"}, **HTMX
    )
    assert response.status_code == 403
    assert not ContactLog.objects.exists()


# --- my day -----------------------------------------------------------------------------


@pytest.fixture
def promises(sales_rep, teammate):
    """Follow-ups around 10:00 on Monday, made through the service."""
    customers = {
        name: CustomerFactory(name=name, owner=sales_rep)
        for name in ("逾期客户", "今天客户", "明天客户", "已完成客户")
    }

    def promise(name: str, due: dt.datetime, assignee=sales_rep) -> FollowUp:
        return services.followup_create(
            by=sales_rep,
            customer=customers[name],
            assignee=assignee,
            due_at=due,
            note=f"{name}的跟进",
        )

    made = {
        "overdue": promise("逾期客户", NOW - dt.timedelta(days=1, hours=1)),
        "today": promise("今天客户", NOW.replace(hour=16)),
        "tomorrow": promise("明天客户", NOW + dt.timedelta(days=1)),
        "done": promise("已完成客户", NOW.replace(hour=9)),
        "teammates": promise("今天客户", NOW.replace(hour=11), assignee=teammate),
    }
    services.followup_complete(by=sales_rep, followup=made["done"])
    return made


def _due_items(html: str) -> list[str]:
    """The entries of the 今天要跟进 list, in page order."""
    block = html.split('data-testid="due-followups"', 1)[1]
    block = block.split("之后的跟进", 1)[0].split("最近的客户", 1)[0]
    return block.split('class="list-group-item ')[1:]


def test_my_day_lists_todays_and_overdue_follow_ups_and_flags_the_overdue(
    as_sales, promises
):
    response = as_sales.get(HOME_URL)
    assertContains(response, "我的一天")
    items = _due_items(response.content.decode())
    assert len(items) == 2
    overdue, today = items
    assert "逾期客户的跟进" in overdue and "已逾期" in overdue
    assert "今天客户的跟进" in today and "已逾期" not in today
    assertContains(response, "1 项已逾期")
    # Tomorrow's is listed apart; a done one and a teammate's are not listed at all.
    assertContains(response, "之后的跟进")
    assertContains(response, "明天客户的跟进")
    assertNotContains(response, "已完成客户的跟进")
    assert "今天客户的跟进" in today
    assert response.content.decode().count("今天客户的跟进") == 1


def test_a_follow_up_becomes_overdue_when_its_time_passes(
    as_sales, promises, at_ten_on_monday
):
    at_ten_on_monday.move_to(NOW.replace(hour=16, minute=1))
    response = as_sales.get(HOME_URL)
    assertContains(response, "2 项已逾期")


def test_my_day_lists_my_recent_customers(as_sales, sales_rep, teammate):
    CustomerFactory(name="我的老客户", owner=sales_rep)
    CustomerFactory(name="同事的客户", owner=teammate)
    response = as_sales.get(HOME_URL)
    assertContains(response, "最近的客户")
    assertContains(response, "我的老客户")
    assertNotContains(response, "同事的客户")


def test_completing_a_follow_up_removes_it_and_cancels_its_reminder(as_sales, promises):
    overdue = promises["overdue"]
    response = as_sales.post(done_url(overdue), {"next": HOME_URL}, follow=True)
    assert response.redirect_chain == [(HOME_URL, 302)]
    assertContains(response, "跟进已完成")
    assertNotContains(response, "逾期客户的跟进")
    assertNotContains(response, "已逾期")
    overdue.refresh_from_db()
    assert overdue.status == FollowUp.Status.DONE
    assert overdue.done_at == NOW
    assert reminder_of(overdue).state == ScheduledAction.State.CANCELLED
    # The sweeper never picks a cancelled reminder up.
    assert reminder_of(overdue).pk not in scheduler.actions_sweep(
        now=NOW + dt.timedelta(days=7)
    )


def test_completing_twice_changes_nothing_more(as_sales, promises):
    today = promises["today"]
    as_sales.post(done_url(today))
    today.refresh_from_db()
    first_done_at = today.done_at
    as_sales.post(done_url(today))
    today.refresh_from_db()
    assert today.done_at == first_done_at


def test_a_follow_up_cannot_be_completed_from_another_team(
    client, outsider, far_outsider, promises
):
    today = promises["today"]
    for person in (outsider, far_outsider):
        client.force_login(person)
        assert client.post(done_url(today)).status_code == 404
    today.refresh_from_db()
    assert today.status == FollowUp.Status.OPEN
    assert reminder_of(today).state == ScheduledAction.State.PENDING


def test_a_service_agent_cannot_complete_a_follow_up(client, service_agent, promises):
    client.force_login(service_agent)
    assert client.post(done_url(promises["today"])).status_code == 403
    promises["today"].refresh_from_db()
    assert promises["today"].status == FollowUp.Status.OPEN


def test_a_next_link_to_another_site_is_not_followed(as_sales, promises):
    response = as_sales.post(
        done_url(promises["today"]), {"next": "//evil.example.com/"}
    )
    assert response["Location"] == promises["today"].customer.get_absolute_url()


# --- reminders --------------------------------------------------------------------------


def deliver_due(now: dt.datetime, django_capture_on_commit_callbacks) -> list[int]:
    """One beat tick: the sweeper claims due actions and queues their delivery on
    commit; then each delivery runs as the Celery task would run it."""
    with django_capture_on_commit_callbacks(execute=False) as queued:
        ids = scheduler.actions_sweep(now=now)
    assert len(queued) == (1 if ids else 0)
    for action_id in ids:
        scheduler.action_deliver(action_id=action_id, now=now)
    return ids


def test_the_reminder_arrives_at_the_due_time_in_the_bell_and_by_email(
    as_sales, sales_rep, customer, at_ten_on_monday, django_capture_on_commit_callbacks
):
    as_sales.post(
        contact_url(customer),
        {
            "channel": "phone",
            "summary": "客户说下午再联系",
            "next_step": "下午回电",
            "next_step_at": "2026-03-02T15:00",
        },
        **HTMX,
    )
    followup = FollowUp.objects.get()

    # Before the due time nothing is sent.
    at_ten_on_monday.move_to(NOW.replace(hour=14, minute=59))
    assert deliver_due(timezone.now(), django_capture_on_commit_callbacks) == []
    assert not Notification.objects.exists()

    at_ten_on_monday.move_to(NOW.replace(hour=15, minute=0, second=5))
    assert len(deliver_due(timezone.now(), django_capture_on_commit_callbacks)) == 1

    notification = Notification.objects.get()
    assert notification.recipient == sales_rep
    assert notification.title == "跟进到期：张三丰"
    assert notification.body == "下午回电"
    assert notification.url == customer.get_absolute_url()
    [email] = mail.outbox
    assert email.to == ["sales_a@example.com"]
    assert email.subject == "跟进到期：张三丰"
    assert "下午回电" in email.body
    bell = as_sales.get(reverse("notifications:notification_bell"))
    assert re.search(r'data-testid="unread-count">\s*1\s*<', bell.content.decode())

    followup.refresh_from_db()
    assert followup.reminded_at is not None
    assert reminder_of(followup).state == ScheduledAction.State.DONE

    # Later sweeps, and a redelivery of the same action, send nothing more.
    at_ten_on_monday.shift(dt.timedelta(hours=1))
    assert deliver_due(timezone.now(), django_capture_on_commit_callbacks) == []
    assert scheduler.action_deliver(action_id=reminder_of(followup).pk) is False
    assert Notification.objects.count() == 1
    assert len(mail.outbox) == 1


def test_a_follow_up_completed_before_its_time_sends_no_reminder(
    as_sales, sales_rep, customer, django_capture_on_commit_callbacks
):
    followup = services.followup_create(
        by=sales_rep,
        customer=customer,
        assignee=sales_rep,
        due_at=NOW + dt.timedelta(hours=1),
        note="回电",
    )
    as_sales.post(done_url(followup))
    deliver_due(NOW + dt.timedelta(hours=2), django_capture_on_commit_callbacks)
    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_a_reminder_already_claimed_but_completed_meanwhile_is_not_sent(
    as_sales, sales_rep, customer
):
    """The sweeper claimed it, then the salesperson ticked it off before delivery."""
    followup = services.followup_create(
        by=sales_rep,
        customer=customer,
        assignee=sales_rep,
        due_at=NOW,
        note="回电",
    )
    [action_id] = scheduler.actions_sweep(now=NOW + dt.timedelta(seconds=1))
    as_sales.post(done_url(followup))
    scheduler.action_deliver(action_id=action_id, now=NOW + dt.timedelta(seconds=2))
    assert not Notification.objects.exists()
    assert mail.outbox == []
