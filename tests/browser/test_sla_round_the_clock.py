"""Issue 13's "Done when": a 24×7 urgent ticket breaches on a Sunday night and escalates.

A real Celery worker and beat (crm/scheduler/testing.start_pipeline) sweep the test
database every second. The 电梯困人 ticket is opened with a fixed clock, last Sunday at
22:00, under the urgent-repair policy that counts 24×7 (15 minutes to the first
response): its breach at 22:15 and the managers' stage after it are long due, so the
worker delivers them as soon as it sweeps. Under business hours the same ticket would
have been due on Monday at 09:15 (tests/service/test_sla_round_the_clock.py). The lead
sees it in the browser: the breach, the escalation, the 24×7 calendar and the bell.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler.testing import (
    RunningPipeline,
    database_url,
    start_pipeline,
    stop_pipeline,
)
from service import calendar_data, services
from service.models import SLAPolicy
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    SLAPolicyFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pipeline(transactional_db: None, tmp_path: Path) -> Iterator[RunningPipeline]:
    running = start_pipeline(
        tmp_path,
        database_url(connection.settings_dict),
        sweep_seconds=1,
        lease_seconds=10,
        worker_name="kehu-browser-24x7",
    )
    try:
        yield running
    finally:
        stop_pipeline(running)


def last_sunday_night() -> datetime:
    """22:00 local on the latest Sunday whose 22:15 breach is at least a minute past."""
    now = timezone.localtime()
    sunday = now.date() - timedelta(days=(now.weekday() - 6) % 7)
    at = timezone.make_aware(datetime(sunday.year, sunday.month, sunday.day, 22))
    if at + timedelta(minutes=16) > now:
        at -= timedelta(days=7)
    return at


def test_a_24x7_urgent_ticket_breaches_on_a_sunday_night_and_escalates(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    pipeline: RunningPipeline,
    service_agent: User,
) -> None:
    calendar_data.calendar_seed()
    team = service_agent.team
    lead = UserFactory(
        username="night_lead", display_name="夜班组长", team=team, role=Role.SERVICE
    )
    team.lead = lead
    team.save(update_fields=["lead"])
    boss = UserFactory(
        username="desk_boss",
        team=TeamFactory(name="客服管理组", department=team.department),
        role=Role.MANAGER,
    )
    SLAPolicyFactory(
        name="报修·紧急",
        ticket_type="repair",
        priority="urgent",
        first_response_minutes=15,
        resolution_minutes=240,
        warn_before_minutes=5,
        calendar=SLAPolicy.Calendar.ROUND_THE_CLOCK,
    )
    sunday_night = last_sunday_night()
    assert sunday_night.weekday() == 6
    ticket = services.ticket_create(
        by=service_agent,
        customer=CustomerFactory(name="赵先生"),
        ticket_type="repair",
        channel="hotline",
        priority="urgent",
        subject="电梯困人",
        description="3号楼电梯停在8楼与9楼之间，有人被困。",
        category=CategoryFactory(name="电梯", team=team),
        now=sunday_night,
    )
    assert ticket.first_response_due_at == sunday_night + timedelta(minutes=15)

    log_in(lead)
    page.goto(ticket.get_absolute_url())
    expect(page.get_by_test_id("sla-calendar")).to_contain_text("24×7")
    expect(page.get_by_test_id("sla-calendar")).to_contain_text("全天候计时")

    # The worker sweeps every second: the breach and the managers' stage are due.
    escalation = page.get_by_test_id("escalation")
    deadline = time.monotonic() + 60
    while escalation.count() == 0 or "经理" not in escalation.inner_text():
        assert time.monotonic() < deadline, "no escalation within 60 s"
        time.sleep(1)
        page.reload()
    header = page.get_by_test_id("ticket-header")
    expect(header.get_by_test_id("breach").first).to_have_text("首次响应超时")
    expect(escalation).to_have_text("已升级到经理")
    expect(page.get_by_test_id("remaining")).to_contain_text("已超时")
    page.screenshot(path=artifacts_dir / "flow13-24x7-zh.png", full_page=True)

    ticket.refresh_from_db()
    assert ticket.first_response_breached and ticket.escalation_level == 2
    ref = ticket.reference
    # The first-response breach; the resolution clock (due Monday 02:00) may have
    # breached too, depending on when the test runs.
    assert Notification.objects.filter(
        recipient=lead, title=f"已超时（首次响应），升级到组长：{ref}"
    ).exists()
    assert Notification.objects.filter(
        recipient=boss, title=f"超时未处理，升级到经理：{ref}"
    ).exists()

    # The lead's bell: the escalation is there, and leads to the ticket.
    expect(page.get_by_test_id("unread-count")).not_to_have_count(0)
    page.get_by_test_id("bell").click()
    expect(page.locator("main")).to_contain_text(f"升级到组长：{ref}")
    with page.expect_navigation():
        page.locator("main").get_by_text(f"升级到组长：{ref}").first.click()
    expect(page.get_by_test_id("sla-calendar")).to_contain_text("24×7")

    # The same page in English says which calendar it counts.
    page.context.add_cookies(
        [{"name": "django_language", "value": "en", "url": page.url}]
    )
    page.reload()
    expect(page.get_by_test_id("sla-calendar")).to_contain_text("24×7")
    page.screenshot(path=artifacts_dir / "flow13-24x7-en.png", full_page=True)
    assert page_problems == []
