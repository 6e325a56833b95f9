"""Personas shared by every test: two sales teams in one department, another department,
and one user of each role. Groups and permissions come from the real post-migrate sync."""

from __future__ import annotations

import os

import pytest
from django.utils import translation

from crm.accounts.roles import Role
from tests import fast_flush, parts, template_db
from tests.factories import DepartmentFactory, TeamFactory, UserFactory

fast_flush.install()


def pytest_addoption(parser: pytest.Parser) -> None:
    parts.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    parts.register(config)


PASSWORD = "pw-for-tests-123"


def _clone_from_template(config: pytest.Config) -> bool:
    """Test databases are copies of a migrated template (tests/template_db.py), unless
    the run reuses its database (--reuse-db) or KEHU_TEST_TEMPLATE=0 asks for the
    migrations to run from nothing."""
    return not config.getvalue("reuse_db") and os.environ.get(
        "KEHU_TEST_TEMPLATE", "1"
    ) not in ("0", "false", "no")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, request):
    """After pytest-django named this worker's test database: make it, a copy of the
    template, and drop it when the session ends."""
    if not _clone_from_template(request.config):
        return
    from django.db import connection

    name = connection.creation._get_test_db_name()
    template_db.clone(connection.settings_dict, name)
    request.addfinalizer(lambda: template_db.drop(connection.settings_dict, name))


@pytest.fixture(scope="session")
def django_db_keepdb(request) -> bool:
    # The copy is there: Django keeps it, and its migrate finds nothing left to do.
    return request.config.getvalue("reuse_db") or _clone_from_template(request.config)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, then the rows the migrations left are saved for the quick
    restore that ends each transactional test (tests/fast_flush.py)."""
    with django_db_blocker.unblock():
        fast_flush.save_initial()


@pytest.fixture(autouse=True)
def _default_language():
    # A request in English leaves English active in the thread (the language middleware
    # activates it per request); without this the next test would start in English.
    yield
    translation.deactivate()


@pytest.fixture
def sales_dept(db):
    return DepartmentFactory(name="销售部")


@pytest.fixture
def team_a(sales_dept):
    return TeamFactory(name="销售一组", department=sales_dept)


@pytest.fixture
def team_b(sales_dept):
    return TeamFactory(name="销售二组", department=sales_dept)


@pytest.fixture
def other_team(db):
    return TeamFactory(name="华南组", department=DepartmentFactory(name="华南销售部"))


@pytest.fixture
def sales_rep(team_a):
    return UserFactory(username="sales_a", team=team_a, role=Role.SALES)


@pytest.fixture
def teammate(team_a):
    return UserFactory(username="sales_a2", team=team_a, role=Role.SALES)


@pytest.fixture
def outsider(team_b):
    """A salesperson of another team in the same department."""
    return UserFactory(username="sales_b", team=team_b, role=Role.SALES)


@pytest.fixture
def far_outsider(other_team):
    """A salesperson of another department."""
    return UserFactory(username="sales_far", team=other_team, role=Role.SALES)


@pytest.fixture
def manager(team_a):
    return UserFactory(username="manager_a", team=team_a, role=Role.MANAGER)


@pytest.fixture
def service_agent(db):
    team = TeamFactory(name="客服组", department=DepartmentFactory(name="客户服务部"))
    return UserFactory(username="service_a", team=team, role=Role.SERVICE)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin_a", team=None, role=Role.ADMIN, is_staff=True)


@pytest.fixture
def readonly_user(db):
    """An account with no role: it can log in but may use no page."""
    return UserFactory(username="norole", team=None)


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login
