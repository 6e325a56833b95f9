"""An event's scope and batches: the services (scope add/remove, bulk eligibility,
batches and their units and slots) and the pages (access, filters, bulk actions, bad
input, query counts at two sizes)."""

from __future__ import annotations

import datetime as dt

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from service.handover import scope, services
from service.handover.models import Appointment, Batch, EventUnit, TimeSlot
from service.property.models import UnitOwnership
from tests.factories import CustomerFactory
from tests.handover.builders import make_event, slots_of
from tests.handover.scope_builders import (
    add_owner,
    buildings_of,
    make_batch,
    make_project,
    make_units,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = make_project(buildings=2)
    for building in buildings_of(project):
        make_units(building, floors=4, per_floor=2)  # 8 units per building
    return project


@pytest.fixture
def event(admin_user, project):
    event = make_event(admin_user, slots_per_day=2, capacity=5)
    event.project = project
    event.save(update_fields=["project"])
    return event


def _scoped(admin_user, event) -> list[EventUnit]:
    scope.scope_add(by=admin_user, event=event)
    return list(EventUnit.objects.filter(event=event).order_by("pk"))


# --- services ---------------------------------------------------------------------------


def test_scope_add_takes_every_unit_of_the_project_once(admin_user, event):
    assert scope.scope_add(by=admin_user, event=event) == 16
    assert scope.scope_add(by=admin_user, event=event) == 0
    units = EventUnit.objects.filter(event=event)
    assert units.count() == 16
    assert set(units.values_list("eligibility", flat=True)) == {"eligible"}


def test_scope_add_by_building_and_floor_range(admin_user, event, project):
    first, _second = buildings_of(project)
    added = scope.scope_add(
        by=admin_user, event=event, building_ids=[first.pk], floor_from=2, floor_to=3
    )
    assert added == 4
    floors = set(EventUnit.objects.values_list("unit__floor", flat=True))
    assert floors == {2, 3}


def test_scope_add_needs_a_project_and_a_manager(admin_user, sales_rep, event):
    with pytest.raises(PermissionDenied):
        scope.scope_add(by=sales_rep, event=event)
    event.project = None
    event.save(update_fields=["project"])
    with pytest.raises(ValidationError):
        scope.scope_add(by=admin_user, event=event)


def test_scope_remove_keeps_units_with_bookings(admin_user, event):
    units = _scoped(admin_user, event)
    owner = add_owner(units[0].unit)
    booking = services.appointment_book(
        slot=slots_of(event)[0], customer=owner, by=admin_user, event_unit=units[0]
    )
    services.appointment_cancel(booking, by=admin_user)  # a cancelled one counts too
    removed, kept = scope.scope_remove(
        by=admin_user, event=event, event_unit_ids=[u.pk for u in units[:3]]
    )
    assert (removed, kept) == (2, 1)
    assert EventUnit.objects.filter(pk=units[0].pk).exists()


def test_bulk_eligibility_counts_changes_and_is_audited(admin_user, event):
    units = _scoped(admin_user, event)
    ids = [u.pk for u in units[:5]]
    changed = scope.eligibility_set(
        by=admin_user,
        event=event,
        event_unit_ids=ids,
        eligibility="arrears",
        note="欠尾款",
    )
    assert changed == 5
    again = scope.eligibility_set(
        by=admin_user,
        event=event,
        event_unit_ids=[u.pk for u in units[:7]],
        eligibility="arrears",
        note="欠尾款",
    )
    assert again == 2
    events = pghistory.models.Events.objects.filter(
        pgh_obj_model="handover.EventUnit", pgh_label="update"
    )
    assert events.count() == 7
    assert {e.pgh_context["user"] for e in events} == {admin_user.pk}


def test_bulk_eligibility_needs_a_note_when_blocking(admin_user, event):
    units = _scoped(admin_user, event)
    with pytest.raises(ValidationError) as refused:
        scope.eligibility_set(
            by=admin_user,
            event=event,
            event_unit_ids=[units[0].pk],
            eligibility="legal_hold",
            note=" ",
        )
    assert "note" in refused.value.message_dict


def test_bulk_edit_ignores_units_of_other_events(admin_user, event):
    other = make_event(admin_user, name="另一活动")
    other.project = event.project
    other.save(update_fields=["project"])
    other_units = _scoped(admin_user, other)
    _scoped(admin_user, event)
    changed = scope.eligibility_set(
        by=admin_user,
        event=event,
        event_unit_ids=[u.pk for u in other_units],
        eligibility="not_ready",
        note="未验收",
    )
    assert changed == 0


def test_batches_crud_and_delete_refused_with_bookings(admin_user, event):
    now = timezone.now()
    data = {
        "name": "第一批",
        "booking_opens_at": now,
        "booking_closes_at": now + dt.timedelta(days=5),
        "description": "",
    }
    batch = scope.batch_save(by=admin_user, event=event, data=data)
    with pytest.raises(ValidationError):
        scope.batch_save(by=admin_user, event=event, data=data)  # same name
    with pytest.raises(ValidationError):
        scope.batch_save(
            by=admin_user,
            event=event,
            data={**data, "name": "倒置", "booking_closes_at": now},
        )
    scope.batch_save(by=admin_user, event=event, batch=batch, data={"name": "一批"})
    batch.refresh_from_db()
    assert batch.name == "一批"

    units = _scoped(admin_user, event)
    added = scope.batch_slots_add_day(
        by=admin_user,
        batch=batch,
        date=event.start_date,
        start_time=dt.time(13, 0),
        end_time=dt.time(15, 0),
        interval_minutes=60,
        capacity=10,
        walk_in_percent=25,
    )
    assert added == 2
    slot = TimeSlot.objects.filter(batch=batch).order_by("start_time").first()
    assert (slot.capacity, slot.walk_in_hold) == (10, 2)  # floor(10 × 25 %)
    owner = add_owner(units[0].unit)
    services.appointment_book(
        slot=slot, customer=owner, by=admin_user, event_unit=units[0]
    )
    with pytest.raises(ValidationError):
        scope.batch_delete(by=admin_user, batch=batch)
    empty = scope.batch_save(by=admin_user, event=event, data={**data, "name": "空批"})
    scope.batch_slots_add_day(
        by=admin_user,
        batch=empty,
        date=event.start_date,
        start_time=dt.time(16, 0),
        end_time=dt.time(17, 0),
        interval_minutes=60,
        capacity=4,
    )
    assert scope.batch_delete(by=admin_user, batch=empty) == 1
    assert not Batch.objects.filter(pk=empty.pk).exists()


def test_assign_units_by_building_and_floor_range(admin_user, event, project):
    _scoped(admin_user, event)
    batch = make_batch(event)
    first, second = buildings_of(project)
    changed = scope.batch_assign_units(
        by=admin_user, batch=batch, building_ids=[first.pk], floor_from=3
    )
    assert changed == 4
    assert set(
        EventUnit.objects.filter(batch=batch).values_list("unit__floor", flat=True)
    ) == {3, 4}
    assert (
        scope.batch_assign_units(
            by=admin_user, batch=batch, building_ids=[first.pk], floor_from=3
        )
        == 0
    )
    with pytest.raises(ValidationError):
        scope.batch_assign_units(
            by=admin_user,
            batch=batch,
            building_ids=[second.pk],
            floor_from=4,
            floor_to=2,
        )


def test_walk_in_share_rounds_down():
    assert scope.walk_in_hold_for(7, 30) == 2
    assert scope.walk_in_hold_for(5, 0) == 0
    assert scope.walk_in_hold_for(5, 100) == 5


# --- pages -------------------------------------------------------------------------------


def scope_url(event, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = reverse("handover:event_scope", args=[event.pk])
    return f"{url}?{query}" if query else url


def test_scope_page_lists_units_with_masked_owner_phone(
    login, admin_user, sales_rep, event, settings
):
    settings.KEHU_UNMASKED_ROLES = ["admin"]
    units = _scoped(admin_user, event)
    owner = add_owner(units[0].unit)
    owner.phone = "13812345678"
    owner.save(update_fields=["phone"])
    response = login(sales_rep).get(scope_url(event))
    assertContains(response, "138****5678")
    assertNotContains(response, "13812345678")
    assertNotContains(response, 'data-testid="bulk-bar"')
    response = login(admin_user).get(scope_url(event))
    assertContains(response, "13812345678")
    assertContains(response, 'data-testid="bulk-bar"')


def test_scope_filters_and_search(login, admin_user, event, project):
    units = _scoped(admin_user, event)
    owner = add_owner(units[3].unit)
    owner.phone = "13900001111"
    owner.save(update_fields=["phone"])
    scope.eligibility_set(
        by=admin_user,
        event=event,
        event_unit_ids=[units[1].pk],
        eligibility="not_ready",
        note="外立面未完工",
    )
    client = login(admin_user)
    response = client.get(scope_url(event, eligibility="not_ready"))
    assert len(response.context["rows"]) == 1
    assertContains(response, "外立面未完工")
    first, _second = buildings_of(project)
    response = client.get(scope_url(event, building=first.pk))
    assert len(response.context["rows"]) == 8
    response = client.get(scope_url(event, q=units[2].unit.room))
    assert units[2] in response.context["rows"]
    # A phone never stays in the address: it comes back as a session token.
    response = client.get(scope_url(event, q="13900001111"))
    assert response.status_code == 303
    assert "13900001111" not in response["Location"]
    response = client.get(response["Location"])
    assert [r.pk for r in response.context["rows"]] == [units[3].pk]
    response = client.get(scope_url(event, booked="booked"))
    assert response.context["rows"] == []
    assertContains(response, "没有符合条件的房间")


def test_scope_page_keyset_pages(login, admin_user, project):
    event = make_event(admin_user)
    event.project = project
    event.save(update_fields=["project"])
    building = buildings_of(project)[0]
    make_units(building, floors=10, per_floor=5, entrance="2")
    scope.scope_add(by=admin_user, event=event)  # 16 + 50 = 66 units
    client = login(admin_user)
    first = client.get(scope_url(event))
    assert len(first.context["rows"]) == 50
    after = first.context["next_after"]
    second = client.get(scope_url(event, after=after))
    assert len(second.context["rows"]) == 16
    assert second.context["next_after"] is None
    assert client.get(scope_url(event, after="abc")).status_code == 404


def test_bad_filter_values_do_not_break_the_page(login, admin_user, event):
    _scoped(admin_user, event)
    client = login(admin_user)
    response = client.get(scope_url(event, eligibility="nope", batch="x", booked="?"))
    assert response.status_code == 200
    assert len(response.context["rows"]) == 16
    assert (
        client.get(scope_url(event, building="99999999999999999999")).status_code == 404
    )


def _bulk(client, event, **data):
    return client.post(reverse("handover:scope_bulk", args=[event.pk]), data)


def test_bulk_bar_sets_eligibility_and_batch(login, admin_user, event):
    units = _scoped(admin_user, event)
    batch = make_batch(event)
    client = login(admin_user)
    ids = [u.pk for u in units[:3]]
    response = _bulk(
        client,
        event,
        units=ids,
        action="eligibility",
        eligibility="arrears",
        note="欠款",
        filter_query="building=1",
    )
    assert response.status_code == 302
    assert response["Location"].endswith("?building=1")
    assert EventUnit.objects.filter(eligibility="arrears").count() == 3
    response = client.get(response["Location"].split("?")[0])
    assertContains(response, "已修改 3 个房间的交付资格")
    _bulk(client, event, units=ids, action="batch", batch=batch.pk)
    assert EventUnit.objects.filter(batch=batch).count() == 3
    _bulk(client, event, units=ids[:1], action="batch", batch="")
    assert EventUnit.objects.filter(batch=batch).count() == 2
    _bulk(client, event, units=ids[:1], action="remove")
    assert EventUnit.objects.filter(event=event).count() == 15


@pytest.mark.parametrize(
    "data",
    [
        {"action": "eligibility", "eligibility": "arrears", "note": "x"},  # no units
        {"units": ["abc"], "action": "eligibility", "eligibility": "arrears"},
        {"units": ["1"], "action": "explode"},
        {"units": ["1"], "action": "eligibility", "eligibility": "legal_hold"},
        {"units": ["1"], "action": "batch", "batch": "99999999"},
    ],
)
def test_bad_bulk_input_changes_nothing_and_says_why(login, admin_user, event, data):
    units = _scoped(admin_user, event)
    if data.get("units") == ["1"]:
        data = {**data, "units": [units[0].pk]}
    response = _bulk(login(admin_user), event, **data)
    assert response.status_code == 302
    assert not EventUnit.objects.exclude(eligibility="eligible").exists()
    assert not EventUnit.objects.filter(batch__isnull=False).exists()
    assert EventUnit.objects.count() == 16


def test_sales_and_service_may_view_but_not_edit(
    login, admin_user, sales_rep, service_agent, event
):
    units = _scoped(admin_user, event)
    batch = make_batch(event)
    for user in (sales_rep, service_agent):
        client = login(user)
        assert client.get(scope_url(event)).status_code == 200
        assert (
            client.get(reverse("handover:batch_list", args=[event.pk])).status_code
            == 200
        )
        response = _bulk(
            client,
            event,
            units=[units[0].pk],
            action="eligibility",
            eligibility="arrears",
            note="x",
        )
        assert response.status_code == 403
        for name in ("batch_edit", "batch_assign", "batch_slots_add"):
            assert (
                client.get(reverse(f"handover:{name}", args=[batch.pk])).status_code
                == 403
            )
        assert (
            client.post(reverse("handover:batch_delete", args=[batch.pk])).status_code
            == 403
        )
    assert Batch.objects.filter(pk=batch.pk).exists()
    assert not EventUnit.objects.exclude(eligibility="eligible").exists()


def test_scope_add_page(login, admin_user, event, project):
    client = login(admin_user)
    url = reverse("handover:scope_add", args=[event.pk])
    assert client.get(url).status_code == 200
    first, _second = buildings_of(project)
    response = client.post(
        url, {"buildings": [first.pk], "floor_from": 4, "floor_to": 1}
    )
    assert response.status_code == 400
    assertContains(response, "结束楼层不能低于起始楼层", status_code=400)
    assert client.post(url, {"floor_from": "abc"}).status_code == 400
    assert not EventUnit.objects.exists()
    response = client.post(url, {"buildings": [first.pk]})
    assert response.status_code == 302
    assert EventUnit.objects.count() == 8


def test_batch_pages_create_edit_assign_slots_delete(login, admin_user, event, project):
    _scoped(admin_user, event)
    client = login(admin_user)
    create = reverse("handover:batch_create", args=[event.pk])
    bad = client.post(
        create,
        {
            "name": "第一批",
            "booking_opens_at": "2026-13-01T09:00",
            "booking_closes_at": "2026-12-01T09:00",
        },
    )
    assert bad.status_code == 400
    inverted = client.post(
        create,
        {
            "name": "第一批",
            "booking_opens_at": "2026-12-05T09:00",
            "booking_closes_at": "2026-12-01T09:00",
        },
    )
    assertContains(inverted, "截止预约时间必须晚于开放预约时间", status_code=400)
    assert not Batch.objects.exists()
    opens = timezone.localtime() - dt.timedelta(days=1)
    form = {
        "name": "第一批",
        "booking_opens_at": f"{opens:%Y-%m-%dT%H:%M}",
        "booking_closes_at": f"{opens + dt.timedelta(days=9):%Y-%m-%dT%H:%M}",
    }
    assert client.post(create, form).status_code == 302
    duplicate = client.post(create, form)
    assert duplicate.status_code == 400
    batch = Batch.objects.get()
    edit = reverse("handover:batch_edit", args=[batch.pk])
    assert client.post(edit, {**form, "name": "一批"}).status_code == 302
    first, _second = buildings_of(project)
    assign = reverse("handover:batch_assign", args=[batch.pk])
    assertContains(client.post(assign, {}), "请至少选择一栋楼", status_code=400)
    assert client.post(assign, {"buildings": [first.pk]}).status_code == 302
    assert EventUnit.objects.filter(batch=batch).count() == 8
    slots = reverse("handover:batch_slots_add", args=[batch.pk])
    day = {
        "date": event.start_date.isoformat(),
        "start_time": "13:00",
        "end_time": "15:00",
        "interval_minutes": 60,
        "capacity": 10,
    }
    assert client.post(slots, {**day, "walk_in_percent": 101}).status_code == 400
    assert client.post(slots, {**day, "walk_in_percent": 20}).status_code == 302
    assert list(
        TimeSlot.objects.filter(batch=batch).values_list("walk_in_hold", flat=True)
    ) == [2, 2]
    page = client.get(reverse("handover:batch_list", args=[batch.event_id]))
    assertContains(page, "一批")
    assert page.context["batches"][0].unit_count == 8
    assert page.context["batches"][0].seats == 20
    response = client.post(reverse("handover:batch_delete", args=[batch.pk]))
    assert response.status_code == 302
    assert not Batch.objects.exists()
    assert not EventUnit.objects.filter(batch__isnull=False).exists()


def _scope_queries(client, event, django_assert_max_num_queries) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(scope_url(event))
    assert response.status_code == 200
    return len(captured)


def test_scope_page_query_count_is_the_same_at_50_and_5000_units(
    login, admin_user, django_assert_max_num_queries
):
    """Owners and bookings on every row, 50 units then 5,000: the same queries."""
    client = login(admin_user)
    counts = []
    for buildings in (1, 10):
        project = make_project(buildings=buildings)
        per_building = 50 if buildings == 1 else 500
        units = [
            unit
            for building in buildings_of(project)
            for unit in make_units(building, floors=per_building // 10, per_floor=10)
        ]

        owners = CustomerFactory.create_batch(50)
        UnitOwnership.objects.bulk_create(
            UnitOwnership(unit=unit, customer=owners[n % 50], role="primary")
            for n, unit in enumerate(units)
        )
        event = make_event(
            admin_user, name=f"规模{buildings}", slots_per_day=1, capacity=50
        )
        event.project = project
        event.save(update_fields=["project"])
        scope.scope_add(by=admin_user, event=event)
        first = EventUnit.objects.filter(event=event).order_by("pk").first()
        services.appointment_book(
            slot=slots_of(event)[0],
            customer=owners[0],
            by=admin_user,
            event_unit=first,
        )
        counts.append(_scope_queries(client, event, django_assert_max_num_queries))
        assert EventUnit.objects.filter(event=event).count() == len(units)
    assert counts[0] == counts[1], counts
    assert Appointment.objects.count() == 2


# --- the staff booking page with a scope -------------------------------------------------


def book_url(event, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = reverse("handover:appointment_book", args=[event.pk])
    return f"{url}?{query}" if query else url


@pytest.fixture
def scoped(admin_user, event, sales_rep):
    """The event with its units in scope; the first has an owner of the sales rep."""
    units = _scoped(admin_user, event)
    owner = add_owner(units[0].unit, CustomerFactory(name="林业主", owner=sales_rep))
    owner.phone = "13911112222"
    owner.save(update_fields=["phone"])
    return units, owner


def test_staff_find_the_unit_then_its_owner(login, sales_rep, event, scoped):
    units, owner = scoped
    client = login(sales_rep)
    response = client.get(book_url(event))
    assertContains(response, 'data-testid="unit-lookup"')
    response = client.get(book_url(event, q=units[0].unit.room))
    assertContains(response, units[0].unit.label)
    assertContains(response, f"unit={units[0].pk}&amp;customer={owner.pk}")
    response = client.post(book_url(event), {"q": "13911112222"})
    assert response.status_code == 303
    assert "13911112222" not in response["Location"]
    assertContains(client.get(response["Location"]), "林业主")


def test_staff_book_a_unit_for_its_owner(login, sales_rep, event, scoped):
    units, owner = scoped
    client = login(sales_rep)
    page = client.get(book_url(event, unit=units[0].pk, customer=owner.pk))
    assertContains(page, units[0].unit.label)
    assert "unit" not in page.context["form"].fields
    slot = slots_of(event)[0]
    response = client.post(
        book_url(event),
        {
            "customer": owner.pk,
            "event_unit": units[0].pk,
            "slot": slot.pk,
            "party_size": 2,
            "channel": "phone",
        },
    )
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert (appointment.event_unit, appointment.unit) == (units[0], units[0].unit.label)


def test_ineligible_unit_asks_for_a_reason(login, admin_user, event, scoped):
    units, owner = scoped
    scope.eligibility_set(
        by=admin_user,
        event=event,
        event_unit_ids=[units[0].pk],
        eligibility="arrears",
        note="尾款",
    )
    client = login(admin_user)
    page = client.get(book_url(event, unit=units[0].pk, customer=owner.pk))
    assertContains(page, 'name="override_reason"')
    assertContains(page, "例外原因")
    data = {
        "customer": owner.pk,
        "event_unit": units[0].pk,
        "slot": slots_of(event)[0].pk,
        "party_size": 1,
        "channel": "phone",
    }
    response = client.post(book_url(event), data)
    assertContains(response, "请填写例外原因", status_code=400)
    assert not Appointment.objects.exists()
    response = client.post(book_url(event), {**data, "override_reason": "已补缴"})
    assert response.status_code == 302
    assert Appointment.objects.get().override_reason == "已补缴"


def test_someone_not_of_the_unit_is_refused_on_the_page(
    login, admin_user, event, scoped
):
    units, _owner = scoped
    stranger = CustomerFactory(name="路人甲")
    response = login(admin_user).post(
        book_url(event),
        {
            "customer": stranger.pk,
            "event_unit": units[1].pk,
            "slot": slots_of(event)[0].pk,
            "party_size": 1,
            "channel": "phone",
        },
    )
    assertContains(response, "不是房间", status_code=400)
    assert not Appointment.objects.exists()


def test_unit_of_another_event_or_hidden_owner_is_404(
    login, admin_user, outsider, event, scoped
):
    units, owner = scoped
    other = make_event(admin_user, name="另一活动")
    client = login(outsider)
    assert client.get(book_url(other, unit=units[0].pk)).status_code == 404
    assert (
        client.get(book_url(event, unit=units[0].pk, customer=owner.pk)).status_code
        == 404
    )
    assert client.get(book_url(event, unit="x")).status_code == 404


def test_staff_reschedule_outside_the_batch_with_a_reason(
    login, admin_user, event, scoped
):
    units, owner = scoped
    first, second = make_batch(event, "第一批"), make_batch(event, "第二批")
    slot_a, slot_b = slots_of(event)
    TimeSlot.objects.filter(pk=slot_a.pk).update(batch=first)
    TimeSlot.objects.filter(pk=slot_b.pk).update(batch=second)
    scope.batch_set(
        by=admin_user, event=event, event_unit_ids=[units[0].pk], batch=first
    )
    appointment = services.appointment_book(
        slot=slot_a, customer=owner, by=admin_user, event_unit=units[0]
    )
    client = login(admin_user)
    url = reverse("handover:appointment_reschedule", args=[appointment.pk])
    data = {"slot": slot_b.pk, "version": appointment.version}
    assertContains(client.post(url, data), "例外原因", status_code=400)
    response = client.post(url, {**data, "override_reason": "业主出差"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert (appointment.slot, appointment.override_reason) == (slot_b, "业主出差")


@pytest.mark.django_db(transaction=True)
def test_removing_a_unit_while_it_is_booked_never_fails_either(admin_user):
    """10 rounds: a booking and a removal from scope of the same unit at once. Either
    the booking wins and the unit stays, or the removal wins and the booking is
    refused cleanly; never an error at commit, never a booking of a unit out of scope."""
    from tests.handover.test_capacity import Crew, _outcome

    project = make_project()
    building = buildings_of(project)[0]
    crew = Crew(2)
    outcomes = []
    try:
        for number in range(10):
            event = make_event(admin_user, name=f"第{number}轮", slots_per_day=1)
            unit = make_units(building, floors=1, per_floor=1, entrance=f"E{number}")[0]
            owner = add_owner(unit)
            event_unit = EventUnit.objects.create(event=event, unit=unit)
            slot = slots_of(event)[0]

            def work(n, slot=slot, owner=owner, event_unit=event_unit, event=event):
                if n == 0:
                    return _outcome(
                        lambda: services.appointment_book(
                            slot=slot,
                            customer=owner,
                            by=admin_user,
                            event_unit=event_unit,
                        )
                    )
                return repr(
                    scope.scope_remove(
                        by=admin_user, event=event, event_unit_ids=[event_unit.pk]
                    )
                )

            booked, removed = crew.round(work)
            in_scope = EventUnit.objects.filter(pk=event_unit.pk).exists()
            outcomes.append((booked, removed, in_scope))
    finally:
        crew.stop()
    for booked, removed, in_scope in outcomes:
        assert (booked, removed, in_scope) in (
            ("ok", "(0, 1)", True),
            ("not_bookable", "(1, 0)", False),
        ), outcomes


def test_bulk_action_on_every_unit_matching_the_filters(
    login, admin_user, event, project
):
    _scoped(admin_user, event)
    first, _second = buildings_of(project)
    client = login(admin_user)
    page = client.get(scope_url(event, building=first.pk))
    assert page.context["matching_count"] == 8
    assertContains(page, "符合筛选条件的全部 8 个房间")
    response = _bulk(
        client,
        event,
        all_matching="1",
        action="eligibility",
        eligibility="not_ready",
        note="外墙未完工",
        filter_query=page.context["filter_query"],
    )
    assert response.status_code == 302
    blocked = EventUnit.objects.filter(eligibility="not_ready")
    assert blocked.count() == 8
    assert set(blocked.values_list("unit__building", flat=True)) == {first.pk}


def test_staff_move_an_owner_at_the_desk_into_held_seats(login, admin_user, event):
    slot_a, slot_b = slots_of(event)
    TimeSlot.objects.filter(pk=slot_b.pk).update(walk_in_hold=5)
    appointment = services.appointment_book(
        slot=slot_a, customer=CustomerFactory(), by=admin_user
    )
    client = login(admin_user)
    url = reverse("handover:appointment_reschedule", args=[appointment.pk])
    data = {"slot": slot_b.pk, "version": appointment.version}
    assertContains(client.post(url, data), "现场预留", status_code=400)
    assert client.post(url, {**data, "is_walk_in": "on"}).status_code == 302
    appointment.refresh_from_db()
    assert appointment.slot == slot_b
