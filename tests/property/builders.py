"""Projects, units and owners built through the real services (service/property).

For other tests too (handover scope, batches, notices, owner links):

    unit = unit_with_owner()                      # one unit, a primary owner
    unit = unit_with_owner(co_owner=True)         # and a co-owner
    project = project_with_units(2, 10)           # 2 buildings × 10 units, owned
    units_of(project)                             # its units, in place order

`by` defaults to an admin made on first use. Phones are unique per test run
(139xxxxxxxx from a counter), so builders can be called many times in one test.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from crm.accounts.roles import Role
from customers.models import Customer
from service.property import services
from service.property.models import Building, Phase, Project, Unit, UnitOwnership
from tests.factories import UserFactory

_numbers = itertools.count(1)


def next_phone() -> str:
    return f"139{next(_numbers) + 10_000_000:08d}"


def property_admin() -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="property_admin").first()
    return user or UserFactory(username="property_admin", team=None, role=Role.ADMIN)


def make_project(
    by: Any = None, *, code: str = "CHG", name: str = "翠湖花园", phase: str = "1"
) -> tuple[Project, Phase]:
    by = by or property_admin()
    project = Project.objects.filter(code=code).first() or services.project_save(
        by=by, data={"code": code, "name": name, "city": "深圳市"}
    )
    found = Phase.objects.filter(project=project, code=phase).first()
    return project, found or services.phase_save(
        by=by, project=project, data={"code": phase, "name": f"{phase}期"}
    )


def make_building(
    by: Any = None, *, phase: Phase | None = None, code: str = "1"
) -> Building:
    by = by or property_admin()
    phase = phase or make_project(by)[1]
    found = Building.objects.filter(phase=phase, code=code).first()
    return found or services.building_save(
        by=by, phase=phase, data={"code": code, "name": f"{code}栋"}
    )


def make_owner(
    by: Any = None, *, name: str = "王建国", phone: str | None = None
) -> Customer:
    by = by or property_admin()
    customer, _created = services.owner_find_or_create(
        by=by, name=name, phone=phone or next_phone()
    )
    return customer


def unit_with_owner(
    by: Any = None,
    *,
    building: Building | None = None,
    entrance: str = "1",
    floor: int = 15,
    room: str | None = None,
    owner: Customer | None = None,
    owner_name: str = "王建国",
    phone: str | None = None,
    co_owner: bool | Customer = False,
    contract_area: str = "89.50",
    measured_area: str = "90.12",
) -> Unit:
    """A unit (15th floor, room 15xx) with a primary owner, and a co-owner if asked."""
    by = by or property_admin()
    building = building or make_building(by)
    if room is None:
        taken = Unit.objects.filter(building=building, entrance=entrance).count()
        room = f"{floor}{taken + 1:02d}"
    unit = services.unit_save(
        by=by,
        building=building,
        data={
            "entrance": entrance,
            "floor": floor,
            "room": room,
            "layout": "三室两厅",
            "contract_area": Decimal(contract_area),
            "measured_area": Decimal(measured_area),
        },
    )
    owner = owner or make_owner(by, name=owner_name, phone=phone)
    services.ownership_add(
        by=by, unit=unit, customer=owner, contract_no=f"HT-{unit.pk}"
    )
    if co_owner:
        other = (
            co_owner
            if isinstance(co_owner, Customer)
            else make_owner(by, name="李秀英")
        )
        services.ownership_add(
            by=by, unit=unit, customer=other, role=UnitOwnership.Role.CO_OWNER
        )
    return unit


def project_with_units(
    n_buildings: int,
    units_per_building: int,
    by: Any = None,
    *,
    code: str = "CHG",
    name: str = "翠湖花园",
    with_owners: bool = True,
    floors: int = 30,
) -> Project:
    """A project, phase 1, `n_buildings` buildings (1栋, 2栋…), each with
    `units_per_building` units in entrance 1 filled floor by floor (4 rooms a floor),
    each with its own primary owner unless `with_owners` is False."""
    by = by or property_admin()
    project, phase = make_project(by, code=code, name=name)
    for b in range(1, n_buildings + 1):
        building = make_building(by, phase=phase, code=str(b))
        for n in range(units_per_building):
            floor, position = divmod(n, 4)
            floor = floor % floors + 1
            room = f"{floor}{position + 1:02d}"
            if n >= 4 * floors:
                room = f"{room}-{n // (4 * floors)}"
            if with_owners:
                unit_with_owner(
                    by,
                    building=building,
                    floor=floor,
                    room=room,
                    owner_name=f"业主{b}-{n + 1}",
                )
            else:
                services.unit_save(
                    by=by,
                    building=building,
                    data={"entrance": "1", "floor": floor, "room": room},
                )
    return project


def units_of(project: Project) -> list[Unit]:
    return list(
        Unit.objects.filter(building__phase__project=project)
        .with_place()
        .order_by("building__code", "entrance", "floor", "room")
    )
