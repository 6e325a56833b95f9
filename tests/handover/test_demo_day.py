"""The 入伙 demo on the day (service/handover/demo_day.py): the 1,000-unit event (two
buildings here) in progress today, its board's counters equal to a recount."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from service.defects.models import Defect, DefectEvent
from service.handover import counters, demo_before
from service.handover.models import (
    Appointment,
    FeePayment,
    HandoverEvent,
    MeterReading,
    RefusalRecord,
    StationVisit,
    UnitHandover,
)
from service.property import demo as property_demo


@pytest.fixture(scope="module")
def _seeded_once(django_db_setup, django_db_blocker):
    """One seed for the module, not one per test (each took 36-79 s on a busy 2-core
    machine), in a transaction rolled back after its last test; each test runs in a
    savepoint inside it (`seeded`), so one test's writes do not reach the next."""
    with pytest.MonkeyPatch.context() as patch, django_db_blocker.unblock():
        patch.delenv("CRM_DEMO_PASSWORD", raising=False)
        patch.setattr(property_demo, "BUILDINGS", 2)  # 200 units, not 1,000
        with transaction.atomic():
            out = StringIO()
            call_command("seed_demo", customers=20, stdout=out)
            yield out.getvalue()
            transaction.set_rollback(True)


@pytest.fixture
def seeded(db, _seeded_once):
    return _seeded_once


def _event() -> HandoverEvent:
    return HandoverEvent.objects.get(name=demo_before.DEMO_EVENT)


def test_today_is_a_day_of_the_event_with_every_case_visit_and_defect_state(seeded):
    event = _event()
    today = timezone.localdate()
    assert event.start_date < today <= event.end_date
    assert "handover outcomes" in seeded and "owners at the stations" in seeded
    cases = set(
        UnitHandover.objects.filter(event=event).values_list("state", flat=True)
    )
    assert cases == set(UnitHandover.State.values)
    visits = set(
        StationVisit.objects.filter(case__event=event).values_list("state", flat=True)
    )
    assert visits == set(StationVisit.State.values)
    defects = Defect.objects.filter(event=event)
    assert set(defects.values_list("state", flat=True)) == set(Defect.State.values)
    # Assigned onwards with a contractor; every defect with its history from open.
    assert not defects.exclude(state="open").filter(contractor=None).exists()
    assert DefectEvent.objects.filter(defect__event=event, from_state="").count() == (
        defects.count()
    )
    # No open defect on a plainly accepted unit; one at least with defects.
    assert not defects.filter(
        case__state="accepted", state__in=Defect.OPEN_STATES
    ).exists()
    assert not (
        UnitHandover.objects.filter(event=event, state="accepted_defects")
        .exclude(defects__state__in=Defect.OPEN_STATES)
        .exists()
    )
    assert FeePayment.objects.filter(case__event=event).exists()
    assert MeterReading.objects.filter(case__event=event).exists()
    assert RefusalRecord.objects.filter(case__event=event).count() == (
        UnitHandover.objects.filter(event=event, state="refused").count()
    )
    accepted = UnitHandover.objects.filter(event=event, state="accepted")
    assert not accepted.filter(signature="").exists()
    assert not accepted.filter(key_action="").exists()
    # Arrivals and service times are in the past, the no-shows' bookings cancelled.
    now = timezone.now()
    assert not UnitHandover.objects.filter(checked_in_at__gt=now).exists()
    assert not StationVisit.objects.filter(finished_at__gt=now).exists()
    assert not StationVisit.objects.filter(started_at__gt=now).exists()
    absent = UnitHandover.objects.filter(event=event, state="absent")
    assert set(absent.values_list("appointment__state", flat=True)) == {
        Appointment.State.CANCELLED
    }
    # Still booked: the owners to come this afternoon and tomorrow.
    assert Appointment.objects.filter(
        event=event, state="booked", slot__date__gte=today
    ).exists()


def test_the_boards_counters_equal_a_recount_and_a_second_run_adds_nothing(seeded):
    event = _event()
    assert counters.recount_differs(event.pk) == {}
    read = counters.read(event.pk)
    assert read["case:accepted"] > 0 and read["defect:open"] > 0
    assert read["fees:cents"] > 0 and read["rating:count"] > 0
    rows = (
        UnitHandover.objects.count(),
        StationVisit.objects.count(),
        Defect.objects.count(),
    )
    call_command("seed_demo", customers=20, stdout=StringIO())
    assert (
        UnitHandover.objects.count(),
        StationVisit.objects.count(),
        Defect.objects.count(),
    ) == rows
    assert counters.read(event.pk) == read


def test_the_board_and_an_acceptance_form_of_the_demo_open(seeded):
    event = _event()
    browser = Client()
    browser.force_login(get_user_model().objects.get(username="manager1"))
    page = browser.get(reverse("handover:event_board", args=[event.pk]))
    assert page.status_code == 200
    case = (
        UnitHandover.objects.filter(event=event, state="accepted_defects")
        .order_by("pk")
        .first()
    )
    pdf = browser.get(reverse("handover:acceptance_form_pdf", args=[case.pk]))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
