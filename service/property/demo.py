"""The property register's demo data (`seed_demo`): one project of 1,000 units in 10
buildings, each unit with its primary owner and every tenth with a co-owner.

Registered with crm.core.seeding at the end of this module. Written the way the unit
import writes a chunk (service/property/imports.py): the hierarchy through the
services, then one INSERT per table for the owners (customers.builder, the customer
import's own builder), the units, their assets and the ownerships. Idempotent: nothing
is added once the demo project exists. The 入伙 demo (service/handover/demo.py) puts
these units in an event's scope.
"""

from __future__ import annotations

from typing import Any

from faker import Faker

from crm.core import seeding
from customers import builder
from customers.models import Customer
from service.models import Asset
from service.property import services
from service.property.models import Building, Project, Unit, UnitOwnership

DEMO_PROJECT = "LANWAN"
BUILDINGS = 10
ENTRANCES = 2
FLOORS = 25
ROOMS_PER_FLOOR = 2  # per entrance: 10 × 2 × 25 × 2 = 1,000 units
# A mobile prefix the customers demo does not use: owners never collide with it.
PHONE_PREFIX = "177"
LAYOUTS = [("三室两厅两卫", "118.6"), ("两室两厅一卫", "89.2")]


def unit_count() -> int:
    return BUILDINGS * ENTRANCES * FLOORS * ROOMS_PER_FLOOR


def owner_count() -> int:
    """Every unit's primary owner, and a co-owner for every tenth unit."""
    return unit_count() + unit_count() // 10


def seed_demo(run: seeding.DemoRun) -> str:
    if Project.objects.filter(code=DEMO_PROJECT).exists():
        return ""
    units = seed_property_demo(run.users["admin"], seed=run.seed)
    return f"{len(units)} units with owners"


def seed_property_demo(by: Any, *, seed: int = 2026) -> list[Unit]:
    project = services.project_save(
        by=by,
        data={
            "code": DEMO_PROJECT,
            "name": "澜湾花园",
            "city": "深圳市",
            "developer": "澜湾置业有限公司",
            "property_company": "澜湾物业服务有限公司",
        },
    )
    phase = services.phase_save(
        by=by, project=project, data={"code": "1", "name": "一期"}
    )
    buildings = [
        services.building_save(
            by=by, phase=phase, data={"code": str(n), "name": f"{n}栋"}
        )
        for n in range(1, BUILDINGS + 1)
    ]
    units = [
        _unit(building, entrance, floor, room)
        for building in buildings
        for entrance in range(1, ENTRANCES + 1)
        for floor in range(1, FLOORS + 1)
        for room in range(1, ROOMS_PER_FLOOR + 1)
    ]
    with builder.history(by, source="seed_demo"):
        Unit.objects.bulk_create(units)
        owners = _owners(by, len(units), seed)
        _own(units, owners)
    return units


def _unit(building: Building, entrance: int, floor: int, room: int) -> Unit:
    number = f"{floor}{room:02d}"
    layout, area = LAYOUTS[room % 2]
    return Unit(
        building=building,
        entrance=str(entrance),
        floor=floor,
        room=number,
        code=services.unit_code(building, str(entrance), number),
        layout=layout,
        fit_out=Unit.FitOut.FINISHED,
        contract_area=area,
        measured_area=area,
    )


def _owners(by: Any, count: int, seed: int) -> list[Customer]:
    """`count` primary owners, then one co-owner for every tenth unit."""
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    people = count + count // 10  # owner_count()
    news = [
        builder.build(
            data={
                "name": fake.name(),
                "kind": Customer.Kind.OWNER,
                "stage": Customer.Stage.CUSTOMER,
                "source": Customer.Source.OTHER,
                "city": "深圳市",
            },
            phone_numbers=[f"{PHONE_PREFIX}{n:08d}"],
            owner=by,
        )
        for n in range(people)
    ]
    builder.save_many(news, by=by, source="seed_demo")
    return [new.customer for new in news]


def _own(units: list[Unit], owners: list[Customer]) -> None:
    assets, ownerships = [], []
    co_owners = iter(owners[len(units) :])
    for n, unit in enumerate(units):
        people = [(owners[n], UnitOwnership.Role.PRIMARY)]
        if n % 10 == 9:
            people.append((next(co_owners), UnitOwnership.Role.CO_OWNER))
        for customer, role in people:
            asset = Asset(
                customer=customer,
                kind=Asset.Kind.UNIT,
                name=unit.label[:100],
                serial=unit.code[:60],
            )
            assets.append(asset)
            ownerships.append(
                UnitOwnership(
                    unit=unit,
                    customer=customer,
                    role=role,
                    contract_no=f"LW-{unit.code}" if role == "primary" else "",
                    asset=asset,
                )
            )
    Asset.objects.bulk_create(assets)
    for ownership in ownerships:
        ownership.asset_id = ownership.asset.pk
    UnitOwnership.objects.bulk_create(ownerships)


seeding.register(__name__, demo=seed_demo)
