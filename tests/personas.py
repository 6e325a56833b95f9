"""The personas of tests/conftest.py made outside a test function, for fixtures that
build a module's records once (module scope, in a transaction rolled back after the
module): the same names, teams, departments and roles as the conftest fixtures."""

from __future__ import annotations

from django.db import transaction

from crm.accounts.models import User
from crm.accounts.roles import Role
from tests.factories import DepartmentFactory, TeamFactory, UserFactory


def make_personas() -> dict[str, User]:
    """sales_rep, teammate, outsider, far_outsider, manager, service_agent,
    admin_user and readonly_user, as tests/conftest.py makes them. Call inside a
    transaction that the caller rolls back."""
    assert transaction.get_connection().in_atomic_block
    sales_dept = DepartmentFactory(name="销售部")
    team_a = TeamFactory(name="销售一组", department=sales_dept)
    team_b = TeamFactory(name="销售二组", department=sales_dept)
    far_team = TeamFactory(
        name="华南组", department=DepartmentFactory(name="华南销售部")
    )
    service_team = TeamFactory(
        name="客服组", department=DepartmentFactory(name="客户服务部")
    )
    return {
        "sales_rep": UserFactory(username="sales_a", team=team_a, role=Role.SALES),
        "teammate": UserFactory(username="sales_a2", team=team_a, role=Role.SALES),
        "outsider": UserFactory(username="sales_b", team=team_b, role=Role.SALES),
        "far_outsider": UserFactory(
            username="sales_far", team=far_team, role=Role.SALES
        ),
        "manager": UserFactory(username="manager_a", team=team_a, role=Role.MANAGER),
        "service_agent": UserFactory(
            username="service_a", team=service_team, role=Role.SERVICE
        ),
        "admin_user": UserFactory(
            username="admin_a", team=None, role=Role.ADMIN, is_staff=True
        ),
        "readonly_user": UserFactory(username="norole", team=None),
    }
