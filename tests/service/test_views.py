"""The service desk's pages as agents, salespeople, managers, back offices and the public
use them: access for every persona, bad input, edit conflicts, files, intake throttling
and constant query counts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.accounts.models import Team
from crm.accounts.roles import Role
from service import calendar_data, services
from service.models import (
    Asset,
    CannedReply,
    Category,
    Priority,
    SLAPolicy,
    Ticket,
    TicketAttachment,
    TicketMessage,
    TicketType,
    WorkOrder,
)
from tests.channels.delivery import deliver_messages
from tests.factories import (
    CustomerFactory,
    DepartmentFactory,
    TeamFactory,
    UserFactory,
)

# A Wednesday morning in Beijing, inside business hours (09:00-12:00, 13:30-18:00).
WEDNESDAY_10AM = dt.datetime(
    2026, 3, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
QUEUE_URL = reverse("service:ticket_queue")
NEW_URL = reverse("service:ticket_create")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(WEDNESDAY_10AM, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # As in development (DEBUG): a layout naming a missing field is an error.
    settings.CRISPY_FAIL_SILENTLY = False


@pytest.fixture
def desk(service_agent):
    """Business hours, an SLA for every type and priority, and a category of the desk."""
    calendar_data.calendar_seed(years=[])
    SLAPolicy.objects.bulk_create(
        SLAPolicy(
            name=f"{ticket_type}-{priority}",
            ticket_type=ticket_type,
            priority=priority,
            first_response_minutes=60,
            resolution_minutes=480,
        )
        for ticket_type in TicketType.values
        for priority in Priority.values
    )
    return Category.objects.create(name="报修", team=service_agent.team)


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="王业主")


@pytest.fixture
def ticket(desk, service_agent, customer):
    return make_ticket(service_agent, customer, desk)


def make_ticket(by, customer, category=None, **changes) -> Ticket:
    arguments = {
        "ticket_type": TicketType.REPAIR,
        "channel": Ticket.Channel.HOTLINE,
        "subject": "卫生间漏水",
        "description": "楼下天花板渗水",
        "category": category,
    }
    arguments.update(changes)
    return services.ticket_create(by=by, customer=customer, **arguments)


def detail_url(ticket: Ticket, action: str = "ticket_detail") -> str:
    return reverse(f"service:{action}", args=[ticket.reference])


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


# --- queues ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona", ["service_agent", "sales_rep", "manager", "admin_user"]
)
def test_queue_renders_for_each_desk_role(request, login, ticket, persona):
    response = login(request.getfixturevalue(persona)).get(QUEUE_URL + "?queue=all")
    assertContains(response, ticket.reference)


def test_queue_refuses_a_user_without_role(login, readonly_user):
    assert login(readonly_user).get(QUEUE_URL).status_code == 403


def test_queue_sends_anonymous_to_login(client, db):
    response = client.get(QUEUE_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_other_teams_salesperson_does_not_see_the_ticket(login, ticket, outsider):
    response = login(outsider).get(QUEUE_URL + "?queue=all")
    assertNotContains(response, ticket.reference)


def test_my_queue_shows_remaining_business_time(login, ticket, service_agent, clock):
    assert ticket.assignee == service_agent
    clock.shift(dt.timedelta(minutes=40))
    response = login(service_agent).get(QUEUE_URL + "?queue=mine")
    assertContains(response, "剩 20分")


def test_breaching_queue_lists_overdue_tickets_first(
    login, desk, service_agent, customer, clock
):
    earlier = make_ticket(service_agent, customer, desk, subject="先来的")
    clock.shift(dt.timedelta(minutes=30))
    make_ticket(service_agent, customer, desk, subject="后来的")
    clock.shift(dt.timedelta(minutes=65))  # 1 h 35 min after the first one
    response = login(service_agent).get(QUEUE_URL + "?queue=breaching")
    html = response.content.decode()
    assert "已超时 35分" in html
    assert html.index(earlier.reference) < html.index("后来的")


def test_paused_tickets_sort_last(login, desk, service_agent, customer):
    paused = make_ticket(service_agent, customer, desk, subject="等客户回电")
    services.ticket_transition(
        by=service_agent, ticket=paused, to_status=Ticket.Status.WAITING
    )
    running = make_ticket(service_agent, customer, desk, subject="正在计时")
    response = login(service_agent).get(QUEUE_URL + "?queue=mine")
    html = response.content.decode()
    assert html.index(running.reference) < html.index(paused.reference)
    assertContains(response, "已暂停（等待客户）")


def test_unassigned_queue_and_search(login, desk, service_agent, customer):
    loose = make_ticket(service_agent, customer, None, subject="没有分类的咨询")
    client = login(service_agent)
    assertContains(client.get(QUEUE_URL + "?queue=unassigned"), loose.reference)
    found = client.get(QUEUE_URL + "?queue=all&q=" + loose.reference[-4:])
    assertContains(found, loose.reference)
    assertContains(client.get(QUEUE_URL + "?queue=all&q=王业主"), loose.reference)
    missing = client.get(QUEUE_URL + "?queue=all&q=不存在的主题")
    assertNotContains(missing, loose.reference)


def test_team_queue_includes_the_teams_a_manager_leads(
    login, ticket, manager, service_agent
):
    Team.objects.filter(pk=service_agent.team_id).update(lead=manager)
    response = login(manager).get(QUEUE_URL + "?queue=team")
    assertContains(response, ticket.reference)


def test_queue_filters_by_priority(login, desk, service_agent, customer):
    urgent = make_ticket(service_agent, customer, desk, priority=Priority.URGENT)
    normal = make_ticket(service_agent, customer, desk)
    response = login(service_agent).get(QUEUE_URL + "?queue=all&priority=urgent")
    assertContains(response, urgent.reference)
    assertNotContains(response, normal.reference)


def test_queue_htmx_answers_the_results_only(login, ticket, service_agent):
    response = login(service_agent).get(
        QUEUE_URL + "?queue=all", headers={"HX-Request": "true"}
    )
    assertContains(response, ticket.reference)
    assertNotContains(response, "<html")


@pytest.mark.parametrize("queue", ["mine", "team", "breaching", "all"])
def test_queue_runs_the_same_queries_with_3_and_30_tickets(
    login, desk, service_agent, queue
):
    customers = [CustomerFactory() for _ in range(3)]
    client = login(service_agent)
    url = f"{QUEUE_URL}?queue={queue}"
    for n in range(3):
        make_ticket(service_agent, customers[n % 3], desk)
    client.get(url)
    few = queries_for(client, url)
    for n in range(27):
        make_ticket(
            service_agent, customers[n % 3], desk, asset=None, priority=Priority.HIGH
        )
    many = queries_for(client, url)
    assert many == few
    assert many <= 13  # includes the per-request session save (idle timeout)


# --- a new ticket ------------------------------------------------------------------------


def ticket_data(customer, **changes) -> dict:
    data = {
        "customer": customer.pk,
        "ticket_type": TicketType.COMPLAINT,
        "channel": Ticket.Channel.HOTLINE,
        "priority": Priority.HIGH,
        "subject": "物业费收费不透明",
        "description": "客户来电投诉物业费明细不清楚。",
        "contact_name": "王先生",
        "contact_phone": "13912345678",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("persona", ["service_agent", "sales_rep", "manager"])
def test_new_ticket_page_shows_the_customer_and_profile(
    request, login, desk, customer, persona
):
    client = login(request.getfixturevalue(persona))
    response = client.get(f"{NEW_URL}?customer={customer.pk}")
    assertContains(response, "王业主")
    assertContains(response, 'data-testid="profile-card"')
    assertContains(response, "热线电话")


def test_new_ticket_is_refused_to_a_user_without_role(login, readonly_user, customer):
    response = login(readonly_user).get(f"{NEW_URL}?customer={customer.pk}")
    assert response.status_code == 403


def test_new_ticket_for_an_invisible_customer_is_404(login, desk, customer, outsider):
    response = login(outsider).get(f"{NEW_URL}?customer={customer.pk}")
    assert response.status_code == 404


def test_customer_lookup_finds_the_caller(login, desk, customer, service_agent):
    client = login(service_agent)
    response = client.get(NEW_URL + "?q=王业主", headers={"HX-Request": "true"})
    assertContains(response, f"?customer={customer.pk}")
    assertNotContains(response, "<html")
    assertContains(client.get(NEW_URL), "第一步：找到来电客户")


def test_agent_takes_a_complaint_with_an_attachment(
    login, desk, customer, service_agent
):
    asset = Asset.objects.create(customer=customer, name="1栋101")
    photo = SimpleUploadedFile("现场.png", PNG, content_type="image/png")
    response = login(service_agent).post(
        NEW_URL,
        ticket_data(customer, asset=asset.pk, category=desk.pk, attachments=[photo]),
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == ticket.get_absolute_url()
    assert ticket.channel == "hotline"
    assert ticket.assignee == service_agent
    assert ticket.first_response_due_at == WEDNESDAY_10AM + dt.timedelta(hours=1)
    assert ticket.attachments.get().original_name == "现场.png"


def test_salesperson_opens_a_ticket_without_the_attachment_field(
    login, desk, customer, sales_rep
):
    client = login(sales_rep)
    page = client.get(f"{NEW_URL}?customer={customer.pk}")
    assertNotContains(page, 'name="attachments"')
    response = client.post(NEW_URL, ticket_data(customer, category=desk.pk))
    assert response.status_code == 302
    assert Ticket.objects.get().created_by == sales_rep


def test_missing_subject_re_renders_with_errors_and_saves_nothing(
    login, desk, customer, service_agent
):
    response = login(service_agent).post(NEW_URL, ticket_data(customer, subject=" "))
    assert response.status_code == 400
    assert "subject" in response.context["form"].errors
    assertContains(response, 'id="id_subject_error"', status_code=400)
    assert not Ticket.objects.exists()


def test_bad_attachment_re_renders_and_saves_no_ticket(
    login, desk, customer, service_agent
):
    fake = SimpleUploadedFile("photo.png", b"MZ\x90\x00not a png", "image/png")
    response = login(service_agent).post(
        NEW_URL, ticket_data(customer, attachments=[fake])
    )
    assertContains(response, "内容与扩展名不符", status_code=400)
    assert not Ticket.objects.exists()
    assert not TicketAttachment.objects.exists()


def test_another_customers_asset_is_refused(login, desk, customer, service_agent):
    other = Asset.objects.create(customer=CustomerFactory(), name="别人的房子")
    response = login(service_agent).post(NEW_URL, ticket_data(customer, asset=other.pk))
    assert response.status_code == 400
    assert not Ticket.objects.exists()


# --- the ticket page ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona", ["service_agent", "sales_rep", "manager", "admin_user"]
)
def test_ticket_page_renders_for_each_role_that_sees_it(
    request, login, ticket, persona
):
    response = login(request.getfixturevalue(persona)).get(detail_url(ticket))
    assertContains(response, ticket.subject)
    assertContains(response, 'data-testid="sla"')
    assertContains(response, 'data-testid="profile-card"')


@pytest.mark.parametrize("persona", ["outsider", "far_outsider"])
def test_another_teams_ticket_is_404(request, login, ticket, persona):
    response = login(request.getfixturevalue(persona)).get(detail_url(ticket))
    assert response.status_code == 404


def test_ticket_page_is_403_without_a_role(login, ticket, readonly_user):
    assert login(readonly_user).get(detail_url(ticket)).status_code == 403


def test_unknown_reference_is_404(login, service_agent, db):
    response = login(service_agent).get(reverse("service:ticket_detail", args=["x"]))
    assert response.status_code == 404


def test_sales_may_read_but_not_change_a_ticket(login, ticket, sales_rep):
    client = login(sales_rep)
    assertNotContains(client.get(detail_url(ticket)), 'data-testid="reply-form"')
    response = client.post(
        detail_url(ticket, "ticket_reply"),
        {"version": ticket.version, "kind": "reply", "body": "你好"},
    )
    assert response.status_code == 403
    assert not ticket.messages.exists()


def test_reply_and_note_are_told_apart(login, ticket, service_agent):
    client = login(service_agent)
    for kind, body in (("reply", "已安排师傅"), ("note", "客户脾气急")):
        response = client.post(
            detail_url(ticket, "ticket_reply"),
            {"version": ticket.version, "kind": kind, "body": body},
        )
        assert response.status_code == 302
    # The reply stops the first-response clock when its SMS is sent.
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None
    deliver_messages()
    page = client.get(detail_url(ticket))
    assertContains(page, 'data-testid="message-reply"')
    assertContains(page, 'data-state="sent"')
    assertContains(page, 'data-testid="message-note"')
    assertContains(page, "内部备注（客户看不到）")
    ticket.refresh_from_db()
    assert ticket.first_responded_at == WEDNESDAY_10AM
    assertContains(page, "已响应")


def test_a_long_conversation_shows_the_latest_50_and_the_rest_on_request(
    login, ticket, service_agent
):
    TicketMessage.objects.bulk_create(
        TicketMessage(
            ticket=ticket, kind=TicketMessage.Kind.CUSTOMER, body=f"来信{n:03}"
        )
        for n in range(55)
    )
    client = login(service_agent)

    latest = client.get(detail_url(ticket)).content.decode()
    assert latest.count('data-testid="message-customer"') == 50
    assert "来信054" in latest and "来信005" in latest and "来信004" not in latest
    assert latest.index("来信005") < latest.index("来信054")  # oldest first
    assert 'data-testid="conversation-earlier"' in latest

    whole = client.get(detail_url(ticket) + "?conversation=all").content.decode()
    assert whole.count('data-testid="message-customer"') == 55
    assert "来信000" in whole
    assert 'data-testid="conversation-earlier"' not in whole


def test_empty_reply_re_renders_with_an_error(login, ticket, service_agent):
    response = login(service_agent).post(
        detail_url(ticket, "ticket_reply"),
        {"version": ticket.version, "kind": "reply", "body": "  "},
    )
    assert response.status_code == 400
    assert not ticket.messages.exists()


def test_canned_reply_fills_in_its_placeholders(login, ticket, service_agent):
    canned = CannedReply.objects.create(
        title="已受理", body="{客户}您好，工单号 {工单号}，{处理人}"
    )
    response = login(service_agent).get(
        detail_url(ticket, "canned_reply"),
        {"canned": canned.pk, "body": "先说一句"},
        headers={"HX-Request": "true"},
    )
    assertContains(response, f"先说一句\n王业主您好，工单号 {ticket.reference}，")
    assertContains(response, 'id="reply-body"')


def test_stale_version_shows_a_conflict_and_overwrites_nothing(
    client, ticket, service_agent
):
    colleague = UserFactory(team=service_agent.team, role=Role.SERVICE)
    stale = ticket.version
    client.force_login(colleague)
    first = client.post(
        detail_url(ticket, "ticket_assign"),
        {"version": stale, "assignee": colleague.pk},
    )
    assert first.status_code == 302
    client.force_login(service_agent)
    second = client.post(
        detail_url(ticket, "ticket_assign"),
        {"version": stale, "assignee": service_agent.pk},
    )
    assertContains(second, "工单已被他人修改", status_code=409)
    ticket.refresh_from_db()
    assert ticket.assignee == colleague
    moved = client.post(
        detail_url(ticket, "ticket_transition"),
        {"version": stale, "to_status": "waiting", "note": "等客户"},
    )
    assertContains(moved, "工单已被他人修改", status_code=409)
    assertContains(moved, f'name="version" value="{ticket.version}"', status_code=409)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.ASSIGNED


def test_conflict_keeps_the_typed_reply(login, ticket, service_agent):
    response = login(service_agent).post(
        detail_url(ticket, "ticket_reply"),
        {"version": ticket.version - 1, "kind": "reply", "body": "我打的字还在"},
    )
    assertContains(response, "工单已被他人修改", status_code=409)
    assertContains(response, "我打的字还在", status_code=409)
    assert not ticket.messages.exists()


def test_resolving_needs_a_summary(login, ticket, service_agent):
    client = login(service_agent)
    url = detail_url(ticket, "ticket_transition")
    refused = client.post(url, {"version": ticket.version, "to_status": "resolved"})
    assertContains(refused, "解决工单需要填写解决说明", status_code=400)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.ASSIGNED
    done = client.post(
        url,
        {
            "version": ticket.version,
            "to_status": "resolved",
            "resolution_summary": "已更换水管",
        },
    )
    assert done.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
    assert ticket.resolution_summary == "已更换水管"


def test_a_transition_outside_the_rules_is_refused(login, ticket, service_agent):
    response = login(service_agent).post(
        detail_url(ticket, "ticket_transition"),
        {"version": ticket.version, "to_status": "closed"},
    )
    assertContains(response, "工单不能从", status_code=400)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.ASSIGNED


def test_waiting_shows_the_paused_clock(login, ticket, service_agent):
    client = login(service_agent)
    client.post(
        detail_url(ticket, "ticket_transition"),
        {"version": ticket.version, "to_status": "waiting"},
    )
    assertContains(client.get(detail_url(ticket)), "已暂停（等待客户）")


def test_attachment_upload_and_download_headers(login, ticket, service_agent):
    client = login(service_agent)
    upload = SimpleUploadedFile("发票.pdf", b"%PDF-1.4 test", "application/pdf")
    response = client.post(
        detail_url(ticket, "attachment_upload"),
        {"version": ticket.version, "files": [upload]},
    )
    assert response.status_code == 302
    attachment = ticket.attachments.get()
    download = client.get(reverse("service:attachment_download", args=[attachment.pk]))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''%E5%8F%91%E7%A5%A8.pdf" in download["Content-Disposition"]
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content) == b"%PDF-1.4 test"


def test_attachment_of_another_teams_ticket_is_404(login, ticket, outsider):
    attachment = services.attachment_add(
        by=None,
        ticket=ticket,
        upload=SimpleUploadedFile("a.png", PNG, "image/png"),
    )
    url = reverse("service:attachment_download", args=[attachment.pk])
    assert login(outsider).get(url).status_code == 404


def test_bad_upload_on_the_ticket_shows_the_error(login, ticket, service_agent):
    response = login(service_agent).post(
        detail_url(ticket, "attachment_upload"),
        {
            "version": ticket.version,
            "files": [SimpleUploadedFile("x.exe", b"MZ", "application/octet-stream")],
        },
    )
    assertContains(response, "只能上传图片", status_code=400)
    assert not ticket.attachments.exists()


def test_assign_to_me(login, desk, customer, service_agent):
    loose = make_ticket(service_agent, customer, None)
    response = login(service_agent).post(
        detail_url(loose, "ticket_assign"),
        {"version": loose.version, "assignee": service_agent.pk},
    )
    assert response.status_code == 302
    loose.refresh_from_db()
    assert loose.assignee == service_agent
    assert loose.status == Ticket.Status.ASSIGNED


def test_merge_asks_first_then_moves_the_conversation(
    login, desk, customer, service_agent
):
    original = make_ticket(service_agent, customer, desk)
    duplicate = make_ticket(service_agent, customer, desk, subject="又报了一次")
    services.ticket_message_add(by=service_agent, ticket=duplicate, body="第二次来电")
    client = login(service_agent)
    url = detail_url(duplicate, "ticket_merge")
    ask = client.get(
        url, {"reference": original.reference, "version": duplicate.version}
    )
    assertContains(ask, "确认合并")
    assert duplicate.messages.exists()
    done = client.post(
        url, {"reference": original.reference, "version": duplicate.version}
    )
    assert done["Location"] == original.get_absolute_url()
    duplicate.refresh_from_db()
    assert duplicate.merged_into == original
    assert original.messages.filter(body="第二次来电").exists()


def test_merge_into_an_unknown_ticket_says_so(login, ticket, service_agent):
    response = login(service_agent).get(
        detail_url(ticket, "ticket_merge"),
        {"reference": "2026999999", "version": ticket.version},
    )
    assertContains(response, "没有找到可合并的另一张工单", status_code=400)


def test_link_related_tickets(login, desk, customer, service_agent):
    first = make_ticket(service_agent, customer, desk)
    second = make_ticket(service_agent, customer, desk, subject="同一栋楼也漏水")
    client = login(service_agent)
    client.post(
        detail_url(first, "ticket_link"),
        {"version": first.version, "reference": second.reference},
    )
    assertContains(client.get(detail_url(second)), first.reference)


def test_ticket_page_runs_the_same_queries_with_3_and_30_messages(
    login, ticket, service_agent
):
    client = login(service_agent)
    url = detail_url(ticket)
    for n in range(3):
        services.ticket_message_add(by=service_agent, ticket=ticket, body=f"第{n}条")
    client.get(url)
    few = queries_for(client, url)
    for n in range(27):
        services.ticket_message_add(
            by=service_agent,
            ticket=ticket,
            body=f"备注{n}",
            kind=TicketMessage.Kind.NOTE,
        )
    many = queries_for(client, url)
    assert many == few


# --- work orders -------------------------------------------------------------------------


@pytest.fixture
def engineer(db):
    team = TeamFactory(name="工程维修组", department=DepartmentFactory(name="工程部"))
    return UserFactory(username="engineer", team=team, role=Role.SERVICE)


@pytest.fixture
def work_order(ticket, service_agent, engineer):
    return services.workorder_create(
        by=service_agent,
        ticket=ticket,
        department=engineer.team.department,
        title="上门检修水管",
        due_at=WEDNESDAY_10AM + dt.timedelta(hours=4),
    )


def test_desk_opens_a_work_order_from_the_ticket(
    login, ticket, service_agent, engineer
):
    response = login(service_agent).post(
        detail_url(ticket, "workorder_create"),
        {
            "version": ticket.version,
            "department": engineer.team.department_id,
            "title": "检修水管",
            "due_at": "2026-03-05T10:00",
        },
    )
    assert response.status_code == 302
    order = WorkOrder.objects.get()
    assert order.ticket == ticket and order.department == engineer.team.department


def test_work_order_due_in_the_past_is_refused(login, ticket, service_agent, engineer):
    response = login(service_agent).post(
        detail_url(ticket, "workorder_create"),
        {
            "version": ticket.version,
            "department": engineer.team.department_id,
            "title": "检修水管",
            "due_at": "2026-03-01T10:00",
        },
    )
    assertContains(response, "完成时限必须晚于现在", status_code=400)
    assert not WorkOrder.objects.exists()


def test_department_queue_lists_its_orders_and_flags_overdue(
    login, work_order, engineer, service_agent, clock
):
    clock.shift(dt.timedelta(hours=5))
    response = login(engineer).get(reverse("service:workorder_list"))
    assertContains(response, "上门检修水管")
    assertContains(response, 'data-testid="overdue"')
    other_department = login(service_agent).get(reverse("service:workorder_list"))
    assertNotContains(other_department, "上门检修水管")


def test_department_finishes_and_the_desk_rates(
    login, client, work_order, engineer, service_agent
):
    url = reverse("service:workorder_detail", args=[work_order.pk])
    client.force_login(engineer)
    assertContains(client.get(url), 'data-testid="workorder-update"')
    missing = client.post(url, {"status": "done", "result": ""})
    assertContains(missing, "完成或退回时请填写处理结果", status_code=400)
    done = client.post(url, {"status": "done", "result": "已更换水管"})
    assert done.status_code == 302
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.DONE
    client.force_login(service_agent)
    ticket_page = client.get(work_order.ticket.get_absolute_url())
    assertContains(ticket_page, 'data-testid="rating-form"')
    client.post(
        reverse("service:workorder_rate", args=[work_order.pk]),
        {"rating": 4, "version": work_order.ticket.version},
    )
    work_order.refresh_from_db()
    assert work_order.rating == 4


def test_work_order_page_access(login, client, work_order, sales_rep, far_outsider):
    url = reverse("service:workorder_detail", args=[work_order.pk])
    client.force_login(sales_rep)  # sees the ticket, is not in the department
    assertNotContains(client.get(url), 'data-testid="workorder-update"')
    assert client.post(url, {"status": "done", "result": "x"}).status_code == 403
    client.force_login(far_outsider)
    assert client.get(url).status_code == 404


# --- assets and the dealer report --------------------------------------------------------


@pytest.mark.parametrize("persona", ["service_agent", "manager", "admin_user"])
def test_asset_form_renders_for_asset_roles(request, login, customer, persona):
    response = login(request.getfixturevalue(persona)).get(
        reverse("service:asset_create") + f"?customer={customer.pk}"
    )
    assertContains(response, "添加资产")


def test_asset_form_is_403_for_sales_and_404_for_an_invisible_customer(
    login, client, customer, sales_rep, manager
):
    url = reverse("service:asset_create")
    assert login(sales_rep).get(f"{url}?customer={customer.pk}").status_code == 403
    far = CustomerFactory(owner=UserFactory(team=TeamFactory(name="远方组")))
    client.force_login(manager)
    assert client.get(f"{url}?customer={far.pk}").status_code == 404


def test_asset_is_added_and_shown_on_the_customer_page(login, customer, service_agent):
    dealer = CustomerFactory(kind="dealer", name="美的经销商", is_organization=True)
    client = login(service_agent)
    response = client.post(
        reverse("service:asset_create"),
        {
            "customer": customer.pk,
            "kind": "appliance",
            "name": "中央空调",
            "delivered_on": "2025-01-01",
            "warranty_until": "2027-01-01",
            "dealer": dealer.pk,
        },
    )
    assert response.status_code == 302
    page = client.get(customer.get_absolute_url())
    assertContains(page, "中央空调")
    assertContains(page, "保修期内")
    assertContains(page, "新建工单")


def test_bad_asset_dates_save_nothing(login, customer, service_agent):
    response = login(service_agent).post(
        reverse("service:asset_create"),
        {
            "customer": customer.pk,
            "kind": "unit",
            "name": "1栋101",
            "delivered_on": "2025-01-01",
            "warranty_until": "2024-01-01",
        },
    )
    assertContains(response, "保修截止不能早于交付日期", status_code=400)
    assert not Asset.objects.exists()


@pytest.mark.parametrize(
    "persona, status", [("manager", 200), ("admin_user", 200), ("service_agent", 403)]
)
def test_dealer_report_access(request, login, persona, status, db):
    response = login(request.getfixturevalue(persona)).get(
        reverse("service:dealer_report")
    )
    assert response.status_code == status


def test_dealer_report_counts_sla_and_satisfaction(
    login, desk, customer, service_agent, admin_user
):
    dealer = CustomerFactory(kind="dealer", name="华润经销商", is_organization=True)
    asset = Asset.objects.create(customer=customer, name="1栋101", dealer=dealer)
    for score in (4, 5):
        made = make_ticket(service_agent, customer, desk, asset=asset)
        services.ticket_message_add(by=service_agent, ticket=made, body="收到")
        deliver_messages()
        Ticket.objects.filter(pk=made.pk).update(satisfaction=score)
    with CaptureQueriesContext(connection) as captured:
        response = login(admin_user).get(reverse("service:dealer_report"))
    assertContains(response, "华润经销商")
    assertContains(response, "100.0%")
    assertContains(response, "4.5")
    report_queries = [
        q for q in captured.captured_queries if "service_ticket" in q["sql"]
    ]
    assert len(report_queries) == 1


# --- the public intake form --------------------------------------------------------------


def test_public_form_files_a_ticket_and_shows_the_reference(client, desk):
    response = client.post(
        reverse("intake"),
        {
            "name": "李女士",
            "phone": "13900001111",
            "ticket_type": "repair",
            "description": "3栋电梯不动了",
        },
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 302
    done = client.get(response["Location"])
    ticket = Ticket.objects.get()
    assert ticket.channel == Ticket.Channel.WEB
    reference = re.sub(
        r"\s",
        "",
        re.search(
            r'data-testid="intake-reference">([^<]+)<', done.content.decode()
        ).group(1),
    )
    assert reference == ticket.reference


def test_public_form_is_throttled_per_phone(client, desk, settings):
    settings.KEHU_INTAKE_PER_PHONE_HOUR = 2
    data = {
        "name": "李女士",
        "phone": "13900001111",
        "ticket_type": "complaint",
        "description": "噪音扰民",
    }
    for _ in range(2):
        assert client.post(reverse("intake"), data).status_code == 302
    response = client.post(reverse("intake"), data)
    assertContains(response, "该号码提交太频繁", status_code=400)
    assert Ticket.objects.count() == 2


def test_public_form_rejects_a_bad_phone(client, desk):
    response = client.post(
        reverse("intake"),
        {"name": "李", "phone": "123", "ticket_type": "repair", "description": "x"},
    )
    assert response.status_code == 400
    assert not Ticket.objects.exists()


def test_public_form_keeps_csrf(desk):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        reverse("intake"),
        {
            "name": "李",
            "phone": "13900001111",
            "ticket_type": "repair",
            "description": "x",
        },
    )
    assert response.status_code == 403


def test_thank_you_page_needs_a_submission(client, db):
    response = client.get(reverse("intake") + "?done=1")
    assertContains(response, "在线报修与投诉")


# --- home and navigation -----------------------------------------------------------------


def test_service_home_summarises_the_agents_queue(login, desk, customer, service_agent):
    mine = make_ticket(service_agent, customer, desk, priority=Priority.URGENT)
    make_ticket(service_agent, customer, None)
    response = login(service_agent).get(reverse("home"))
    assertContains(response, mine.reference)
    assertContains(response, 'data-testid="unassigned-count">1<')
    assertContains(response, "服务台")
    assertContains(response, "后台工单")


def test_navigation_hides_back_office_for_users_without_a_team(login, admin_user):
    response = login(admin_user).get(QUEUE_URL)
    assertContains(response, "服务台")
    assertNotContains(response, ">后台工单<")
