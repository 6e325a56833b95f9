"""Surveys sent after a case, at most once, by SMS or e-mail with a personal link; the
answer page behind it; one reminder (docs/satisfaction.md)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.core import mail
from django.db import connections
from django.utils import timezone

from crm.channels.backends import RecordingSmsBackend
from crm.channels.models import OutboundMessage
from culture.satisfaction import links, services
from culture.satisfaction.models import Survey
from service import services as service_services
from service.models import Ticket
from tests.channels.delivery import deliver_messages
from tests.factories import CustomerFactory, TicketFactory, WorkOrderFactory
from tests.satisfaction.helpers import link_path, resolve, resolved_ticket, run_due

pytestmark = pytest.mark.django_db


def _survey_of(ticket: Ticket) -> Survey:
    return Survey.objects.get(ticket=ticket)


# --- triggers: once per case ------------------------------------------------------------


def test_a_resolved_ticket_sends_one_csat_survey_by_sms_with_a_link_that_opens(
    client, service_agent, sms_folder, django_capture_on_commit_callbacks
):
    ticket = resolved_ticket(
        service_agent,
        django_capture_on_commit_callbacks,
        assignee=service_agent,
        team=service_agent.team,
    )

    survey = _survey_of(ticket)
    assert (survey.kind, survey.status, survey.channel) == ("csat", "sent", "sms")
    assert survey.team == service_agent.team and survey.staff == service_agent
    deliver_messages()
    recorded = RecordingSmsBackend().recorded()
    assert len(recorded) == 1
    assert recorded[0]["to"] == ticket.customer.phone
    assert ticket.reference in recorded[0]["body"]

    page = client.get(link_path(recorded[0]["body"]))
    assert page.status_code == 200
    assert "您对工单" in page.content.decode()
    assert 'data-testid="score-5"' in page.content.decode()


def test_without_a_mobile_the_survey_goes_by_email_and_without_either_it_is_unreachable(
    service_agent, sms_folder, django_capture_on_commit_callbacks
):
    by_mail = resolved_ticket(
        service_agent,
        django_capture_on_commit_callbacks,
        customer=CustomerFactory(phone="01088886666", email="li@example.com"),
    )
    nowhere = resolved_ticket(
        service_agent,
        django_capture_on_commit_callbacks,
        customer=CustomerFactory(phone="", email=""),
    )
    deliver_messages()

    assert _survey_of(by_mail).channel == "email"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["li@example.com"]
    assert "/s/" in mail.outbox[0].body
    assert _survey_of(nowhere).status == Survey.Status.UNREACHABLE
    assert RecordingSmsBackend().recorded() == []


def test_resolving_twice_or_after_a_reopen_asks_once(
    service_agent, sms_folder, django_capture_on_commit_callbacks
):
    ticket = resolved_ticket(service_agent, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = service_services.ticket_transition(
            by=service_agent, ticket=ticket, to_status="in_progress"
        )
    resolve(ticket, service_agent, django_capture_on_commit_callbacks)
    # The hook called again for the same ticket (a redelivered event) makes nothing.
    assert services.survey_for_ticket(ticket) is None

    assert Survey.objects.filter(ticket=ticket).count() == 1
    assert OutboundMessage.objects.filter(purpose=services.SURVEY_PURPOSE).count() == 1


def test_a_completed_back_office_order_rates_its_department(
    service_agent, sms_folder, django_capture_on_commit_callbacks
):
    ticket = TicketFactory(status="in_progress")
    done = WorkOrderFactory(ticket=ticket, status="done", completed_at=timezone.now())
    WorkOrderFactory(ticket=ticket, status="cancelled")

    resolve(ticket, service_agent, django_capture_on_commit_callbacks)

    assert _survey_of(ticket).department == done.department


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_triggers_make_one_survey(service_agent, sms_folder):
    ticket = TicketFactory(status="resolved", resolved_at=timezone.now())
    barrier = threading.Barrier(2)
    made: list = []

    def trigger() -> None:
        try:
            barrier.wait()
            made.append(services.survey_for_ticket(ticket))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Survey.objects.filter(ticket=ticket).count() == 1
    assert len([survey for survey in made if survey is not None]) == 1
    assert OutboundMessage.objects.filter(purpose=services.SURVEY_PURPOSE).count() == 1


def test_a_handover_check_in_sends_one_nps_survey(
    admin_user, sales_rep, sms_folder, django_capture_on_commit_callbacks
):
    from service.handover import services as handover
    from tests.handover.builders import make_event, slots_of

    event = make_event(admin_user)
    slot = slots_of(event)[0]
    customer = CustomerFactory(owner=sales_rep)
    appointment = handover.appointment_book(slot=slot, customer=customer, by=sales_rep)
    local = timezone.get_current_timezone()
    with time_machine.travel(dt.datetime.combine(slot.date, dt.time(9, 30), local)):
        with django_capture_on_commit_callbacks(execute=True):
            handover.appointment_check_in(appointment, by=sales_rep)

    survey = Survey.objects.get(appointment=appointment)
    assert (survey.source, survey.kind) == ("handover", "nps")
    assert survey.staff == sales_rep and survey.team == sales_rep.team
    assert services.survey_for_handover(appointment) is None


# --- the link -----------------------------------------------------------------------------


@pytest.fixture
def survey(service_agent, sms_folder, django_capture_on_commit_callbacks):
    ticket = resolved_ticket(service_agent, django_capture_on_commit_callbacks)
    return _survey_of(ticket)


def _path(survey: Survey) -> str:
    return link_path(links.url_for(survey))


def test_one_tap_records_the_score_and_the_link_then_says_thank_you(client, survey):
    path = _path(survey)

    answered = client.post(path, {"score": "4", "comment": " 师傅很准时 "})
    assert answered.status_code == 200, answered.content.decode()
    assert "已提交，谢谢" in answered.content.decode()
    survey.refresh_from_db()
    assert (survey.status, survey.score, survey.comment) == (
        "answered",
        4,
        "师傅很准时",
    )
    assert survey.nonce == ""
    assert Ticket.objects.get(pk=survey.ticket_id).satisfaction == 4

    # The same link again, opened or posted: the thank-you page, no second answer.
    again = client.post(path, {"score": "1"})
    assert again.status_code == 200 and "无需再次提交" in again.content.decode()
    assert client.get(path).status_code == 200
    survey.refresh_from_db()
    assert survey.score == 4


def test_a_tampered_link_is_404_and_an_expired_one_410(client, survey, settings):
    path = _path(survey)
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]
    assert client.get(tampered).status_code == 404
    assert client.get("/s/not-a-token/").status_code == 404

    later = timezone.now() + dt.timedelta(days=settings.KEHU_SURVEY_LINK_DAYS, hours=1)
    with time_machine.travel(later):
        expired = client.get(path)
        assert expired.status_code == 410
        assert "评价链接已过期" in expired.content.decode()
        assert client.post(path, {"score": "5"}).status_code == 410
    survey.refresh_from_db()
    assert survey.answered_at is None


def test_a_score_out_of_the_scale_is_refused(client, survey):
    assert client.post(_path(survey), {"score": "9"}).status_code == 400
    assert client.post(_path(survey), {}).status_code == 400
    survey.refresh_from_db()
    assert survey.answered_at is None


def test_the_public_form_works_with_csrf_checks_and_no_login(survey):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    path = _path(survey)
    page = browser.get(path)
    token = page.cookies["csrftoken"].value
    assert browser.post(path, {"score": "5"}).status_code == 403
    answered = browser.post(path, {"score": "5", "csrfmiddlewaretoken": token})
    assert answered.status_code == 200
    survey.refresh_from_db()
    assert survey.score == 5


def test_posts_are_rate_limited_per_address(client, survey, settings):
    settings.KEHU_SURVEY_PER_IP_HOUR = 2
    path = _path(survey)
    assert client.post(path, {"score": "99"}).status_code == 400
    assert client.post(path, {"score": "99"}).status_code == 400
    assert client.post(path, {"score": "5"}).status_code == 429
    survey.refresh_from_db()
    assert survey.answered_at is None


# --- the reminder -------------------------------------------------------------------------


def test_one_reminder_while_unanswered(survey, settings):
    deliver_messages()
    due = timezone.now() + dt.timedelta(hours=settings.KEHU_SURVEY_REMINDER_HOURS + 1)
    assert run_due(services.REMIND, due)
    deliver_messages(due)
    texts = [sms["body"] for sms in RecordingSmsBackend().recorded()]
    assert len(texts) == 2 and "温馨提醒" in texts[1]
    assert link_path(texts[1]) == link_path(texts[0])

    # Delivered again (a worker crash after it ran): nothing more leaves.
    services.survey_remind(type("Action", (), {"target_id": survey.pk})())
    assert run_due(services.REMIND, due + dt.timedelta(days=1)) == []
    deliver_messages(due + dt.timedelta(days=1))
    assert len(RecordingSmsBackend().recorded()) == 2


def test_no_reminder_after_the_answer(client, survey, settings):
    deliver_messages()
    client.post(_path(survey), {"score": "5"})
    due = timezone.now() + dt.timedelta(hours=settings.KEHU_SURVEY_REMINDER_HOURS + 1)
    assert run_due(services.REMIND, due) == []
    services.survey_remind(type("Action", (), {"target_id": survey.pk})())
    deliver_messages(due)
    assert len(RecordingSmsBackend().recorded()) == 1


def test_surveys_past_their_link_become_expired(survey, settings):
    later = timezone.now() + dt.timedelta(days=settings.KEHU_SURVEY_LINK_DAYS + 1)
    assert services.surveys_expire(now=later) == 1
    survey.refresh_from_db()
    assert survey.status == Survey.Status.EXPIRED


def test_the_answer_shows_on_the_customers_timeline(client, survey, login, admin_user):
    client.post(_path(survey), {"score": "2", "comment": "等了三天"})
    from customers import timeline

    entries, _cursor = timeline.entries(survey.customer)
    surveys = [entry for entry in entries if entry.kind == "survey"]
    assert len(surveys) == 1
    assert "2 / 5" in surveys[0].title and surveys[0].body == "等了三天"


def test_the_ticket_page_shows_the_survey_and_its_answer(
    client, survey, login, admin_user
):
    client.post(_path(survey), {"score": "2", "comment": "等了三天"})
    page = login(admin_user).get(survey.ticket.get_absolute_url())
    html = page.content.decode()
    assert 'data-testid="survey-panel"' in html
    assert 'data-testid="survey-score"' in html and "等了三天" in html


def test_an_unhappy_answer_opens_one_recovery_task_and_a_happy_one_none(
    client, service_agent, sms_folder, django_capture_on_commit_callbacks
):
    from culture.satisfaction.models import RecoveryTask

    unhappy = _survey_of(
        resolved_ticket(
            service_agent, django_capture_on_commit_callbacks, team=service_agent.team
        )
    )
    happy = _survey_of(
        resolved_ticket(service_agent, django_capture_on_commit_callbacks)
    )
    path = _path(unhappy)

    page = client.post(path, {"score": "2", "comment": "没人联系我"})
    assert "24 小时内与您联系" in page.content.decode()
    client.post(path, {"score": "1"})
    client.post(_path(happy), {"score": "5"})

    task = RecoveryTask.objects.get()
    assert task.survey == unhappy and task.customer == unhappy.customer


def test_a_refused_handover_sends_one_nps_survey_and_a_failed_inspection_none(
    admin_user, sms_folder, django_capture_on_commit_callbacks
):
    """Through the real hook: 拒收 ends the handover (survey); 验收未通过 does not."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from service.handover import outcomes
    from tests.handover.outcome_builders import make_case
    from tests.handover.test_outcomes import PNG

    refused, failed = make_case(admin_user), make_case(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        outcomes.case_refuse(
            refused,
            by=admin_user,
            version=refused.version,
            reason="area",
            details="实测面积比合同面积少 4%",
            notice_deadline=timezone.localdate() + dt.timedelta(days=15),
            evidence=[SimpleUploadedFile("a.png", PNG, "image/png")],
        )
        outcomes.case_not_accepted(
            failed,
            by=admin_user,
            version=failed.version,
            reason="卫生间渗水",
            reinspection_on=timezone.localdate() + dt.timedelta(days=7),
        )

    survey = Survey.objects.get(appointment_id=refused.appointment_id)
    assert (survey.source, survey.kind) == ("handover", "nps")
    assert not Survey.objects.filter(appointment_id=failed.appointment_id).exists()
