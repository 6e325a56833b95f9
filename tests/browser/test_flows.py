"""The "Done when" flows of issues 4 and 5, in a real headless Chromium, end to end.

A real Celery worker and beat run as separate processes (as `make run` starts them, as
in tests/reliability) against the test database and a private Redis, sweeping every
second. So the rows the browser creates must be committed: transactional tests.

1. Issue 4: a salesperson finds a customer by pinyin initials, logs a call with a next
   step half a minute or so away, sees it in "my day", gets the reminder in the bell at
   the due time (and its e-mail), and gets the 404 page for another team's customer.
2. Issue 5: a service agent takes a complaint by phone for an existing customer (timed,
   under a minute), sees the SLA clock, opens a work order to 工程部, and the ticket
   escalates to the team lead when its one-business-minute first response passes.

Screenshots of each step go to test-artifacts/flow4-*.png and flow5-*.png, timings to
test-artifacts/browser-flows.json.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from crm.accounts.models import User
from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler.testing import (
    RedisServer,
    database_url,
    read_mail_log,
    start_pipeline,
    stop_pipeline,
)
from crm.supervisor import Supervisor
from customers.models import ContactLog, FollowUp
from service.models import CalendarDay, Ticket, WorkingPeriod, WorkOrder
from tests.browser.conftest import PASSWORD
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    DepartmentFactory,
    SLAPolicyFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TIMINGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser-flows.json"
# How late after its due time a reminder or an escalation may show, at a 1 s sweep.
DELIVERY_SLACK_S = 30


# --- the real Celery worker and beat ---------------------------------------------------


@dataclass
class Pipeline:
    folder: Path
    redis: RedisServer
    supervisor: Supervisor
    mail_log: Path

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for path in sorted(self.folder.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"==> {path.name} <==\n" + "\n".join(tail))
        return "\n".join(parts)


@pytest.fixture
def pipeline(transactional_db: None, tmp_path: Path) -> Iterator[Pipeline]:
    """Worker (prefork, -c 2) and beat against the test database, sweeping every second.

    Started before the browser work so that it is warm when the first action is due.
    """
    running = start_pipeline(
        tmp_path,
        database_url(connection.settings_dict),
        sweep_seconds=1,
        lease_seconds=10,
        worker_name="kehu-browser",
    )
    pipe = Pipeline(
        folder=tmp_path,
        redis=running.redis,
        supervisor=running.supervisor,
        mail_log=running.mail_log,
    )
    try:
        yield pipe
    finally:
        stop_pipeline(running)


# --- helpers -------------------------------------------------------------------------------


def record_timing(flow: str, figures: dict[str, Any]) -> None:
    """Print the figures and merge them into test-artifacts/browser-flows.json."""
    figures = {"recorded_at": timezone.now().isoformat(), **figures}
    print(f"[browser-flows] {flow}: {json.dumps(figures, ensure_ascii=False)}")  # noqa: T201 - the timings are an output
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    try:
        stored = json.loads(TIMINGS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    stored[flow] = figures
    TIMINGS.write_text(
        json.dumps(stored, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def poll(check: Callable[[], bool], *, deadline: float, interval: float = 0.5) -> bool:
    """Call `check` until it is true or the monotonic `deadline` has passed."""
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def bell_has_unread(page: Page) -> bool:
    """The bell partial, fetched with the page's session as its htmx poll does."""
    response = page.request.get("/notifications/bell/")
    assert response.ok, response.status
    return 'data-testid="unread-count"' in response.text()


def log_in_context(browser: Browser, live_server: LiveServer, user: User) -> Page:
    """A second person's browser (own cookies), logged in through the form."""
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(15_000)
    other = context.new_page()
    other.goto("/accounts/login/")
    form = other.locator("main form")
    form.locator("input[name=username]").fill(user.username)
    form.locator("input[name=password]").fill(PASSWORD)
    with other.expect_navigation():
        form.locator("[type=submit]").click()
    return other


def next_minute_at_least(seconds: int) -> datetime:
    """The first whole minute (local time) at least `seconds` from now.

    A datetime-local input with the default step takes whole minutes only, so "in about
    half a minute" is the next minute boundary 30-90 s away.
    """
    soon = timezone.localtime() + timedelta(seconds=seconds)
    if soon.second or soon.microsecond:
        soon = soon.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return soon


# --- issue 4: the salesperson's day ---------------------------------------------------------


def test_salesperson_logs_a_call_by_pinyin_and_is_reminded_at_the_due_time(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    pipeline: Pipeline,
    sales_rep: User,
    teammate: User,
    outsider: User,
) -> None:
    sales_rep.email = "sales_a@example.com"
    sales_rep.save(update_fields=["email"])
    target = CustomerFactory(name="张三丰", owner=sales_rep)
    CustomerFactory(name="张三", owner=sales_rep)  # initials zs: not a match for zsf
    CustomerFactory(name="李四光", owner=teammate)
    # Initials zsf too, but another team's: neither found nor openable.
    other_team = CustomerFactory(name="赵思芳", owner=outsider)

    log_in(sales_rep)
    expect(page.get_by_test_id("home-title")).to_have_text("我的一天")

    # Find the customer by pinyin initials: htmx swaps the results as one types.
    page.locator("#kehu-nav").get_by_role("link", name="客户", exact=True).click()
    expect(page).to_have_url(re.compile(r"/customers/$"))
    results = page.locator("#customer-results")
    expect(results).to_contain_text("李四光")
    search = page.get_by_role("searchbox", name="搜索客户")
    with page.expect_response(lambda r: "/customers/?" in r.url and "q=zsf" in r.url):
        search.press_sequentially("zsf", delay=60)
    expect(results.get_by_role("link", name="张三丰", exact=True)).to_be_visible()
    expect(results).not_to_contain_text("李四光")
    expect(results.get_by_role("link", name="张三", exact=True)).to_have_count(0)
    expect(results).not_to_contain_text("赵思芳")
    expect(results).to_contain_text("共 1 位客户")
    expect(page).to_have_url(re.compile(r"/customers/\?.*q=zsf"))  # hx-push-url
    page.screenshot(path=artifacts_dir / "flow4-1-search-zsf.png", full_page=True)

    with page.expect_navigation():
        results.get_by_role("link", name="张三丰", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/customers/{target.pk}/$"))
    expect(page.locator("main h1")).to_contain_text("张三丰")
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("还没有任何往来记录")

    # Log the call with a next step about half a minute away.
    form = page.get_by_test_id("contact-form")
    form.get_by_label("渠道").select_option(label="电话")
    summary = "电话沟通：客户想了解三期的价格和交房时间，约好稍后回电报价。"
    form.get_by_label("内容摘要").fill(summary)
    form.get_by_text("更多").click()
    form.get_by_label("下一步", exact=True).fill("回电报价")
    due = next_minute_at_least(30)
    next_step_at = form.locator("input[name=next_step_at]")
    expect(next_step_at).to_have_attribute("type", "datetime-local")
    next_step_at.fill(due.strftime("%Y-%m-%dT%H:%M"))
    due_in_when_set = (due - timezone.now()).total_seconds()
    page.screenshot(path=artifacts_dir / "flow4-2-contact-form.png", full_page=True)
    with page.expect_response(
        lambda r: (
            r.url.endswith(f"/customers/{target.pk}/contacts/")
            and r.request.method == "POST"
        )
    ):
        form.get_by_role("button", name="保存").click()
    saved = page.get_by_test_id("contact-saved")
    expect(saved).to_be_visible()
    expect(saved).to_contain_text("已安排跟进")
    # The timeline refreshed itself: the call, and the follow-up its next step made.
    entries = timeline.get_by_test_id("timeline-entry")
    expect(entries).to_have_count(2)
    expect(entries.filter(has_text="电话")).to_contain_text(summary)
    expect(entries.filter(has_text="跟进：回电报价")).to_contain_text(
        timezone.localtime(due).strftime("%H:%M")
    )
    # The quick form came back empty, ready for the next call, and the page never reloaded.
    expect(page.get_by_test_id("contact-form").get_by_label("内容摘要")).to_have_value(
        ""
    )
    page.screenshot(path=artifacts_dir / "flow4-3-contact-saved.png", full_page=True)

    log = ContactLog.objects.get(customer=target)
    assert log.channel == ContactLog.Channel.PHONE
    followup = FollowUp.objects.get(customer=target)
    assert followup.assignee_id == sales_rep.pk
    assert followup.due_at == due, (followup.due_at, due)
    assert followup.note == "回电报价"

    # "My day" lists it, not yet overdue, and the bell is still quiet.
    page.locator("#kehu-nav").get_by_role("link", name="首页").click()
    expect(page.get_by_test_id("home-title")).to_have_text("我的一天")
    due_list = page.get_by_test_id("due-followups")
    if timezone.localtime(due).date() == timezone.localdate():
        expect(due_list).to_contain_text("张三丰")
        expect(due_list).to_contain_text("回电报价")
        expect(due_list).to_contain_text(due.strftime("%H:%M"))
    else:  # a run across midnight: tomorrow's follow-ups are listed further down
        expect(page.locator("main")).to_contain_text("之后的跟进")
    page.screenshot(path=artifacts_dir / "flow4-4-my-day.png", full_page=True)
    assert timezone.now() < due, "the page steps took longer than the follow-up's lead"
    assert not bell_has_unread(page), "a reminder arrived before its due time"

    # The worker's sweep delivers the reminder at the due time; the bell shows it.
    deadline = time.monotonic() + (due - timezone.now()).total_seconds()
    deadline += DELIVERY_SLACK_S
    arrived = poll(lambda: bell_has_unread(page), deadline=deadline)
    seen_at = timezone.now()
    assert arrived, (
        f"no reminder in the bell by due + {DELIVERY_SLACK_S} s\n{pipeline.log_tails()}"
    )
    assert seen_at >= due
    page.reload()
    badge = page.get_by_test_id("unread-count")
    expect(badge).to_have_text("1")
    page.screenshot(path=artifacts_dir / "flow4-5-bell.png", full_page=True)

    notification = Notification.objects.get(recipient=sales_rep)
    assert notification.title == "跟进到期：张三丰"
    assert notification.created_at >= due
    lateness = (notification.created_at - due).total_seconds()
    assert lateness < DELIVERY_SLACK_S
    attempts, torn = read_mail_log(pipeline.mail_log)
    assert torn == 0
    assert [a["key"] for a in attempts] == [f"followup:{followup.pk}:remind"]
    assert attempts[0]["to"] == ["sales_a@example.com"]

    page.get_by_test_id("bell").click()
    expect(page.locator("main")).to_contain_text("跟进到期：张三丰")
    expect(page.locator("main")).to_contain_text("回电报价")
    page.screenshot(path=artifacts_dir / "flow4-6-notifications.png", full_page=True)

    # Another team's customer, even one that matches the same initials: the 404 page.
    response = page.goto(f"/customers/{other_team.pk}/")
    assert response is not None and response.status == 404
    expect(page.locator("main h1")).to_have_text("404")
    expect(page.locator("main")).to_contain_text("找不到您要的页面或记录。")
    assert "赵思芳" not in page.content()
    page.screenshot(path=artifacts_dir / "flow4-7-other-team-404.png", full_page=True)

    record_timing(
        "issue4_salesperson",
        {
            "due_in_s_when_set": round(due_in_when_set, 1),
            "reminder_lateness_s": round(lateness, 2),
            "bell_seen_after_due_s": round((seen_at - due).total_seconds(), 2),
        },
    )
    assert page_problems == []


# --- issue 5: a complaint by phone ------------------------------------------------------------


@pytest.fixture
def service_desk(service_agent: User) -> dict[str, Any]:
    """A complaint SLA of one business minute on a calendar that is open right now."""
    desk_team = service_agent.team
    lead = UserFactory(
        username="service_lead",
        display_name="客服组长",
        team=desk_team,
        role=Role.SERVICE,
    )
    desk_team.lead = lead
    desk_team.save(update_fields=["lead"])
    category = CategoryFactory(name="物业投诉", team=desk_team)
    SLAPolicyFactory(
        name="投诉·高（测试：1 分钟首次响应）",
        ticket_type="complaint",
        priority="high",
        first_response_minutes=1,
        resolution_minutes=480,
        warn_before_minutes=30,
    )
    WorkingPeriod.objects.all().delete()
    WorkingPeriod.objects.bulk_create(
        WorkingPeriod(weekday=day, start=clock_time(0, 0), end=clock_time(23, 59, 59))
        for day in range(7)
    )
    today = timezone.localdate()
    CalendarDay.objects.filter(date__in=[today, today + timedelta(days=1)]).delete()
    engineering = DepartmentFactory(name="工程部")
    TeamFactory(name="工程一组", department=engineering)
    owner = UserFactory(username="sales_owner", role=Role.SALES)
    caller = CustomerFactory(name="王美丽", owner=owner)
    CustomerFactory(name="王美华", owner=owner)
    CustomerFactory(name="李大锤", owner=owner)
    return {"lead": lead, "category": category, "caller": caller}


def test_service_agent_takes_a_complaint_in_a_minute_and_it_escalates_at_breach(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    chromium: Browser,
    live_server: LiveServer,
    pipeline: Pipeline,
    service_agent: User,
    service_desk: dict[str, Any],
) -> None:
    lead: User = service_desk["lead"]
    caller = service_desk["caller"]
    log_in(service_agent)
    expect(page.get_by_test_id("home-title")).to_have_text("客服工作台")

    # --- the phone rings: find the caller, fill in the complaint, save (timed) ---
    started = time.monotonic()
    page.goto("/service/new/")
    lookup = page.get_by_role("searchbox", name="查找客户")
    expect(lookup).to_be_focused()  # autofocus: the agent types straight away
    lookup.press_sequentially("王美", delay=60)
    choices = page.get_by_test_id("customer-choices")
    expect(choices.get_by_role("link")).to_have_count(2)
    page.screenshot(path=artifacts_dir / "flow5-1-lookup.png", full_page=True)
    with page.expect_navigation():
        choices.get_by_role("link", name="王美丽").click()
    expect(page.locator("main h1")).to_contain_text("新建工单：王美丽")

    form = page.get_by_test_id("ticket-form")
    form.get_by_label("类型").select_option(label="投诉")
    form.get_by_label("优先级").select_option(label="高")
    form.get_by_label("分类").select_option(label="物业投诉")
    form.get_by_label("主题").fill("楼上漏水，天花板发霉")
    form.get_by_label("描述").fill(
        "客户来电：楼上卫生间漏水一周，客厅天花板发霉，物业一直未处理，情绪激动。"
    )
    page.screenshot(path=artifacts_dir / "flow5-2-ticket-form.png", full_page=True)
    with page.expect_navigation():
        form.get_by_role("button", name="创建工单").click()
    reference = page.get_by_test_id("reference")
    expect(reference).to_be_visible()
    took = time.monotonic() - started
    print(f"[browser-flows] complaint taken in {took:.1f} s (login excluded)")  # noqa: T201

    ticket = Ticket.objects.select_related("sla_policy").get(customer=caller)
    created_mono = (
        time.monotonic() - (timezone.now() - ticket.created_at).total_seconds()
    )
    expect(reference).to_have_attribute("title", ticket.reference)
    expect(page).to_have_url(re.compile(rf"/service/t/{ticket.reference}/$"))
    assert ticket.ticket_type == "complaint" and ticket.priority == "high"
    assert ticket.team_id == service_agent.team_id
    assert ticket.assignee_id == service_agent.pk  # round robin, lowest id first
    assert ticket.first_response_due_at is not None
    first_due = ticket.first_response_due_at
    assert 59 <= (first_due - ticket.created_at).total_seconds() <= 61

    # The SLA clock: the first-response due time and what is left.
    sla = page.get_by_test_id("sla")
    expect(sla).to_contain_text("首次响应")
    expect(sla).to_contain_text(timezone.localtime(first_due).strftime("%m-%d %H:%M"))
    expect(sla).to_contain_text("投诉·高（测试：1 分钟首次响应）")
    expect(page.get_by_test_id("remaining")).to_contain_text("剩")
    expect(page.get_by_test_id("escalation")).to_have_count(0)
    page.screenshot(path=artifacts_dir / "flow5-3-ticket.png", full_page=True)
    assert took < 60, f"taking the complaint took {took:.1f} s"

    # --- a work order to engineering, due tomorrow at 17:00 ---
    work_orders = page.get_by_test_id("work-orders")
    work_orders.locator("summary", has_text="发起后台工单").click()
    work_orders.get_by_label("后台部门").select_option(label="工程部")
    work_orders.get_by_label("事项").fill("检查楼上卫生间防水")
    order_due = (timezone.localtime() + timedelta(days=1)).replace(
        hour=17, minute=0, second=0, microsecond=0
    )
    work_orders.get_by_label("完成时限").fill(order_due.strftime("%Y-%m-%dT%H:%M"))
    work_orders.get_by_label("说明").fill("请工程部上门查看楼上卫生间防水层。")
    with page.expect_navigation():
        work_orders.get_by_role("button", name="发出").click()
    expect(page.locator(".alert-success")).to_contain_text("已向工程部发出后台工单")
    row = page.get_by_test_id("work-orders").locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("工程部")
    expect(row).to_contain_text("检查楼上卫生间防水")
    expect(row).to_contain_text(order_due.strftime("%m-%d %H:%M"))
    order = WorkOrder.objects.get(ticket=ticket)
    assert order.department.name == "工程部"
    assert order.due_at == order_due
    page.screenshot(path=artifacts_dir / "flow5-4-work-order.png", full_page=True)

    # --- nobody answers the customer: at the breach the ticket escalates to the lead ---
    escalation = page.get_by_test_id("escalation")

    def escalated() -> bool:
        page.reload()
        return escalation.count() == 1

    deadline = created_mono + 120
    assert poll(escalated, deadline=deadline, interval=1), (
        f"no escalation within 120 s of creation\n{pipeline.log_tails()}"
    )
    escalated_after = time.monotonic() - created_mono
    expect(escalation).to_have_text("已升级到组长")
    header = page.get_by_test_id("ticket-header")
    expect(header.get_by_test_id("breach")).to_have_text("首次响应超时")
    expect(page.get_by_test_id("remaining")).to_contain_text("已超时")
    page.screenshot(path=artifacts_dir / "flow5-5-escalated.png", full_page=True)

    ticket.refresh_from_db()
    assert ticket.first_response_breached and ticket.escalation_level == 1
    to_lead = Notification.objects.get(recipient=lead)
    assert to_lead.title == f"已超时（首次响应），升级到组长：{ticket.reference}"
    assert to_lead.url == ticket.get_absolute_url()
    assert to_lead.created_at >= first_due
    lateness = (to_lead.created_at - first_due).total_seconds()
    assert lateness < DELIVERY_SLACK_S
    # The assignee is told too, once (besides the "new ticket" note of the assignment).
    to_agent = Notification.objects.filter(recipient=service_agent)
    assert to_agent.filter(title__contains="升级到组长").count() == 1

    # The lead sees it in their own browser: bell count, then the notification.
    lead_page = log_in_context(chromium, live_server, lead)
    try:
        expect(lead_page.get_by_test_id("unread-count")).to_have_text("1")
        lead_page.get_by_test_id("bell").click()
        expect(lead_page.locator("main")).to_contain_text(
            f"升级到组长：{ticket.reference}"
        )
        lead_page.screenshot(
            path=artifacts_dir / "flow5-6-lead-notifications.png", full_page=True
        )
        with lead_page.expect_navigation():
            lead_page.locator("main").get_by_text(ticket.reference).click()
        expect(lead_page.get_by_test_id("escalation")).to_have_text("已升级到组长")
    finally:
        lead_page.context.close()

    record_timing(
        "issue5_service_agent",
        {
            "complaint_taken_s": round(took, 1),
            "escalated_seen_after_creation_s": round(escalated_after, 1),
            "escalation_lateness_s": round(lateness, 2),
        },
    )
    assert page_problems == []
