"""A customer on a phone (375×667) opens the survey link from the recorded SMS and
answers with one tap, in a real headless Chromium against the live server: a 2 is
recorded, the page thanks them, and the link then takes no second answer; an NPS
question's eleven buttons fit the phone too. Screenshots: test-artifacts/survey-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from crm.channels.backends import RecordingSmsBackend
from culture.satisfaction import services
from culture.satisfaction.models import RecoveryTask, Survey
from tests.channels.delivery import deliver_messages
from tests.factories import CustomerFactory, TicketFactory
from tests.satisfaction.helpers import link_path

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 667}


@pytest.fixture
def recorded_sms(settings, tmp_path):
    settings.KEHU_SMS_BACKEND = "crm.channels.backends.RecordingSmsBackend"
    settings.KEHU_SMS_FILE_PATH = str(tmp_path / "sms")
    settings.KEHU_PUBLIC_URL = "https://kehu.example.com"


def _fits_the_phone(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width}px wide on a 375px phone"


def test_a_customer_answers_2_with_one_tap_on_a_phone(
    page: Page,
    page_problems: list[str],
    artifacts_dir: Path,
    recorded_sms,
    service_agent,
) -> None:
    ticket = TicketFactory(
        status="resolved", resolved_at=timezone.now(), team=service_agent.team
    )
    survey = services.survey_for_ticket(ticket)
    deliver_messages()
    sms = RecordingSmsBackend().recorded()[0]["body"]

    page.set_viewport_size(PHONE)
    page.goto(link_path(sms))
    expect(page.get_by_test_id("survey-form")).to_contain_text(ticket.reference)
    expect(page.locator("button.score")).to_have_count(5)
    _fits_the_phone(page)
    page.screenshot(path=artifacts_dir / "survey-1-question.png", full_page=True)

    with page.expect_navigation():
        page.get_by_test_id("score-2").click()
    expect(page.get_by_test_id("survey-thanks")).to_contain_text("已提交，谢谢")
    _fits_the_phone(page)
    page.screenshot(path=artifacts_dir / "survey-2-thanks.png", full_page=True)

    survey.refresh_from_db()
    assert (survey.status, survey.score) == (Survey.Status.ANSWERED, 2)
    assert RecoveryTask.objects.filter(survey=survey).count() == 1

    page.goto(link_path(sms))
    expect(page.get_by_test_id("survey-thanks")).to_contain_text("无需再次提交")
    assert page_problems == []


def test_the_nps_question_fits_a_phone(
    page: Page, page_problems: list[str], artifacts_dir: Path, recorded_sms, sales_rep
) -> None:
    from culture.satisfaction import links
    from culture.satisfaction.models import SurveyKind

    customer = CustomerFactory(owner=sales_rep)
    survey = Survey.objects.create(
        source=Survey.Source.CAMPAIGN,
        kind=SurveyKind.NPS,
        customer=customer,
        campaign=_campaign(sales_rep),
        nonce=links.new_nonce(),
        expires_at=links.expiry_from(timezone.now()),
        status=Survey.Status.SENT,
    )
    page.set_viewport_size(PHONE)
    page.goto(link_path(links.url_for(survey)))
    expect(page.locator("button.score")).to_have_count(11)
    _fits_the_phone(page)
    page.screenshot(path=artifacts_dir / "survey-3-nps.png", full_page=True)
    assert page_problems == []


def _campaign(by):
    from culture.satisfaction.models import Campaign
    from culture.segments.models import Segment

    segment = Segment.objects.create(name="回访", kind="static", owner=by)
    return Campaign.objects.create(
        name="回访", segment=segment, kind="nps", channel="sms", created_by=by
    )
