"""Check-in into a handover case (issue 17, part 1): by QR code, unit number or owner
phone; walk-ins into the held-back share; queue numbers per event and day, also under
parallel check-ins; identity and proxy checks; the case log and the board's counters."""

from __future__ import annotations

import threading

import pytest
import time_machine
from django.db import connections
from django.urls import reverse
from pytest_django.asserts import assertContains

from customers.masking import mask_phone
from service.handover import checkin_codes, events, onsite, outcomes, services
from service.handover.models import (
    Appointment,
    CaseLog,
    StationDefinition,
    StationVisit,
    TimeSlot,
    UnitHandover,
)
from tests.factories import CustomerFactory
from tests.handover.builders import make_event
from tests.handover.checkin_builders import at, board, booked_event, day_of, recount
from tests.handover.outcome_builders import ready_to_accept
from tests.handover.scope_builders import add_proxy

pytestmark = pytest.mark.django_db

Code = StationDefinition.Code
VState = StationVisit.State


def test_check_in_opens_the_case_with_its_route(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=2)
    event_unit, owner, appointment = rows[0]
    with time_machine.travel(at(day_of(event), 9, 20)):
        case = onsite.check_in(
            appointment,
            by=service_agent,
            arrival=onsite.Arrival(identity_checked=True),
        )
    appointment.refresh_from_db()
    assert appointment.state == Appointment.State.CHECKED_IN
    assert case.state == UnitHandover.State.CHECKED_IN
    assert (case.round, case.queue_number, case.walk_in) == (1, 1, False)
    assert case.queue_date == day_of(event)
    assert case.appointment == appointment and case.customer == owner
    assert case.identity_checked_by == service_agent
    assert case.identity_checked_at == case.checked_in_at
    states = {v.station.code: v.state for v in case.visits.select_related("station")}
    # The desk checked the ID: the identity station is cleared, its gates open.
    assert states == {
        Code.IDENTITY: VState.SKIPPED,
        Code.DOCUMENTS: VState.WAITING,
        Code.SETTLEMENT: VState.WAITING,
        Code.FEES: VState.WAITING,
        Code.SIGNING: VState.WAITING,
        Code.INSPECTION: VState.WAITING,
        Code.METERS: VState.PENDING,
        Code.KEYS: VState.PENDING,
        Code.ACCEPTANCE: VState.PENDING,
        Code.SURVEY: VState.PENDING,
    }
    assert all(
        v.queued_at == case.checked_in_at
        for v in case.visits.filter(state=VState.WAITING)
    )
    assert list(
        CaseLog.objects.filter(case=case)
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["checked_in", "identity_checked", "station_skipped"]
    assert board(event) == recount(event)
    assert board(event)["case:checked_in"] == 1


def test_queue_numbers_count_per_event_and_day(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=3)
    with time_machine.travel(at(day_of(event), 9, 5)):
        cases = [onsite.check_in(a, by=service_agent) for _eu, _o, a in rows]
    assert [c.queue_number for c in cases] == [1, 2, 3]
    other, other_rows = booked_event(admin_user, units=1)
    with time_machine.travel(at(day_of(other), 9, 5)):
        assert onsite.check_in(other_rows[0][2], by=service_agent).queue_number == 1
    assert board(event) == recount(event)


def test_a_refused_check_in_opens_no_case(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1)
    appointment = rows[0][2]
    # The day before the slot: refused, nothing written.
    with pytest.raises(services.CheckInRefused):
        onsite.check_in(appointment, by=service_agent)
    assert not UnitHandover.objects.exists()
    assert board(event) == {}


def test_the_next_round_counts_the_earlier_ones(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1)
    event_unit, owner, appointment = rows[0]
    UnitHandover.objects.create(
        event=event,
        event_unit=event_unit,
        customer=owner,
        round=1,
        state=UnitHandover.State.NOT_ACCEPTED,
        checked_in_at=at(day_of(event), 8),
    )
    with time_machine.travel(at(day_of(event), 9, 5)):
        case = onsite.check_in(appointment, by=service_agent)
    assert case.round == 2


def test_a_proxy_needs_a_valid_authorisation(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1)
    event_unit, owner, appointment = rows[0]
    proxy_arrival = onsite.Arrival(attendee=UnitHandover.Attendee.PROXY)
    with time_machine.travel(at(day_of(event), 9, 5)):
        with pytest.raises(onsite.OnsiteError, match="委托书"):
            onsite.check_in(appointment, by=service_agent, arrival=proxy_arrival)
        appointment.refresh_from_db()
        assert appointment.state == Appointment.State.BOOKED
        add_proxy(event_unit.unit, owner)
        authorisation = onsite.valid_proxies(event_unit.unit_id)[0]
        case = onsite.check_in(
            appointment,
            by=service_agent,
            arrival=onsite.Arrival(
                attendee=UnitHandover.Attendee.PROXY,
                proxy_authorisation_id=authorisation.pk,
                proxy_verified_by_phone=True,
            ),
        )
    assert case.attendee == UnitHandover.Attendee.PROXY
    assert case.proxy_authorisation == authorisation
    assert case.proxy_verified_by_phone
    assert CaseLog.objects.filter(case=case, action="proxy_checked").exists()


def test_walk_in_takes_the_held_back_share(admin_user, service_agent, sales_rep):
    event, rows = booked_event(admin_user, units=3, booked=1, capacity=2)
    TimeSlot.objects.filter(event=event).update(walk_in_hold=1)
    slot = TimeSlot.objects.filter(event=event).order_by("start_time").first()
    (_eu1, _o1, _a1), (eu2, owner2, _), (eu3, owner3, _) = rows
    # A staff booking may not take the held seat of the 09:00 slot ...
    with pytest.raises(services.SlotFull):
        services.appointment_book(
            slot=slot, customer=owner2, by=admin_user, event_unit=eu2
        )
    with time_machine.travel(at(day_of(event), 9, 10)):
        # ... a walk-in may.
        case = onsite.walk_in(eu2, owner2, by=service_agent)
        assert case.walk_in and case.queue_number == 1
        assert case.appointment.channel == Appointment.Channel.WALK_IN
        assert case.appointment.state == Appointment.State.CHECKED_IN
        assert case.appointment.slot == slot
        slot.refresh_from_db()
        assert slot.booked_count == 2
        # The 09:00 slot is full now: the next walk-in goes into the 10:00 slot.
        other = onsite.walk_in(eu3, owner3, by=service_agent)
        assert other.appointment.slot.start_time.hour == 10
        # The unit already checked in: refused with the reason.
        with pytest.raises(onsite.OnsiteError, match="已签到"):
            onsite.walk_in(eu2, owner2, by=service_agent)
    assert board(event) == recount(event)


def test_walk_in_refused_when_today_is_full(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=2, booked=0, capacity=1)
    (eu1, o1, _), (eu2, o2, _) = rows
    with time_machine.travel(at(day_of(event), 10, 10)):
        onsite.walk_in(eu1, o1, by=service_agent)  # the 10:00 slot's one seat
        with pytest.raises(onsite.OnsiteError, match="已满"):
            onsite.walk_in(eu2, o2, by=service_agent)
    assert UnitHandover.objects.filter(event=event).count() == 1
    assert board(event) == recount(event)


def test_walk_in_refused_for_someone_not_of_the_unit(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1, booked=0)
    with time_machine.travel(at(day_of(event), 9, 10)):
        with pytest.raises(onsite.OnsiteError, match="不是房间"):
            onsite.walk_in(rows[0][0], CustomerFactory(), by=service_agent)


def test_walk_in_refused_on_another_day(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1, booked=0)
    with pytest.raises(onsite.OnsiteError, match="交付日"):
        onsite.walk_in(rows[0][0], rows[0][1], by=service_agent)


@pytest.mark.django_db(transaction=True)
def test_parallel_check_ins_get_distinct_queue_numbers(admin_user, service_agent):
    event, rows = booked_event(admin_user, units=8)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(rows))

    def desk(appointment: Appointment) -> None:
        try:
            barrier.wait(30)
            try:
                onsite.check_in(appointment, by=service_agent)
                result = "ok"
            except Exception as exc:  # noqa: BLE001 - anything else is the defect
                result = repr(exc)
            with lock:
                outcomes.append(result)
        finally:
            connections.close_all()

    with time_machine.travel(at(day_of(event), 9, 5)):
        threads = [threading.Thread(target=desk, args=(a,)) for _eu, _o, a in rows]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert outcomes == ["ok"] * len(rows)
    numbers = sorted(
        UnitHandover.objects.filter(event=event).values_list("queue_number", flat=True)
    )
    assert numbers == list(range(1, len(rows) + 1))
    # The default stations were made once, by whichever came first.
    assert StationDefinition.objects.filter(event=event).count() == 10
    assert board(event) == recount(event)


# --- the desk pages ------------------------------------------------------------------------


def test_desk_by_qr_code_opens_the_case(client, admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1)
    appointment = rows[0][2]
    client.force_login(service_agent)
    url = reverse("handover:desk_check_in")
    with time_machine.travel(at(day_of(event), 9, 5)):
        response = client.post(url, {"code": checkin_codes.code_for(appointment.pk)})
        assert response.status_code == 302
        response = client.get(response.url)
    case = UnitHandover.objects.get(appointment=appointment)
    assertContains(response, reverse("handover:case_detail", args=[case.pk]))
    assert case.queue_number == 1


def test_event_desk_finds_by_code_unit_and_phone(client, admin_user, service_agent):
    event, rows = booked_event(admin_user, units=2, booked=1)
    event_unit, owner, appointment = rows[0]
    walk_in_unit, walk_in_owner, _ = rows[1]
    client.force_login(service_agent)
    url = reverse("handover:onsite_checkin", args=[event.pk])
    response = client.get(url, {"q": checkin_codes.code_for(appointment.pk)})
    assertContains(response, 'data-testid="onsite-appointment"')
    response = client.get(url, {"q": event_unit.unit.room})
    assertContains(response, event_unit.unit.label)
    # The desk (客服) sees owners' phones masked (the walk-in form lists them).
    response = client.get(url, {"q": walk_in_owner.phone})
    assertContains(response, walk_in_unit.unit.label)
    assertContains(response, mask_phone(walk_in_owner.phone))
    assertContains(response, 'data-testid="onsite-walk-in"')
    response = client.get(url, {"q": "no-such-room"})
    assertContains(response, 'data-testid="onsite-none"')


def test_event_desk_checks_in_and_admits_walk_ins(client, admin_user, service_agent):
    event, rows = booked_event(admin_user, units=2, booked=1)
    (eu1, o1, a1), (eu2, o2, _) = rows
    client.force_login(service_agent)
    url = reverse("handover:onsite_checkin", args=[event.pk])
    with time_machine.travel(at(day_of(event), 9, 5)):
        response = client.post(
            url, {"appointment": a1.pk, "attendee": "owner", "identity_checked": "1"}
        )
        case = UnitHandover.objects.get(appointment=a1)
        assert response.status_code == 302
        assert response.url == reverse("handover:case_detail", args=[case.pk])
        response = client.post(url, {"event_unit": eu2.pk, "customer": o2.pk})
        assert response.status_code == 302
        walk_in = UnitHandover.objects.get(event_unit=eu2)
        assert walk_in.walk_in and walk_in.queue_number == 2
        # Again: refused with the reason, not a 500.
        response = client.post(url, {"event_unit": eu2.pk, "customer": o2.pk})
        assert response.status_code == 409
        assertContains(response, "已签到", status_code=409)
        response = client.post(url, {"appointment": a1.pk})
        assert response.status_code == 409
    # The case page shows the route sheet.
    response = client.get(reverse("handover:case_detail", args=[case.pk]))
    assertContains(response, 'data-testid="route-sheet"')
    assertContains(response, 'data-testid="route-keys" data-state="pending"')


def test_event_desk_bad_ids_are_404(client, admin_user, service_agent):
    event, rows = booked_event(admin_user, units=1)
    other, other_rows = booked_event(admin_user, units=1)
    client.force_login(service_agent)
    url = reverse("handover:onsite_checkin", args=[event.pk])
    assert client.post(url, {"appointment": "987654321"}).status_code == 404
    assert client.post(url, {"appointment": "x1"}).status_code == 404
    assert client.post(url, {"appointment": other_rows[0][2].pk}).status_code == 404
    assert (
        client.post(url, {"event_unit": other_rows[0][0].pk, "customer": "1"})
    ).status_code == 404
    assert client.post(url, {"event_unit": rows[0][0].pk}).status_code == 400
    missing = reverse("handover:onsite_checkin", args=[987654321])
    assert client.get(missing).status_code == 404
    # A code of another event's appointment is not this event's.
    response = client.get(url, {"q": checkin_codes.code_for(other_rows[0][2].pk)})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("actor", "status"),
    [
        ("sales_rep", 200),
        ("service_agent", 200),
        ("manager", 200),
        ("admin_user", 200),
        ("readonly_user", 403),
    ],
)
def test_desk_pages_roles(client, admin_user, request, actor, status):
    event, _rows = booked_event(admin_user, units=1)
    client.force_login(request.getfixturevalue(actor))
    for url in (
        reverse("handover:onsite_home"),
        reverse("handover:onsite_event", args=[event.pk]),
        reverse("handover:onsite_checkin", args=[event.pk]),
    ):
        assert client.get(url).status_code == status, url


def test_desk_pages_need_a_login(client, admin_user):
    event, _rows = booked_event(admin_user, units=1)
    response = client.get(reverse("handover:onsite_checkin", args=[event.pk]))
    assert response.status_code == 302 and "login" in response.url


# --- when the handover finishes ------------------------------------------------------------


@pytest.fixture
def finished(monkeypatch):
    """The appointments events.handover_finished was called with."""
    seen: list[int] = []
    monkeypatch.setattr(events, "_finished_hooks", [lambda a: seen.append(a.pk)])
    return seen


def test_a_units_handover_finishes_with_its_accepted_outcome_not_its_check_in(
    admin_user,
    service_agent,
    finished,
    django_capture_on_commit_callbacks,
    settings,
    tmp_path,
):
    settings.MEDIA_ROOT = tmp_path
    event, rows = booked_event(admin_user, units=1)
    appointment = rows[0][2]
    with time_machine.travel(at(day_of(event), 9, 5)):
        with django_capture_on_commit_callbacks(execute=True):
            case = onsite.check_in(appointment, by=service_agent)
        assert finished == []
        ready_to_accept(case)
        with django_capture_on_commit_callbacks(execute=True):
            outcomes.case_accept(case, by=service_agent, version=case.version)
    assert finished == [appointment.pk]


def test_without_a_unit_the_check_in_still_finishes_the_handover(
    admin_user, sales_rep, finished, django_capture_on_commit_callbacks
):
    event = make_event(admin_user, days_ahead=1)
    slot = TimeSlot.objects.filter(event=event).order_by("start_time").first()
    appointment = services.appointment_book(
        slot=slot, customer=CustomerFactory(owner=sales_rep), by=sales_rep
    )
    with time_machine.travel(at(slot.date, 9, 5)):
        with django_capture_on_commit_callbacks(execute=True):
            assert onsite.check_in(appointment, by=sales_rep) is None
    assert finished == [appointment.pk]
    assert not UnitHandover.objects.exists()


def test_identity_recorded_after_check_in(admin_user, service_agent, sales_rep):
    event, rows = booked_event(admin_user, units=1)
    with time_machine.travel(at(day_of(event), 9, 5)):
        case = onsite.check_in(rows[0][2], by=service_agent)
    assert case.identity_checked_at is None
    with time_machine.travel(at(day_of(event), 9, 7), tick=False):
        onsite.record_identity(case, by=sales_rep, version=case.version)
    case.refresh_from_db()
    assert case.identity_checked_by == sales_rep
    assert case.identity_checked_at == at(day_of(event), 9, 7)
    with pytest.raises(onsite.Conflict):
        onsite.record_identity(case, by=sales_rep, version=case.version - 1)
    assert CaseLog.objects.filter(case=case, action="identity_checked").count() == 1


def test_the_desk_after_an_outcome(client, admin_user, service_agent):
    """A unit handed over shows its outcome and no check-in; after 验收未通过 without
    a new booking the desk offers the walk-in (round 2), not the finished visit."""
    event, rows = booked_event(admin_user, units=2, booked=2)
    (accepted_unit, _o1, a1), (failed_unit, o2, a2) = rows
    client.force_login(service_agent)
    url = reverse("handover:onsite_checkin", args=[event.pk])
    with time_machine.travel(at(day_of(event), 9, 5)):
        accepted = onsite.check_in(a1, by=service_agent)
        outcomes.case_accept(ready_to_accept(accepted), by=admin_user, version=None)
        failed = onsite.check_in(a2, by=service_agent)
        outcomes.case_not_accepted(
            failed,
            by=admin_user,
            version=failed.version,
            reason="卫生间渗水",
            reinspection_on=day_of(event),
        )

        response = client.get(url, {"q": accepted_unit.unit.room})
        assertContains(response, 'data-testid="onsite-handed-over"')
        assertContains(response, "已收楼")
        body = response.content.decode()
        assert 'data-testid="onsite-walk-in"' not in body
        assert 'data-testid="onsite-check-in"' not in body

        response = client.get(url, {"q": failed_unit.unit.room})
        assertContains(response, 'data-testid="onsite-last-outcome"')
        assertContains(response, "验收未通过")
        assertContains(response, 'data-testid="onsite-walk-in"')
        response = client.post(url, {"event_unit": failed_unit.pk, "customer": o2.pk})
        assert response.status_code == 302
    round_two = UnitHandover.objects.get(event_unit=failed_unit, round=2)
    assert round_two.walk_in and round_two.is_open
