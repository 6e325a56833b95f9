"""The re-inspection of a 验收未通过 unit (issue 17): every outcome finishes (办结) the
case's appointment, which keeps its seat and its checked-in state but no longer holds
the unit; staff book the re-inspection from the case page (same event, or a later
event of the project); its check-in opens round 2. Bad input re-renders with the
reason and writes nothing; the not-accepted list says whether it is booked."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count, Q
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from culture.segments import rules
from service.handover import (
    case_timeline,
    counters,
    onsite,
    onsite_selectors,
    outcomes,
    owner_selectors,
    readiness,
    reinspection,
    scope_selectors,
    selectors,
    services,
)
from service.handover.models import (
    Appointment,
    CaseLog,
    HandoverEvent,
    TimeSlot,
    UnitHandover,
)
from tests.handover.builders import make_event, slots_of
from tests.handover.checkin_builders import at
from tests.handover.outcome_builders import (
    add_defect,
    board,
    make_case,
    ready_to_accept,
    recount,
)
from tests.handover.scope_builders import (
    buildings_of,
    make_project,
    owned_unit_in_scope,
    put_in_scope,
)

pytestmark = pytest.mark.django_db

State = UnitHandover.State
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _seats_match(*events: HandoverEvent) -> None:
    """The capacity rule: booked_count = the slot's active appointments."""
    slots = TimeSlot.objects.filter(event__in=events).annotate(
        n=Count(
            "appointments",
            filter=Q(appointments__state__in=Appointment.ACTIVE_STATES),
        )
    )
    for slot in slots:
        assert slot.booked_count == slot.n, slot
        assert slot.booked_count <= slot.capacity


def _not_accepted(case: UnitHandover, by, *, on: dt.date) -> UnitHandover:
    return outcomes.case_not_accepted(
        case, by=by, version=case.version, reason="卫生间渗水", reinspection_on=on
    )


def _event_with_days(admin, *, days: int = 3, capacity: int = 3) -> HandoverEvent:
    return make_event(
        admin, days_ahead=1, days=days, slots_per_day=2, capacity=capacity
    )


def _day_slots(event: HandoverEvent, day: int) -> list[TimeSlot]:
    dates = sorted({s.date for s in slots_of(event)})
    return [s for s in slots_of(event) if s.date == dates[day]]


def _decide(case: UnitHandover, by, outcome: str) -> None:
    if outcome == "accepted":
        outcomes.case_accept(ready_to_accept(case), by=by, version=None)
    elif outcome == "accepted_defects":
        add_defect(case, by)
        outcomes.case_accept(
            ready_to_accept(case), by=by, version=None, with_defects=True
        )
    elif outcome == "not_accepted":
        _not_accepted(case, by, on=case.appointment.slot.date)
    else:
        outcomes.case_refuse(
            case,
            by=by,
            version=None,
            reason="quality",
            details="外墙开裂",
            notice_deadline=case.event.end_date,
            evidence=[SimpleUploadedFile("a.png", PNG, content_type="image/png")],
        )


# --- every outcome finishes the appointment ---------------------------------------------------


@pytest.mark.parametrize(
    "outcome", ["accepted", "accepted_defects", "not_accepted", "refused"]
)
def test_every_outcome_finishes_the_appointment_and_keeps_its_seat(admin_user, outcome):
    case = make_case(admin_user)
    appointment = case.appointment
    slot = appointment.slot
    before = TimeSlot.objects.get(pk=slot.pk).booked_count
    assert appointment.finished_at is None
    _decide(case, admin_user, outcome)
    appointment.refresh_from_db()
    case.refresh_from_db()
    assert case.state == outcome
    assert appointment.finished_at == case.outcome_at
    assert appointment.state == Appointment.State.CHECKED_IN  # still counts as arrived
    assert appointment.is_active and not Appointment.objects.current().exists()
    assert TimeSlot.objects.get(pk=slot.pk).booked_count == before
    _seats_match(case.event)
    assert board(case.event) == recount(case.event)


def test_a_refused_outcome_writes_nothing_on_the_appointment(admin_user):
    case = make_case(admin_user)
    with pytest.raises(outcomes.OutcomeRefused):
        outcomes.case_accept(case, by=admin_user, version=case.version)
    case.appointment.refresh_from_db()
    assert case.appointment.finished_at is None


def test_numbers_of_checked_in_units_do_not_change_when_the_visit_finishes(
    admin_user,
):
    case = make_case(admin_user)
    event = case.event
    owner = case.customer

    def segment(operator: str) -> bool:
        tree = {
            "op": "and",
            "rules": [
                {
                    "field": "handover",
                    "operator": operator,
                    "value": {"event": event.pk},
                }
            ],
        }
        found = rules.customers_matching(rules.validate(tree))
        return found.filter(pk=owner.pk).exists()

    def numbers():
        _rows, total = readiness.batch_numbers(event)
        return (
            (total.booked, total.checked_in),
            scope_selectors.scope_totals(event),
            selectors.active_counts(event),
            {op: segment(op) for op in ("booked", "checked_in", "not_booked")},
            sum(s.booked_count for s in event.slots.all()),
        )

    before = numbers()
    _not_accepted(case, admin_user, on=case.appointment.slot.date)
    assert numbers() == before
    assert before[0] == (1, 1)
    assert before[3] == {"booked": True, "checked_in": True, "not_booked": False}
    assert board(event) == recount(event)


# --- booking again: not before the outcome, after it ------------------------------------------


def test_a_second_appointment_is_refused_before_the_outcome_and_booked_after(
    admin_user,
):
    event = _event_with_days(admin_user)
    case = make_case(admin_user, event=event)
    later = _day_slots(event, 2)[0]
    with pytest.raises(services.AlreadyBooked):
        services.appointment_book(
            slot=later,
            customer=case.customer,
            by=admin_user,
            event_unit=case.event_unit,
        )
    with pytest.raises(reinspection.ReinspectionRefused) as refused:
        reinspection.reinspection_book(case, by=admin_user, slot_id=later.pk)
    assert "只有验收未通过的交房单才能预约复验" in refused.value.message
    _not_accepted(case, admin_user, on=later.date)
    appointment = reinspection.reinspection_book(case, by=admin_user, slot_id=later.pk)
    case.refresh_from_db()
    assert case.reinspection_appointment == appointment
    assert appointment.state == Appointment.State.BOOKED
    assert appointment.event_unit == case.event_unit
    assert appointment.slot == later and appointment.customer == case.customer
    log = CaseLog.objects.filter(case=case, action="reinspection_booked").get()
    assert log.actor == admin_user and str(later) in log.note
    assert TimeSlot.objects.get(pk=later.pk).booked_count == 1
    _seats_match(event)
    # The unit holds one current booking again: a third is refused.
    with pytest.raises(services.AlreadyBooked):
        services.appointment_book(
            slot=_day_slots(event, 2)[1],
            customer=case.customer,
            by=admin_user,
            event_unit=case.event_unit,
        )
    with pytest.raises(reinspection.ReinspectionRefused) as again:
        reinspection.reinspection_book(case, by=admin_user, slot_id=later.pk)
    assert "已预约复验" in again.value.message


def test_a_unit_accepted_is_not_booked_again(admin_user):
    event = _event_with_days(admin_user)
    case = make_case(admin_user, event=event)
    outcomes.case_accept(ready_to_accept(case), by=admin_user, version=None)
    with pytest.raises(services.NotBookable) as refused:
        services.appointment_book(
            slot=_day_slots(event, 2)[0],
            customer=case.customer,
            by=admin_user,
            event_unit=case.event_unit,
        )
    assert "已在本次入伙活动中收楼" in refused.value.message


def test_a_cancelled_reinspection_may_be_booked_again(admin_user):
    event = _event_with_days(admin_user)
    case = make_case(admin_user, event=event)
    first, second = _day_slots(event, 2)
    _not_accepted(case, admin_user, on=first.date)
    booked = reinspection.reinspection_book(case, by=admin_user, slot_id=first.pk)
    services.appointment_cancel(booked, by=admin_user)
    again = reinspection.reinspection_book(case, by=admin_user, slot_id=second.pk)
    case.refresh_from_db()
    assert case.reinspection_appointment == again
    _seats_match(event)


# --- round 2 ------------------------------------------------------------------------------


def test_the_reinspection_check_in_opens_round_two(admin_user, service_agent):
    event = _event_with_days(admin_user)
    building = buildings_of(make_project())[0]
    event_unit, owner = owned_unit_in_scope(event, building)
    first_day, third_day = _day_slots(event, 0)[0], _day_slots(event, 2)[0]
    booked = services.appointment_book(
        slot=first_day, customer=owner, by=admin_user, event_unit=event_unit
    )
    with time_machine.travel(at(first_day.date, 9, 20)):
        case = onsite.check_in(booked, by=service_agent)
        _not_accepted(case, service_agent, on=third_day.date)
        again = reinspection.reinspection_book(
            case, by=service_agent, slot_id=third_day.pk
        )
    # The desk, the owner's page and the scope page show the re-inspection booking,
    # not the finished visit.
    desk = onsite_selectors.desk_units(event, event_unit.unit.room)
    assert [u.active_appointment for u in desk] == [again]
    assert owner_selectors.unit_booking(event_unit) == again
    rows, _after = scope_selectors.scope_page(
        event, scope_selectors.ScopeFilters(), after=None
    )
    assert [r.active_bookings[0] for r in rows if r.pk == event_unit.pk] == [again]
    with time_machine.travel(at(third_day.date, 9, 5)):
        round_two = onsite.check_in(again, by=service_agent)
    assert round_two.round == 2 and round_two.event_unit == event_unit
    assert round_two.appointment == again
    assert CaseLog.objects.filter(case=round_two, action="reinspection").exists()
    case.refresh_from_db()
    assert case.state == State.NOT_ACCEPTED  # round 1 keeps its outcome
    titles = [e.title for e in case_timeline.case_entries(owner, None, 20)]
    assert any("预约复验" in title for title in titles)
    _seats_match(event)
    assert counters.recount_differs(event.pk) == {}


def test_a_later_event_of_the_project_takes_the_reinspection(admin_user):
    project = make_project()
    building = buildings_of(project)[0]
    first = make_event(admin_user, days_ahead=1, slots_per_day=1, capacity=1)
    later = make_event(
        admin_user, name="翠湖花园二期零星交付", days_ahead=10, slots_per_day=1
    )
    HandoverEvent.objects.filter(pk__in=[first.pk, later.pk]).update(project=project)
    first.refresh_from_db()
    event_unit, owner = owned_unit_in_scope(first, building)
    later_unit = put_in_scope(later, event_unit.unit)
    slot = slots_of(first)[0]
    booked = services.appointment_book(
        slot=slot, customer=owner, by=admin_user, event_unit=event_unit
    )
    with time_machine.travel(at(slot.date, 9, 20)):
        case = onsite.check_in(booked, by=admin_user)
        _not_accepted(case, admin_user, on=slot.date)
        case.refresh_from_db()
        choices = reinspection.slot_choices(case)
        # The first event's only slot is full (and has begun): the later one's offered.
        assert [c.slot.event_id for c in choices if c.seats > 0] == [later.pk]
        target = slots_of(later)[0]
        again = reinspection.reinspection_book(case, by=admin_user, slot_id=target.pk)
    assert again.event == later and again.event_unit == later_unit
    with time_machine.travel(at(target.date, 9, 5)):
        round_two = onsite.check_in(again, by=admin_user)
    assert round_two.event == later and round_two.round == 2
    _seats_match(first, later)


# --- bad input ------------------------------------------------------------------------------


def _refused(case, by, slot_id, text):
    before = (
        Appointment.objects.count(),
        CaseLog.objects.count(),
        UnitHandover.objects.get(pk=case.pk).version,
    )
    with pytest.raises(reinspection.ReinspectionRefused) as refused:
        reinspection.reinspection_book(case, by=by, slot_id=slot_id)
    assert text in refused.value.message
    after = (
        Appointment.objects.count(),
        CaseLog.objects.count(),
        UnitHandover.objects.get(pk=case.pk).version,
    )
    assert after == before


def test_bad_slots_are_refused_with_the_reason(admin_user):
    event = _event_with_days(admin_user, capacity=1)
    case = make_case(admin_user, event=event)
    first_day = _day_slots(event, 0)
    last_day = _day_slots(event, 2)
    _not_accepted(case, admin_user, on=last_day[0].date)
    # Full: another unit took the only seat.
    other_unit, other_owner = owned_unit_in_scope(
        event, buildings_of(make_project())[0]
    )
    services.appointment_book(
        slot=last_day[0], customer=other_owner, by=admin_user, event_unit=other_unit
    )
    _refused(case, admin_user, last_day[0].pk, "该时段已满")
    # Before the date the owner asked for.
    _refused(case, admin_user, first_day[1].pk, "不能早于业主要求的复验日期")
    # Another project's event.
    stranger = make_event(admin_user, name="别的楼盘交付", days_ahead=5)
    HandoverEvent.objects.filter(pk=stranger.pk).update(project=make_project())
    _refused(case, admin_user, slots_of(stranger)[0].pk, "同一楼盘后续活动")
    # Unknown.
    _refused(case, admin_user, 987654321, "所选时段不存在")
    # Begun: the day has come and the 09:00 slot is under way.
    with time_machine.travel(at(last_day[0].date, 10, 30)):
        _refused(case, admin_user, last_day[0].pk, "已开始或已过去")
    _seats_match(event)


def test_a_case_that_is_not_not_accepted_is_refused(admin_user):
    event = _event_with_days(admin_user)
    case = make_case(admin_user, event=event)
    _refused(case, admin_user, _day_slots(event, 2)[0].pk, "只有验收未通过的交房单")


# --- the page ---------------------------------------------------------------------------------


def _url(case: UnitHandover) -> str:
    return reverse("handover:case_reinspection_book", args=[case.pk])


def test_the_case_page_offers_the_slots_and_books(admin_user, service_agent, login):
    event = _event_with_days(admin_user)
    case = make_case(admin_user, event=event)
    target = _day_slots(event, 2)[0]
    _not_accepted(case, admin_user, on=target.date)
    client = login(service_agent)
    page = client.get(reverse("handover:case_outcome", args=[case.pk]))
    body = page.content.decode()
    assert 'data-testid="reinspection-form"' in body
    assert f'<option value="{target.pk}">' in body
    # Slots before the asked-for date are not offered.
    assert f'<option value="{_day_slots(event, 0)[0].pk}">' not in body
    response = client.post(_url(case), {"slot": target.pk, "next": ""})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.reinspection_appointment.slot == target
    page = client.get(reverse("handover:case_outcome", args=[case.pk]))
    body = page.content.decode()
    assert 'data-testid="reinspection-booked"' in body
    assert 'data-testid="reinspection-form"' not in body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "请选择复验时段。"),
        ({"slot": "abc"}, "整数"),
        ({"slot": "99999999999999999999999"}, ""),
        ({"slot": "987654321"}, "所选时段不存在"),
    ],
)
def test_bad_posts_re_render_with_the_message(admin_user, login, data, message):
    event = _event_with_days(admin_user)
    case = make_case(admin_user, event=event)
    _not_accepted(case, admin_user, on=_day_slots(event, 2)[0].date)
    appointments = Appointment.objects.count()
    response = login(admin_user).post(_url(case), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Appointment.objects.count() == appointments


def test_full_slot_and_wrong_case_posts_re_render(admin_user, login):
    event = _event_with_days(admin_user, capacity=1)
    case = make_case(admin_user, event=event)
    target = _day_slots(event, 2)[0]
    client = login(admin_user)
    response = client.post(_url(case), {"slot": target.pk})
    assert response.status_code == 400
    assert "只有验收未通过的交房单才能预约复验" in response.content.decode()
    _not_accepted(case, admin_user, on=target.date)
    TimeSlot.objects.filter(pk=target.pk).update(booked_count=1)  # taken meanwhile
    Appointment.objects.create(
        event=event,
        slot=target,
        customer=owned_unit_in_scope(event, buildings_of(make_project())[0])[1],
        created_by=admin_user,
    )
    response = client.post(_url(case), {"slot": target.pk})
    assert response.status_code == 400
    assert "该时段已满" in response.content.decode()
    case.refresh_from_db()
    assert case.reinspection_appointment is None


def test_access_rule(admin_user, readonly_user, sales_rep, manager, login):
    event = _event_with_days(admin_user)
    case = make_case(admin_user, event=event)
    target = _day_slots(event, 2)[0]
    _not_accepted(case, admin_user, on=target.date)
    anonymous = Client().post(_url(case), {"slot": target.pk})
    assert anonymous.status_code == 302 and "login" in anonymous.url
    assert login(readonly_user).post(_url(case), {"slot": target.pk}).status_code == 403
    event.status = "draft"
    event.save(update_fields=["status"])
    assert login(sales_rep).post(_url(case), {"slot": target.pk}).status_code == 404
    missing = reverse("handover:case_reinspection_book", args=[987654321])
    assert login(manager).post(missing, {"slot": target.pk}).status_code == 404
    assert login(manager).get(_url(case)).status_code == 405


def test_csrf_is_required(admin_user):
    event = _event_with_days(admin_user)
    case = make_case(admin_user, event=event)
    target = _day_slots(event, 2)[0]
    _not_accepted(case, admin_user, on=target.date)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(_url(case), {"slot": target.pk}).status_code == 403
    case.refresh_from_db()
    assert case.reinspection_appointment is None


# --- the not-accepted list ------------------------------------------------------------------


def test_the_not_accepted_list_says_whether_the_reinspection_is_booked(
    admin_user, login, sales_rep
):
    event = _event_with_days(admin_user)
    booked_case = make_case(admin_user, event=event)
    open_case = make_case(admin_user, event=event)
    target = _day_slots(event, 2)[0]
    _not_accepted(booked_case, admin_user, on=target.date)
    _not_accepted(open_case, admin_user, on=target.date)
    reinspection.reinspection_book(booked_case, by=admin_user, slot_id=target.pk)
    url = reverse("handover:not_accepted_list", args=[event.pk])
    client = login(admin_user)
    body = client.get(url).content.decode()
    assert body.count('data-testid="not-accepted-row"') == 2
    assert "已预约" in body and "未预约，去预约" in body
    only_booked = client.get(url, {"reinspection": "booked"}).content.decode()
    assert only_booked.count('data-testid="not-accepted-row"') == 1
    assert booked_case.event_unit.unit.label in only_booked
    only_open = client.get(url, {"reinspection": "none"}).content.decode()
    assert open_case.event_unit.unit.label in only_open
    assert booked_case.event_unit.unit.label not in only_open
    assert login(sales_rep).get(url).status_code == 403

    response = login(admin_user).get(url, {"export": "xlsx"})
    rows = list(
        load_workbook(
            io.BytesIO(b"".join(response.streaming_content))
        ).active.iter_rows(values_only=True)
    )
    assert rows[0] == (
        "房间",
        "业主",
        "电话",
        "不签收原因",
        "登记时间",
        "复验日期",
        "复验预约",
    )
    by_unit = {row[0]: row for row in rows[1:]}
    assert len(by_unit) == 2
    assert by_unit[booked_case.event_unit.unit.label][6] == (
        f"{target.date.isoformat()} {target.start_time:%H:%M}"
    )
    assert by_unit[open_case.event_unit.unit.label][6] == "未预约"
    assert by_unit[open_case.event_unit.unit.label][5] == target.date.isoformat()
    assert login(sales_rep).get(url, {"export": "xlsx"}).status_code == 403
