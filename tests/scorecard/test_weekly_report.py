"""The weekly culture report (每周文化报告): the five worst cases by hand, the PDF with
Chinese text, the scheduled action that sends once per week to managers only, the
command and the download from the scorecard page."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from crm.accounts.roles import Role
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from culture.satisfaction.models import RecoveryTask
from culture.scorecard import weekly_report
from tests.factories import UserFactory
from tests.scorecard.test_personal import survey

pytestmark = pytest.mark.django_db


@pytest.fixture
def week():
    """Last week's key and its Monday 00:00 (local)."""
    key = weekly_report.week_key(timezone.localdate() - dt.timedelta(days=7))
    monday, _sunday = weekly_report.week_days(key)
    start = timezone.make_aware(
        dt.datetime.combine(monday, dt.time.min), timezone.get_current_timezone()
    )
    return key, start


def at(start, day, hour=10):
    return start + dt.timedelta(days=day, hours=hour)


def close(s):
    now = timezone.now()
    return RecoveryTask.objects.create(
        survey=s,
        customer=s.customer,
        assignee=s.staff,
        due_at=s.answered_at + dt.timedelta(hours=24),
        status=RecoveryTask.Status.DONE,
        called_back_at=now,
        closed_at=now,
        outcome=RecoveryTask.Outcome.RESOLVED,
    )


def open_task(s):
    return RecoveryTask.objects.create(
        survey=s,
        customer=s.customer,
        assignee=s.staff,
        due_at=s.answered_at + dt.timedelta(hours=24),
    )


@pytest.fixture
def cases(week, sales_rep):
    key, start = week
    made = {
        "csat1_tue": survey(sales_rep, score=1, answered=at(start, 1)),
        "nps0_mon": survey(sales_rep, score=0, answered=at(start, 0), kind="nps"),
        "csat3_wed": survey(sales_rep, score=3, answered=at(start, 2)),
        "nps6_thu": survey(sales_rep, score=6, answered=at(start, 3), kind="nps"),
        "csat2_done": survey(sales_rep, score=2, answered=at(start, 3)),
        "csat2_fri": survey(sales_rep, score=2, answered=at(start, 4)),
        "csat5": survey(sales_rep, score=5, answered=at(start, 4)),
        "csat1_before": survey(sales_rep, score=1, answered=at(start, -1)),
        "nps3_sat": survey(sales_rep, score=3, answered=at(start, 5), kind="nps"),
    }
    open_task(made["nps0_mon"])
    close(made["csat2_done"])
    return made


def test_the_five_worst_cases_by_hand(week, cases):
    key, _start = week
    worst = weekly_report.worst_cases(key)
    # Lowest on its own scale first (CSAT 1 and NPS 0 are both the bottom: the one that
    # waited longer first), then CSAT 2 (0.25), NPS 3 (0.3), CSAT 3 (0.5); NPS 6 (0.6)
    # is sixth. The recovered CSAT 2, the CSAT 5 and last week's answer are not cases.
    assert [s.pk for s in worst] == [
        cases[name].pk
        for name in ("nps0_mon", "csat1_tue", "csat2_fri", "nps3_sat", "csat3_wed")
    ]
    assert worst[0].recovery_status == RecoveryTask.Status.OPEN
    assert worst[1].recovery_status is None


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_has_the_scorecard_and_the_cases_in_chinese(week, cases, manager):
    key, _start = week
    data = weekly_report.render_pdf(weekly_report.report_data(user=manager, key=key))
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "每周文化报告" in text
    assert "满意率" in text  # a scorecard figure's label
    assert "最差的五个案例" in text
    assert cases["csat1_tue"].customer.name in text
    assert cases["nps6_thu"].customer.name not in text  # sixth
    # The font is embedded (Chinese prints on a machine without it).
    fonts = str(PdfReader(io.BytesIO(data)).pages[0]["/Resources"]["/Font"])
    assert "Noto" in str(
        [
            f.get_object()["/BaseFont"]
            for f in PdfReader(io.BytesIO(data))
            .pages[0]["/Resources"]["/Font"]
            .values()
        ]
    ), fonts


@pytest.fixture
def staff(manager, sales_rep, service_agent, admin_user):
    second = UserFactory(username="manager_b", role=Role.MANAGER)
    for n, user in enumerate([manager, second, sales_rep, service_agent, admin_user]):
        user.email = f"user{n}@example.com"
        user.save()
    away = UserFactory(username="manager_left", role=Role.MANAGER, is_active=False)
    away.email = "left@example.com"
    away.save()
    return {"managers": {manager.email, second.email}}


def test_the_action_sends_once_a_week_to_managers_only(week, cases, staff):
    key, _start = week
    action = scheduler.action_schedule(
        kind=weekly_report.KIND,
        target_id=0,
        due_at=weekly_report.send_at(key),
        key=weekly_report.action_key(key),
    )
    assert timezone.localtime(action.due_at).weekday() == 0
    assert timezone.localtime(action.due_at).time() == dt.time(8, 0)
    # One beat: the sweep claims what is due, a worker delivers it.
    assert scheduler.actions_sweep() == [action.pk]
    assert scheduler.action_deliver(action_id=action.pk)
    assert ScheduledAction.objects.get(pk=action.pk).state == "done"
    assert {m.to[0] for m in mail.outbox} == staff["managers"]
    assert all(len(m.to) == 1 for m in mail.outbox)
    message = mail.outbox[0]
    assert key in message.subject and "每周文化报告" in message.subject
    ((name, content, kind),) = message.attachments
    assert name == f"culture-report-{key}.pdf" and kind == "application/pdf"
    assert "满意率" in pdf_text(content)
    assert cases["csat1_tue"].customer.name in message.body
    # A redelivery after a crash (the handler runs again), or the command by hand:
    # nothing goes twice.
    weekly_report.handler(ScheduledAction.objects.get(pk=action.pk))
    call_command("culture_report", "--week", key)
    assert len(mail.outbox) == 2
    # The run armed the report of the week under way, due next Monday 08:00.
    this_week = weekly_report.week_key(timezone.localdate())
    nxt = ScheduledAction.objects.get(
        idempotency_key=weekly_report.action_key(this_week)
    )
    assert nxt.state == "pending" and nxt.kind == weekly_report.KIND
    assert timezone.localtime(nxt.due_at).date() > timezone.localdate() - dt.timedelta(
        days=1
    )


def test_arming_twice_makes_one_action():
    weekly_report.schedule_next()
    weekly_report.schedule_next()
    assert ScheduledAction.objects.filter(kind=weekly_report.KIND).count() == 1


def test_week_keys():
    assert weekly_report.week_days("2026-W49") == (
        dt.date(2026, 11, 30),
        dt.date(2026, 12, 6),
    )
    for bad in ["2026-49", "2026-W54", "", "9999-W01", "2026-W00"]:
        with pytest.raises(ValueError):
            weekly_report.week_days(bad)
    tz = timezone.get_current_timezone()
    monday_7 = dt.datetime(2026, 12, 7, 7, 59, tzinfo=tz)
    assert weekly_report.last_week_key(monday_7) == "2026-W48"
    assert weekly_report.last_week_key(monday_7 + dt.timedelta(minutes=1)) == "2026-W49"


def test_the_command_sends_a_copy_to_an_address(week, cases, manager, tmp_path):
    key, _start = week
    call_command("culture_report", "--week", key, "--to", "boss@example.com")
    assert [m.to for m in mail.outbox] == [["boss@example.com"]]
    pdf = tmp_path / "r.pdf"
    call_command("culture_report", "--week", key, "--pdf", str(pdf))
    assert "满意率" in pdf_text(pdf.read_bytes())


def test_a_manager_downloads_the_pdf_from_the_scorecard_page(login, manager, sales_rep):
    client = login(manager)
    page = client.get(reverse("scorecard:scorecard")).content.decode()
    assert reverse("scorecard_report:pdf") in page
    response = client.get(reverse("scorecard_report:pdf"), {"week": "2026-W49"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "culture-report-2026-W49.pdf" in response["Content-Disposition"]
    assert "满意率" in pdf_text(response.content)
    # A nonsense week is last week's report.
    response = client.get(reverse("scorecard_report:pdf"), {"week": "x"})
    assert weekly_report.last_week_key() in response["Content-Disposition"]
    assert login(sales_rep).get(reverse("scorecard_report:pdf")).status_code == 403
