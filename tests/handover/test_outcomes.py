"""The outcome of a unit's handover (issue 17 part 3): each outcome and its rule, a
refused rule writing nothing, the no-show sweep, the board's counters against a
recount, the pages' access rule, and two outcome posts at once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from service.defects.models import Defect
from service.handover import events, outcomes
from service.handover.models import (
    Appointment,
    CaseLog,
    RefusalEvidence,
    RefusalRecord,
    TimeSlot,
    UnitHandover,
)
from tests.handover.builders import make_event
from tests.handover.outcome_builders import (
    add_defect,
    board,
    finish_stations,
    make_case,
    ready_to_accept,
    recount,
    sign,
)
from tests.handover.scope_builders import (
    buildings_of,
    make_project,
    owned_unit_in_scope,
)
from tests.handover.test_customer_merge_race import Holder, Worker, _wait_until_blocked

State = UnitHandover.State
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def finished(monkeypatch):
    """The appointments handover_finished was called with."""
    seen: list[int] = []
    monkeypatch.setattr(events, "_finished_hooks", [lambda a: seen.append(a.pk)])
    return seen


def _snapshot(case):
    case.refresh_from_db()
    return (
        case.state,
        case.version,
        CaseLog.objects.filter(case=case).count(),
        board(case.event),
    )


def _refused(call, case, text):
    before = _snapshot(case)
    with pytest.raises(outcomes.OutcomeRefused) as refused:
        call()
    assert text in refused.value.message
    assert _snapshot(case) == before
    return refused.value


# --- accepted --------------------------------------------------------------------------------


def test_accepted_when_every_rule_holds(
    admin_user, service_agent, finished, django_capture_on_commit_callbacks
):
    case = ready_to_accept(make_case(admin_user))
    with django_capture_on_commit_callbacks(execute=True):
        outcomes.case_accept(case, by=service_agent, version=case.version)
    assert case.state == State.ACCEPTED
    assert case.outcome_by == service_agent and case.outcome_at and case.finished_at
    log = CaseLog.objects.get(case=case, action="outcome")
    assert (log.from_state, log.to_state, log.actor) == (
        State.IN_PROGRESS,
        State.ACCEPTED,
        service_agent,
    )
    assert finished == [case.appointment_id]
    assert board(case.event) == recount(case.event)
    assert board(case.event)[f"case:{State.ACCEPTED}"] == 1
    assert f"case:{State.IN_PROGRESS}" not in board(case.event)


def test_not_accepted_while_a_required_station_is_open(admin_user, finished):
    case = make_case(admin_user)
    sign(case)
    UnitHandover.objects.filter(pk=case.pk).update(key_action="owner")
    finish_stations(case, except_codes=["fees", "meters"])
    case.refresh_from_db()
    _refused(
        lambda: outcomes.case_accept(case, by=admin_user, version=case.version),
        case,
        "以下必经站点尚未完成：缴费、水电气抄表。",
    )
    assert finished == []


def test_the_acceptance_and_survey_stations_need_not_be_done_first(admin_user):
    case = ready_to_accept(make_case(admin_user))
    case.visits.filter(station__code__in=["acceptance", "survey"]).update(
        state="waiting"
    )
    case.visits.filter(station__code="meters").update(state="skipped")
    outcomes.case_accept(case, by=admin_user, version=case.version)
    assert case.state == State.ACCEPTED


def test_not_accepted_without_signature_or_keys(admin_user):
    case = make_case(admin_user)
    finish_stations(case)
    case.refresh_from_db()
    refused = _refused(
        lambda: outcomes.case_accept(case, by=admin_user, version=case.version),
        case,
        "尚未登记钥匙去向。",
    )
    assert "业主尚未在签收确认上签名。" in refused.message


def test_accepted_refused_while_defects_are_open(admin_user):
    case = ready_to_accept(make_case(admin_user))
    add_defect(case, admin_user)
    add_defect(case, admin_user, state=Defect.State.CLOSED)
    _refused(
        lambda: outcomes.case_accept(case, by=admin_user, version=case.version),
        case,
        "本户有 1 项问题未关闭，请选择“带问题收楼”。",
    )


def test_accepted_with_open_defects(admin_user, finished):
    case = ready_to_accept(make_case(admin_user))
    add_defect(case, admin_user, state=Defect.State.IN_PROGRESS)
    add_defect(case, admin_user, state=Defect.State.VOID)
    outcomes.case_accept(case, by=admin_user, version=case.version, with_defects=True)
    assert case.state == State.ACCEPTED_WITH_DEFECTS
    assert case.outcome_note == "带 1 项未关闭问题收楼"
    assert board(case.event) == recount(case.event)


def test_accepted_with_defects_refused_without_open_defects(admin_user):
    case = ready_to_accept(make_case(admin_user))
    add_defect(case, admin_user, state=Defect.State.CLOSED)
    _refused(
        lambda: outcomes.case_accept(
            case, by=admin_user, version=case.version, with_defects=True
        ),
        case,
        "本户没有未关闭的问题，请选择“收楼”。",
    )


def test_accepted_with_defects_still_needs_the_signature(admin_user):
    case = make_case(admin_user)
    finish_stations(case)
    UnitHandover.objects.filter(pk=case.pk).update(key_action="custody")
    add_defect(case, admin_user)
    case.refresh_from_db()
    _refused(
        lambda: outcomes.case_accept(
            case, by=admin_user, version=case.version, with_defects=True
        ),
        case,
        "业主尚未在签收确认上签名。",
    )


def test_an_outcome_is_final(admin_user):
    case = ready_to_accept(make_case(admin_user))
    outcomes.case_accept(case, by=admin_user, version=case.version)
    _refused(
        lambda: outcomes.case_refuse(
            case,
            by=admin_user,
            version=case.version,
            reason="quality",
            details="漏水",
            notice_deadline=timezone.localdate(),
            evidence=[SimpleUploadedFile("a.png", PNG, "image/png")],
        ),
        case,
        "交房单当前为“已收楼”，不能再登记结果。",
    )


def test_a_stale_version_is_refused(admin_user):
    case = ready_to_accept(make_case(admin_user))
    _refused(
        lambda: outcomes.case_accept(case, by=admin_user, version=case.version - 1),
        case,
        "交房单已被他人修改",
    )


def test_a_user_without_a_role_may_not_decide(admin_user, readonly_user):
    from django.core.exceptions import PermissionDenied

    case = ready_to_accept(make_case(admin_user))
    with pytest.raises(PermissionDenied):
        outcomes.case_accept(case, by=readonly_user, version=case.version)


# --- not accepted ----------------------------------------------------------------------------


def test_not_accepted_keeps_the_reinspection_date(admin_user, finished):
    case = make_case(admin_user)
    day = timezone.localdate() + dt.timedelta(days=7)
    outcomes.case_not_accepted(
        case,
        by=admin_user,
        version=case.version,
        reason="卫生间渗水，业主不签收",
        reinspection_on=day,
    )
    assert case.state == State.NOT_ACCEPTED
    assert case.reinspection_on == day
    assert case.outcome_note == "卫生间渗水，业主不签收"
    assert finished == []
    assert board(case.event) == recount(case.event)


@pytest.mark.parametrize(
    ("reason", "days", "message"),
    [
        ("  ", 3, "请填写业主不签收的原因。"),
        ("不签", -1, "复验日期不能早于今天。"),
    ],
)
def test_not_accepted_needs_a_reason_and_a_date_ahead(
    admin_user, reason, days, message
):
    case = make_case(admin_user)
    _refused(
        lambda: outcomes.case_not_accepted(
            case,
            by=admin_user,
            version=case.version,
            reason=reason,
            reinspection_on=timezone.localdate() + dt.timedelta(days=days),
        ),
        case,
        message,
    )


# --- refused ---------------------------------------------------------------------------------


def test_refused_with_its_record_and_evidence(
    admin_user, finished, django_capture_on_commit_callbacks
):
    case = make_case(admin_user)
    deadline = timezone.localdate() + dt.timedelta(days=15)
    with django_capture_on_commit_callbacks(execute=True):
        outcomes.case_refuse(
            case,
            by=admin_user,
            version=case.version,
            reason="area",
            details="实测面积比合同面积少 4%",
            owner_statement="要求先解决面积问题",
            notice_deadline=deadline,
            evidence=[
                SimpleUploadedFile("a.png", PNG, "image/png"),
                SimpleUploadedFile("b.png", PNG, "image/png"),
            ],
        )
    assert case.state == State.REFUSED
    refusal = RefusalRecord.objects.get(case=case)
    assert (refusal.reason, refusal.notice_deadline, refusal.recorded_by) == (
        "area",
        deadline,
        admin_user,
    )
    assert RefusalEvidence.objects.filter(refusal=refusal).count() == 2
    assert board(case.event) == recount(case.event)
    # a refused handover is finished: its owner gets the satisfaction survey
    assert finished == [case.appointment_id]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"evidence": []}, "请上传至少一份拒收证据照片。"),
        ({"reason": "weather"}, "请选择拒收原因。"),
        ({"details": " "}, "请填写拒收的详细说明。"),
        (
            {"evidence": [SimpleUploadedFile("a.png", PNG)] * 11},
            "证据最多上传 10 份。",
        ),
    ],
)
def test_refusal_needs_its_record(admin_user, changes, message):
    case = make_case(admin_user)
    arguments = {
        "reason": "quality",
        "details": "墙面大面积开裂",
        "notice_deadline": timezone.localdate(),
        "evidence": [SimpleUploadedFile("a.png", PNG, "image/png")],
        **changes,
    }
    _refused(
        lambda: outcomes.case_refuse(
            case, by=admin_user, version=case.version, **arguments
        ),
        case,
        message,
    )
    assert not RefusalRecord.objects.exists()


# --- absent ----------------------------------------------------------------------------------


def _booked(admin_user, event, *, unit=True):
    slot = event.slots.order_by("date", "start_time").first()
    building = buildings_of(make_project())[0]
    event_unit, owner = owned_unit_in_scope(event, building)
    appointment = Appointment.objects.create(
        event=event,
        slot=slot,
        customer=owner,
        event_unit=event_unit if unit else None,
        unit=event_unit.unit.label,
        created_by=admin_user,
    )
    TimeSlot.objects.filter(pk=slot.pk).update(booked_count=1)
    return appointment


def test_the_daily_sweep_records_each_no_show_once(admin_user):
    event = make_event(admin_user, slots_per_day=1)
    missed = _booked(admin_user, event)
    day_after = missed.slot.date + dt.timedelta(days=1)
    assert outcomes.no_shows_record(today=missed.slot.date) == 0  # the day is not over
    assert outcomes.no_shows_record(today=day_after) == 1
    case = UnitHandover.objects.get(appointment=missed)
    assert (case.state, case.round, case.checked_in_at) == (State.ABSENT, 1, None)
    assert case.customer_id == missed.customer_id
    assert CaseLog.objects.filter(case=case, action="no_show").count() == 1
    missed.refresh_from_db()
    assert missed.state == Appointment.State.CANCELLED
    assert TimeSlot.objects.get(pk=missed.slot_id).booked_count == 0
    assert board(event) == recount(event)
    assert outcomes.no_shows_record(today=day_after) == 0


def test_the_sweep_leaves_checked_in_and_unscoped_appointments(admin_user):
    event = make_event(admin_user, slots_per_day=1)
    arrived = _booked(admin_user, event)
    Appointment.objects.filter(pk=arrived.pk).update(state="checked_in")
    _booked(admin_user, event, unit=False)
    day_after = arrived.slot.date + dt.timedelta(days=1)
    assert outcomes.no_shows_record(today=day_after) == 0
    assert not UnitHandover.objects.exists()


def test_the_no_show_round_follows_the_units_earlier_cases(admin_user):
    case = make_case(admin_user)
    outcomes.case_not_accepted(
        case,
        by=admin_user,
        version=case.version,
        reason="不签收",
        reinspection_on=timezone.localdate(),
    )
    Appointment.objects.filter(pk=case.appointment_id).update(state="cancelled")
    again = Appointment.objects.create(
        event=case.event,
        slot=case.appointment.slot,
        customer=case.customer,
        event_unit=case.event_unit,
        created_by=admin_user,
        state=Appointment.State.BOOKED,
    )
    assert outcomes.no_show_record(
        again.pk, today=again.slot.date + dt.timedelta(days=1)
    )
    assert UnitHandover.objects.get(appointment=again).round == 2


def test_staff_choose_the_next_step_of_a_no_show(admin_user, service_agent):
    event = make_event(admin_user, slots_per_day=1)
    missed = _booked(admin_user, event)
    outcomes.no_shows_record(today=missed.slot.date + dt.timedelta(days=1))
    case = UnitHandover.objects.get(appointment=missed)
    outcomes.no_show_next(
        case, by=service_agent, version=case.version, next_step="scattered"
    )
    assert case.no_show_next == "scattered"
    assert CaseLog.objects.filter(case=case, action="no_show_next").exists()


def test_only_a_no_show_gets_a_next_step(admin_user):
    case = make_case(admin_user)
    _refused(
        lambda: outcomes.no_show_next(
            case, by=admin_user, version=case.version, next_step="second_notice"
        ),
        case,
        "只有未到访的交房单才能安排后续。",
    )


def test_counters_equal_a_recount_after_a_mix_of_outcomes(admin_user):
    event = make_event(admin_user, slots_per_day=1, capacity=20)
    cases = [make_case(admin_user, event=event) for _ in range(5)]
    ready_to_accept(cases[0])
    outcomes.case_accept(cases[0], by=admin_user, version=cases[0].version)
    ready_to_accept(cases[1])
    add_defect(cases[1], admin_user)
    outcomes.case_accept(
        cases[1], by=admin_user, version=cases[1].version, with_defects=True
    )
    outcomes.case_not_accepted(
        cases[2],
        by=admin_user,
        version=cases[2].version,
        reason="不签收",
        reinspection_on=timezone.localdate(),
    )
    outcomes.case_refuse(
        cases[3],
        by=admin_user,
        version=cases[3].version,
        reason="group",
        details="群体拒收",
        notice_deadline=timezone.localdate(),
        evidence=[SimpleUploadedFile("a.png", PNG, "image/png")],
    )
    with pytest.raises(outcomes.OutcomeRefused):  # refused: writes nothing
        outcomes.case_accept(cases[4], by=admin_user, version=cases[4].version)
    missed = _booked(admin_user, event)
    outcomes.no_shows_record(today=missed.slot.date + dt.timedelta(days=1))
    assert board(event) == recount(event)


# --- the pages -------------------------------------------------------------------------------


def test_the_outcome_page_shows_the_panels(admin_user, login):
    case = make_case(admin_user)
    response = login(admin_user).get(reverse("handover:case_outcome", args=[case.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    for panel in (
        "case-outcomes",
        "capture-fees",
        "capture-acceptance",
        "outcome-blockers",
    ):
        assert panel in body


def test_accept_post_redirects_to_next(admin_user, service_agent, login):
    case = ready_to_accept(make_case(admin_user))
    url = reverse("handover:case_accept", args=[case.pk])
    response = login(service_agent).post(
        url, {"version": case.version, "next": "/handover/"}
    )
    assert response.status_code == 302 and response.url == "/handover/"
    case.refresh_from_db()
    assert case.state == State.ACCEPTED


def test_accept_post_refused_shows_why(admin_user, login):
    case = make_case(admin_user)
    response = login(admin_user).post(
        reverse("handover:case_accept", args=[case.pk]),
        {"version": case.version, "next": "https://evil.example/"},
    )
    assert response.status_code == 400
    assert "业主尚未在签收确认上签名。" in response.content.decode()
    case.refresh_from_db()
    assert case.state == State.IN_PROGRESS


def test_accept_post_with_a_stale_version(admin_user, login):
    case = ready_to_accept(make_case(admin_user))
    response = login(admin_user).post(
        reverse("handover:case_accept", args=[case.pk]), {"version": case.version + 1}
    )
    assert response.status_code == 400
    assert "交房单已被他人修改" in response.content.decode()


def test_refuse_post_checks_each_evidence_file(admin_user, login):
    case = make_case(admin_user)
    data = {
        "version": case.version,
        "reason": "quality",
        "details": "漏水",
        "notice_deadline": timezone.localdate().isoformat(),
    }
    client = login(admin_user)
    url = reverse("handover:case_refuse", args=[case.pk])
    fake = SimpleUploadedFile("photo.png", b"MZ not a picture", "image/png")
    response = client.post(url, {**data, "evidence": [fake]})
    assert response.status_code == 400
    assert "内容与扩展名不符" in response.content.decode()
    assert not RefusalRecord.objects.exists()
    response = client.post(url, data)
    assert response.status_code == 400
    assert "请上传至少一份拒收证据照片。" in response.content.decode()
    photo = SimpleUploadedFile("photo.png", PNG, "image/png")
    response = client.post(url, {**data, "evidence": [photo]})
    assert response.status_code == 302
    assert RefusalEvidence.objects.filter(refusal__case=case).count() == 1


def test_refusal_evidence_is_a_download_for_who_sees_the_case(
    admin_user, sales_rep, readonly_user, login
):
    case = make_case(admin_user)
    outcomes.case_refuse(
        case,
        by=admin_user,
        version=case.version,
        reason="quality",
        details="漏水",
        notice_deadline=timezone.localdate(),
        evidence=[SimpleUploadedFile("photo.png", PNG, "image/png")],
    )
    evidence = RefusalEvidence.objects.get(refusal__case=case)
    url = reverse("handover:refusal_evidence", args=[evidence.pk])
    page = login(sales_rep).get(reverse("handover:case_outcome", args=[case.pk]))
    assert url in page.content.decode()
    response = login(sales_rep).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert login(readonly_user).get(url).status_code == 403
    case.event.status = "draft"
    case.event.save(update_fields=["status"])
    assert login(sales_rep).get(url).status_code == 404


def test_not_accepted_post_bounds_the_date(admin_user, login):
    case = make_case(admin_user)
    response = login(admin_user).post(
        reverse("handover:case_not_accepted", args=[case.pk]),
        {"version": case.version, "reason": "不签", "reinspection_on": "9999-01-01"},
    )
    assert response.status_code == 400
    case.refresh_from_db()
    assert case.state == State.IN_PROGRESS


def test_no_show_next_post(admin_user, login):
    event = make_event(admin_user, slots_per_day=1)
    missed = _booked(admin_user, event)
    outcomes.no_shows_record(today=missed.slot.date + dt.timedelta(days=1))
    case = UnitHandover.objects.get(appointment=missed)
    client = login(admin_user)
    page = client.get(reverse("handover:case_outcome", args=[case.pk]))
    assert "outcome-no-show-next" in page.content.decode()
    response = client.post(
        reverse("handover:case_no_show_next", args=[case.pk]),
        {"version": case.version, "next_step": "second_notice"},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.no_show_next == "second_notice"


OUTCOME_URLS = ("case_accept", "case_not_accepted", "case_refuse", "case_no_show_next")


def test_the_outcome_panel_alone_links_back_to_its_page(admin_user, login):
    case = make_case(admin_user)
    response = login(admin_user).get(
        reverse("handover:case_outcome_panel", args=[case.pk]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/handover/events/1/stations/2/?x=1",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and 'data-testid="case-outcomes"' in body
    assert 'name="next" value="/handover/events/1/stations/2/?x=1"' in body


@pytest.mark.parametrize("name", ("case_outcome", "case_outcome_panel", *OUTCOME_URLS))
def test_access_rule(admin_user, readonly_user, sales_rep, manager, name, login):
    case = make_case(admin_user)
    url = reverse(f"handover:{name}", args=[case.pk])
    method = "get" if name.startswith("case_outcome") else "post"
    anonymous = getattr(Client(), method)(url)
    assert anonymous.status_code == 302 and "login" in anonymous.url
    assert getattr(login(readonly_user), method)(url).status_code == 403
    # Every staff role works at the stations; a case of a draft event is not theirs.
    assert getattr(login(sales_rep), method)(url).status_code in (200, 400)
    case.event.status = "draft"
    case.event.save(update_fields=["status"])
    assert getattr(login(sales_rep), method)(url).status_code == 404
    assert getattr(login(manager), method)(url).status_code in (200, 400)
    missing = reverse(f"handover:{name}", args=[987654321])
    assert getattr(login(manager), method)(missing).status_code == 404


def test_outcome_posts_need_the_csrf_token(admin_user):
    case = ready_to_accept(make_case(admin_user))
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(
        reverse("handover:case_accept", args=[case.pk]), {"version": case.version}
    )
    assert response.status_code == 403
    case.refresh_from_db()
    assert case.state == State.IN_PROGRESS


def test_get_is_not_allowed_on_outcome_posts(admin_user, login):
    case = make_case(admin_user)
    response = login(admin_user).get(reverse("handover:case_accept", args=[case.pk]))
    assert response.status_code == 405


# --- two posts at once -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_outcomes_at_once_one_wins(admin_user, service_agent):
    case = ready_to_accept(make_case(admin_user))
    version = case.version

    holder = Holder(lambda: outcomes.case_accept(case, by=admin_user, version=version))
    holder.start()
    assert holder.started_work.wait(timeout=20)
    assert isinstance(holder.result, UnitHandover), holder.result

    def refuse():
        try:
            return outcomes.case_not_accepted(
                UnitHandover.objects.get(pk=case.pk),
                by=service_agent,
                version=version,
                reason="不签收",
                reinspection_on=timezone.localdate(),
            )
        finally:
            connection.close()

    worker = Worker(refuse)
    worker.start()
    assert worker.has_pid.wait(timeout=20)
    _wait_until_blocked(worker.pid)
    holder.release.set()
    holder.join(timeout=30)
    worker.join(timeout=30)
    assert isinstance(worker.result, outcomes.OutcomeConflict), worker.result
    case.refresh_from_db()
    assert case.state == State.ACCEPTED
    assert CaseLog.objects.filter(case=case, action="outcome").count() == 1
    assert board(case.event) == recount(case.event)


def test_outcome_rolls_back_with_its_transaction(admin_user):
    case = ready_to_accept(make_case(admin_user))
    before = board(case.event)
    with pytest.raises(RuntimeError), transaction.atomic():
        outcomes.case_accept(case, by=admin_user, version=case.version)
        raise RuntimeError
    assert board(case.event) == before
    assert UnitHandover.objects.get(pk=case.pk).state == State.IN_PROGRESS


def test_two_threads_reading_the_same_version(admin_user):
    """Without threads: the second of two posts made from one page is refused."""
    case = ready_to_accept(make_case(admin_user))
    version = case.version
    outcomes.case_accept(case, by=admin_user, version=version)
    with pytest.raises(outcomes.OutcomeConflict):
        outcomes.case_accept(
            UnitHandover.objects.get(pk=case.pk), by=admin_user, version=version
        )


def test_the_daily_task_runs_the_sweep(admin_user, settings):
    from service.handover import tasks

    event = make_event(admin_user, slots_per_day=1, days_ahead=0)
    missed = _booked(admin_user, event)
    assert tasks.no_shows_task() == 0  # its day is today: not missed yet
    assert "handover-no-shows" in settings.CELERY_BEAT_SCHEDULE
    assert (
        outcomes.missed_appointments(missed.slot.date + dt.timedelta(days=1))
        .filter(pk=missed.pk)
        .exists()
    )
