"""The settings area's platform pages: the index, departments, teams (members, lead)
and users' away status, which round-robin assignment reads."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains

from crm.accounts.models import Department, Team
from crm.accounts.roles import Role
from crm.core.models import AccessLog
from service import services
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    DepartmentFactory,
    TeamFactory,
    UserFactory,
)


@pytest.fixture
def admin(admin_user: Any, client: Any) -> Any:
    client.force_login(admin_user)
    return client


def test_the_admin_finds_every_section_on_the_settings_index(admin: Any) -> None:
    page = admin.get(reverse("settings:index"))
    for label in (
        "工单分类",
        "SLA 策略",
        "节假日与调休",
        "常用回复",
        "团队",
        "用户与暂离",
    ):
        assertContains(page, label)
    home = admin.get("/")
    assertContains(home, reverse("settings:index"))


def test_a_team_gets_its_members_and_lead_from_one_form(admin: Any) -> None:
    department = DepartmentFactory(name="客户服务部")
    alice = UserFactory(username="alice", team=None, role=Role.SERVICE)
    bob = UserFactory(username="bob", team=None, role=Role.SERVICE)
    response = admin.post(
        reverse("settings:teams_create"),
        {
            "name": "夜班组",
            "department": department.pk,
            "lead": alice.pk,
            "members": [alice.pk, bob.pk],
        },
    )
    assert response.status_code == 302
    team = Team.objects.get(name="夜班组")
    assert team.lead == alice
    assert set(team.members.values_list("username", flat=True)) == {"alice", "bob"}

    admin.post(
        reverse("settings:teams_edit", args=[team.pk]),
        {"name": "夜班组", "department": department.pk, "members": [bob.pk]},
    )
    alice.refresh_from_db()
    team.refresh_from_db()
    assert alice.team is None and team.lead is None
    assert AccessLog.objects.filter(action="settings_changed").count() == 2


def test_a_duplicate_team_or_department_name_is_a_form_error(admin: Any) -> None:
    TeamFactory(name="客服组", department=DepartmentFactory(name="客户服务部"))
    department = Department.objects.get()
    response = admin.post(
        reverse("settings:teams_create"),
        {"name": "客服组", "department": department.pk},
    )
    assert response.status_code == 400
    response = admin.post(
        reverse("settings:departments_create"), {"name": "客户服务部"}
    )
    assert response.status_code == 400
    assert Team.objects.count() == 1 and Department.objects.count() == 1


def test_a_department_with_teams_is_not_deleted(admin: Any) -> None:
    team = TeamFactory(name="客服组")
    response = admin.post(
        reverse("settings:departments_delete", args=[team.department_id])
    )
    assert response.status_code == 409
    assert Department.objects.filter(pk=team.department_id).exists()


def _ticket(by: Any, category: Any) -> Any:
    return services.ticket_create(
        by=by,
        customer=CustomerFactory(),
        ticket_type="repair",
        channel="hotline",
        subject="门锁坏了",
        description="……",
        category=category,
    )


def test_an_away_agent_is_skipped_by_round_robin_until_back(
    admin: Any, admin_user: Any
) -> None:
    desk = TeamFactory(name="客服组")
    first = UserFactory(username="agent1", team=desk, role=Role.SERVICE)
    second = UserFactory(username="agent2", team=desk, role=Role.SERVICE)
    category = CategoryFactory(name="报修", team=desk)

    users = admin.get(reverse("settings:users_list"), {"team": desk.pk})
    assertContains(users, "agent1")
    response = admin.post(
        reverse("settings:user_away", args=[first.pk]), {"is_away": "1"}
    )
    assert response.status_code == 302
    assert [_ticket(admin_user, category).assignee for _ in range(2)] == [
        second,
        second,
    ]
    log = AccessLog.objects.get(action="away_changed")
    assert (log.user, log.object_id, log.detail) == (
        admin_user,
        first.pk,
        "agent1 away",
    )
    away_only = admin.get(reverse("settings:users_list"), {"away": "1"})
    assert [r["object"] for r in away_only.context["page"].object_list] == [first]

    admin.post(reverse("settings:user_away", args=[first.pk]), {"is_away": "0"})
    assert _ticket(admin_user, category).assignee == first


def test_an_agent_sets_their_own_away_status_from_the_user_menu(
    client: Any, db: None
) -> None:
    agent = UserFactory(username="agent1", role=Role.SERVICE)
    other = UserFactory(username="agent2", role=Role.SERVICE)
    client.force_login(agent)
    assertContains(client.get("/"), "设为暂离（不参与分派）")
    response = client.post(
        reverse("accounts:away_self"), {"is_away": "1", "next": "/service/"}
    )
    assert response.status_code == 302 and response["Location"] == "/service/"
    agent.refresh_from_db()
    assert agent.is_away
    assertContains(client.get("/"), "我回来了（参与分派）")
    # Someone else's status is not theirs to set: that page is the admins'.
    assert (
        client.post(
            reverse("settings:user_away", args=[other.pk]), {"is_away": "1"}
        ).status_code
        == 403
    )
    # An outside "next" is not followed.
    response = client.post(
        reverse("accounts:away_self"),
        {"is_away": "0", "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"
