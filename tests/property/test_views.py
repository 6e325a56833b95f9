"""The property pages through the real stack: who may open and change what, masking
of owners' personal data, bad input, constant query counts, the customer panel."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from service.property.models import (
    Building,
    Phase,
    Project,
    ProxyAuthorisation,
    Unit,
    UnitOwnership,
)
from tests.property import builders

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%%EOF\n"
PHONE = "13912345678"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def unit(admin_user):
    unit = builders.unit_with_owner(admin_user, owner_name="王建国", phone=PHONE)
    builders.services.proxy_add(
        by=admin_user,
        unit=unit,
        owner=unit.ownerships.get().customer,
        proxy=builders.make_owner(admin_user, name="赵代理", phone="13700000001"),
        document=SimpleUploadedFile("a.pdf", PDF),
    )
    return unit


def _pages(unit):
    building = unit.building
    phase = building.phase
    project = phase.project
    proxy = ProxyAuthorisation.objects.get()
    ownership = unit.ownerships.get()
    view = [
        reverse("property:project_list"),
        reverse("property:project_detail", args=[project.pk]),
        reverse("property:building_detail", args=[building.pk]),
        reverse("property:unit_detail", args=[unit.pk]),
    ]
    edit_get = [
        reverse("property:project_create"),
        reverse("property:project_edit", args=[project.pk]),
        reverse("property:phase_create", args=[project.pk]),
        reverse("property:building_create", args=[phase.pk]),
        reverse("property:building_edit", args=[building.pk]),
        reverse("property:unit_create", args=[building.pk]),
        reverse("property:unit_edit", args=[unit.pk]),
        reverse("property:owner_add", args=[unit.pk]),
        reverse("property:proxy_add", args=[unit.pk]),
        reverse("property:proxy_document", args=[proxy.pk]),
        reverse("property:import_upload"),
        reverse("property:import_template"),
    ]
    edit_post = [
        reverse("property:owner_end", args=[ownership.pk]),
        reverse("property:proxy_revoke", args=[proxy.pk]),
    ]
    return view, edit_get, edit_post


def test_anonymous_is_sent_to_login(client, unit):
    view, edit_get, edit_post = _pages(unit)
    for url in view + edit_get:
        response = client.get(url)
        assert (
            response.status_code == 302 and "/accounts/login/" in response["Location"]
        )
    for url in edit_post:
        assert "/accounts/login/" in client.post(url)["Location"]
    assert UnitOwnership.objects.get().is_active


@pytest.mark.parametrize("persona", ["sales_rep", "service_agent"])
def test_staff_may_view_but_not_edit(request, client, unit, persona):
    client.force_login(request.getfixturevalue(persona))
    view, edit_get, edit_post = _pages(unit)
    for url in view:
        assert client.get(url).status_code == 200, url
    for url in edit_get:
        assert client.get(url).status_code == 403, url
    for url in edit_post:
        assert client.post(url).status_code == 403, url
    assert UnitOwnership.objects.get().is_active
    assert ProxyAuthorisation.objects.get().revoked_at is None


def test_a_user_without_role_sees_nothing(client, unit, readonly_user):
    client.force_login(readonly_user)
    view, edit_get, _post = _pages(unit)
    for url in view + edit_get:
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize("persona", ["manager", "admin_user"])
def test_managers_and_admins_edit(request, client, unit, persona):
    client.force_login(request.getfixturevalue(persona))
    view, edit_get, _post = _pages(unit)
    for url in view + edit_get:
        assert client.get(url).status_code == 200, url


def test_unknown_ids_are_404(client, manager):
    client.force_login(manager)
    for name in ("project_detail", "building_detail", "unit_detail", "unit_edit"):
        assert client.get(reverse(f"property:{name}", args=[999999])).status_code == 404


def test_service_desk_sees_owner_phones_and_names_masked(client, unit, service_agent):
    client.force_login(service_agent)
    page = client.get(unit.get_absolute_url())
    assertContains(page, "139****5678")
    assertNotContains(page, PHONE)
    assertContains(page, "王**")
    assertNotContains(page, "王建国")
    grid = client.get(unit.building.get_absolute_url())
    assertContains(grid, "王**")
    assertNotContains(grid, "王建国")


def test_sales_see_owner_phone_in_clear(client, unit, sales_rep):
    client.force_login(sales_rep)
    page = client.get(unit.get_absolute_url())
    assertContains(page, PHONE)
    assertContains(page, "王建国")
    assertContains(page, "+0.69%")  # 90.12 vs 89.50


def test_project_list_counts_units(client, admin_user, sales_rep):
    builders.project_with_units(2, 3, admin_user, with_owners=False)
    client.force_login(sales_rep)
    page = client.get(reverse("property:project_list"))
    assertContains(
        page, '<td class="text-end" data-testid="unit-count">6</td>', html=True
    )


def test_empty_list_says_so(client, manager):
    client.force_login(manager)
    assertContains(client.get(reverse("property:project_list")), "还没有楼盘")


def test_building_grid_queries_do_not_grow(
    client, admin_user, sales_rep, django_assert_max_num_queries
):
    building = builders.make_building(admin_user)
    for n in range(2):
        builders.unit_with_owner(admin_user, building=building, floor=3, room=f"30{n}")
    client.force_login(sales_rep)
    url = building.get_absolute_url()
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for n in range(8):
        builders.unit_with_owner(
            admin_user, building=building, floor=5 + n, room=f"{5 + n}01", co_owner=True
        )
    with CaptureQueriesContext(connection) as large:
        client.get(url)
    assert len(large) == len(small)
    with CaptureQueriesContext(connection) as unit_page:
        client.get(Unit.objects.last().get_absolute_url())
    with django_assert_max_num_queries(len(unit_page)):
        client.get(Unit.objects.first().get_absolute_url())


def test_creating_the_hierarchy_through_the_forms(client, manager):
    client.force_login(manager)
    response = client.post(
        reverse("property:project_create"), {"code": "ljy", "name": "龙景园"}
    )
    project = Project.objects.get()
    assert response["Location"] == project.get_absolute_url()
    assert project.code == "LJY"
    client.post(
        reverse("property:phase_create", args=[project.pk]),
        {"code": "2", "name": "二期"},
    )
    phase = Phase.objects.get()
    client.post(
        reverse("property:building_create", args=[phase.pk]),
        {"code": "5", "name": "5栋", "product_type": "high_rise"},
    )
    building = Building.objects.get()
    response = client.post(
        reverse("property:unit_create", args=[building.pk]),
        {"entrance": "1", "floor": "8", "room": "801", "fit_out": "finished"},
    )
    unit = Unit.objects.get()
    assert response["Location"] == unit.get_absolute_url()
    assert unit.code == "LJY-2-5-1-801"
    response = client.post(
        reverse("property:owner_add", args=[unit.pk]),
        {"role": "primary", "name": "陈小红", "phone": "13811112222", "id_number": ""},
    )
    assert response.status_code == 302
    owner = unit.ownerships.get().customer
    assert owner.name == "陈小红"
    response = client.post(
        reverse("property:proxy_add", args=[unit.pk]),
        {
            "owner": owner.pk,
            "scope": "handover",
            "name": "陈大伟",
            "phone": "13811113333",
            "document": SimpleUploadedFile("委托书.pdf", PDF),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    proxy = ProxyAuthorisation.objects.get()
    document = client.get(reverse("property:proxy_document", args=[proxy.pk]))
    assert b"".join(document.streaming_content) == PDF


def test_bad_input_rerenders_with_messages_and_saves_nothing(
    client, manager, admin_user
):
    building = builders.make_building(admin_user)
    client.force_login(manager)
    response = client.post(
        reverse("property:unit_create", args=[building.pk]),
        {"floor": "abc", "room": "", "contract_area": "-1", "fit_out": "shell"},
    )
    assert response.status_code == 400
    assert not Unit.objects.exists()
    unit = builders.unit_with_owner(admin_user, building=building)
    response = client.post(
        reverse("property:owner_add", args=[unit.pk]),
        {"role": "primary", "name": "李四", "phone": "12345", "id_number": ""},
    )
    assert response.status_code == 400
    assertContains(response, "不是有效的电话号码", status_code=400)
    response = client.post(
        reverse("property:owner_add", args=[unit.pk]),
        {"role": "primary", "name": "李四", "phone": "13855556666", "id_number": ""},
    )
    assertContains(response, "只能有一位主业主", status_code=400)
    assert unit.ownerships.count() == 1
    response = client.post(
        reverse("property:proxy_add", args=[unit.pk]),
        {
            "owner": unit.ownerships.get().customer_id,
            "scope": "handover",
            "name": "代理",
            "phone": "13811113333",
            "document": SimpleUploadedFile("a.exe", b"MZ"),
        },
    )
    assertContains(response, "只能是 PDF、JPG 或 PNG", status_code=400)
    assert not ProxyAuthorisation.objects.exists()


def test_ending_an_ownership_and_revoking_a_proxy(client, unit, manager):
    client.force_login(manager)
    proxy = ProxyAuthorisation.objects.get()
    client.post(reverse("property:proxy_revoke", args=[proxy.pk]))
    assert ProxyAuthorisation.objects.get().revoked_at is not None
    ownership = unit.ownerships.get()
    client.post(reverse("property:owner_end", args=[ownership.pk]))
    assert not UnitOwnership.objects.get().is_active
    assertContains(client.get(unit.get_absolute_url()), "已结束")


def test_the_customer_page_shows_the_property_panel(
    client, unit, sales_rep, admin_user
):
    owner = unit.ownerships.get().customer
    owner.owner = sales_rep
    owner.team = sales_rep.team
    owner.save()
    proxy = ProxyAuthorisation.objects.get().proxy
    proxy.owner = sales_rep
    proxy.team = sales_rep.team
    proxy.save()
    client.force_login(sales_rep)
    page = client.get(owner.get_absolute_url())
    assertContains(page, 'data-testid="property-panel"')
    assertContains(page, unit.label)
    assertContains(page, "主业主")
    page = client.get(proxy.get_absolute_url())
    assertContains(page, "受 王建国 委托")


def test_the_navbar_has_the_property_entry(client, sales_rep):
    client.force_login(sales_rep)
    assertContains(client.get(reverse("property:project_list")), "房产")


def test_the_unit_page_shows_its_handover_read_only(
    client, unit, admin_user, sales_rep
):
    from service.handover.models import Appointment, EventUnit
    from tests.handover.builders import make_event, slots_of

    event = make_event(admin_user, name="翠湖花园一期集中交付")
    booked = EventUnit.objects.create(event=event, unit=unit)
    slot = slots_of(event)[0]
    Appointment.objects.create(
        event=event,
        slot=slot,
        customer=unit.ownerships.get().customer,
        event_unit=booked,
        created_by=admin_user,
    )
    later = make_event(admin_user, name="二期内部预验", days_ahead=10)
    EventUnit.objects.create(
        event=later, unit=unit, eligibility="arrears", eligibility_note="尾款未结清"
    )
    client.force_login(sales_rep)
    page = client.get(unit.get_absolute_url())
    assertContains(page, "翠湖花园一期集中交付")
    assertContains(page, f"已预约 {slot.date:%Y-%m-%d} 09:00")
    assertContains(page, "业主欠款")
    assertContains(page, "尾款未结清")


def test_project_list_queries_do_not_grow(client, admin_user, sales_rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    builders.project_with_units(1, 2, admin_user, code="A", with_owners=False)
    client.force_login(sales_rep)
    url = reverse("property:project_list")
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for code in ("B", "C", "D"):
        builders.project_with_units(2, 2, admin_user, code=code, with_owners=False)
    with CaptureQueriesContext(connection) as large:
        client.get(url)
    assert len(large) == len(small)


def test_project_page_queries_do_not_grow(client, admin_user, sales_rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project = builders.project_with_units(1, 2, admin_user, with_owners=False)
    client.force_login(sales_rep)
    url = project.get_absolute_url()
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    _p, phase2 = builders.make_project(admin_user, phase="2")
    for code in ("7", "8", "9"):
        building = builders.make_building(admin_user, phase=phase2, code=code)
        builders.unit_with_owner(admin_user, building=building)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url)
    assert len(large) == len(small)
    assertContains(response, "9栋")
