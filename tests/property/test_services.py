"""The property register's services against PostgreSQL: the hierarchy, owners as
customers and assets, proxies and their documents, who may write."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.models import Customer
from service.models import Asset
from service.property import services
from service.property.models import ProxyAuthorisation, Unit, UnitOwnership
from tests.property import builders

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_a_unit_gets_its_code_from_its_place(admin_user):
    building = builders.make_building(admin_user)
    unit = services.unit_save(
        by=admin_user,
        building=building,
        data={"entrance": "2", "floor": 15, "room": "1502"},
    )
    assert unit.code == "CHG-1-1-2-1502"
    assert unit.label == "1栋2单元1502"


def test_the_same_room_twice_in_an_entrance_is_refused(admin_user):
    building = builders.make_building(admin_user)
    data = {"entrance": "2", "floor": 15, "room": "1502"}
    services.unit_save(by=admin_user, building=building, data=data)
    with pytest.raises(ValidationError):
        services.unit_save(
            by=admin_user, building=building, data={**data, "code": "OTHER"}
        )
    assert Unit.objects.count() == 1


def test_area_difference_is_a_percentage(admin_user):
    unit = builders.unit_with_owner(
        admin_user, contract_area="100.00", measured_area="103.50"
    )
    assert unit.area_difference_percent == Decimal("3.50")


@pytest.mark.parametrize("persona", ["sales_rep", "service_agent"])
def test_only_managers_and_admins_write(request, persona):
    user = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        services.project_save(by=user, data={"code": "X", "name": "X"})


def test_a_new_owner_becomes_a_customer_with_the_unit_as_asset(manager):
    unit = builders.unit_with_owner(manager, phone="13912345678")
    ownership = unit.ownerships.get()
    owner = ownership.customer
    assert (owner.kind, owner.stage, owner.phone) == (
        "owner",
        "customer",
        "13912345678",
    )
    assert owner.owner == manager
    asset = ownership.asset
    assert (asset.customer, asset.kind, asset.name, asset.serial) == (
        owner,
        Asset.Kind.UNIT,
        unit.label,
        unit.code,
    )


def test_an_existing_customer_is_found_by_phone_or_id_number(manager):
    first, created = services.owner_find_or_create(
        by=manager,
        name="王建国",
        phone="139 1234 5678",
        id_number="11010519491231002X",
    )
    assert created
    by_phone, created = services.owner_find_or_create(
        by=manager, name="王先生", phone="+86 13912345678"
    )
    assert (by_phone, created) == (first, False)
    by_id, created = services.owner_find_or_create(
        by=manager, name="王建国", id_number="11010519491231002x"
    )
    assert (by_id, created) == (first, False)
    assert Customer.objects.count() == 1


def test_a_phone_and_id_number_of_two_customers_are_refused(manager):
    services.owner_find_or_create(by=manager, name="甲", phone="13900000001")
    services.owner_find_or_create(
        by=manager, name="乙", phone="13900000002", id_number="11010519491231002X"
    )
    with pytest.raises(ValidationError, match="两位不同的现有客户"):
        services.owner_find_or_create(
            by=manager, name="丙", phone="13900000001", id_number="11010519491231002X"
        )


def test_one_primary_owner_per_unit_and_co_owners_beside(manager):
    unit = builders.unit_with_owner(manager, co_owner=True)
    roles = sorted(unit.ownerships.values_list("role", flat=True))
    assert roles == ["co_owner", "primary"]
    other = builders.make_owner(manager, name="赵六")
    with pytest.raises(ValidationError, match="只能有一位主业主"):
        services.ownership_add(by=manager, unit=unit, customer=other)
    with pytest.raises(ValidationError, match="已是本房间的业主"):
        services.ownership_add(
            by=manager,
            unit=unit,
            customer=unit.ownerships.first().customer,
            role=UnitOwnership.Role.CO_OWNER,
        )


def test_ending_an_ownership_frees_the_primary_place(manager):
    unit = builders.unit_with_owner(manager)
    ownership = unit.ownerships.get()
    services.ownership_end(by=manager, ownership=ownership)
    assert not UnitOwnership.objects.get(pk=ownership.pk).is_active
    assert "不再是该房间的业主" in Asset.objects.get(pk=ownership.asset_id).notes
    buyer = builders.make_owner(manager, name="新业主")
    services.ownership_add(by=manager, unit=unit, customer=buyer)
    with pytest.raises(ValidationError):
        services.ownership_end(by=manager, ownership=ownership)


def _proxy(manager, unit, document, **kwargs):
    owner = unit.ownerships.get(role="primary").customer
    proxy = builders.make_owner(manager, name="代理人")
    return services.proxy_add(
        by=manager, unit=unit, owner=owner, proxy=proxy, document=document, **kwargs
    )


def test_a_proxy_is_recorded_with_its_document_and_revoked(manager):
    unit = builders.unit_with_owner(manager)
    authorisation = _proxy(
        manager,
        unit,
        SimpleUploadedFile("张三身份证.pdf", PDF),
        valid_until=dt.date.today() + dt.timedelta(days=30),
    )
    assert authorisation.verified_by == manager
    assert authorisation.document.name.endswith(".pdf")
    assert "张三" not in authorisation.document.name
    services.proxy_revoke(by=manager, authorisation=authorisation)
    assert ProxyAuthorisation.objects.get().revoked_at is not None


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("a.exe", b"MZ", "只能是 PDF、JPG 或 PNG"),
        ("a.pdf", b"<html>", "文件内容与扩展名不符"),
        ("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024), "不能超过 5 MB"),
    ],
)
def test_a_bad_document_is_refused(manager, name, content, reason):
    unit = builders.unit_with_owner(manager)
    with pytest.raises(ValidationError, match=reason):
        _proxy(manager, unit, SimpleUploadedFile(name, content))
    assert not ProxyAuthorisation.objects.exists()


def test_only_an_owner_of_the_unit_can_grant_a_proxy(manager):
    unit = builders.unit_with_owner(manager)
    stranger = builders.make_owner(manager, name="路人")
    with pytest.raises(ValidationError, match="现有业主"):
        services.proxy_add(
            by=manager,
            unit=unit,
            owner=stranger,
            proxy=builders.make_owner(manager, name="代理人"),
            document=SimpleUploadedFile("a.pdf", PDF),
        )


def test_project_with_units_builds_owned_units(admin_user):
    project = builders.project_with_units(2, 5, admin_user)
    units = builders.units_of(project)
    assert len(units) == 10
    assert UnitOwnership.objects.filter(is_active=True).count() == 10
    assert len({u.code for u in units}) == 10


def test_a_merged_duplicates_units_and_proxies_go_to_the_survivor(admin_user):
    from customers import services as customer_services

    shared = builders.unit_with_owner(admin_user, owner_name="王建国")
    duplicate = shared.ownerships.get().customer
    survivor = builders.make_owner(admin_user, name="王建国（新）")
    services.ownership_add(
        by=admin_user, unit=shared, customer=survivor, role=UnitOwnership.Role.CO_OWNER
    )
    only_dup = builders.unit_with_owner(admin_user, owner=duplicate)
    helper = builders.make_owner(admin_user, name="代理人")
    services.proxy_add(
        by=admin_user,
        unit=only_dup,
        owner=duplicate,
        proxy=helper,
        document=SimpleUploadedFile("a.pdf", PDF),
    )
    between = services.proxy_add(
        by=admin_user,
        unit=shared,
        owner=duplicate,
        proxy=survivor,
        document=SimpleUploadedFile("b.pdf", PDF),
    )
    customer_services.customer_merge(
        by=admin_user, survivor=survivor, duplicate=duplicate
    )
    active = UnitOwnership.objects.filter(is_active=True)
    assert set(active.values_list("unit_id", "customer_id", "role")) == {
        (shared.pk, survivor.pk, "primary"),
        (only_dup.pk, survivor.pk, "primary"),
    }
    assert ProxyAuthorisation.objects.get(proxy=helper).owner == survivor
    between.refresh_from_db()
    assert between.revoked_at is not None and between.owner == duplicate
