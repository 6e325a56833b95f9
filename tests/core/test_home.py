from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains


@pytest.mark.parametrize(
    "persona, title",
    [
        ("sales_rep", "我的一天"),
        ("service_agent", "客服工作台"),
        ("manager", "部门概览"),
        ("admin_user", "系统管理"),
    ],
)
def test_each_role_sees_its_own_home_page(request, login, persona, title):
    client = login(request.getfixturevalue(persona))
    response = client.get(reverse("home"))
    assertContains(response, title)


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_user_without_role_gets_403_home(login, readonly_user):
    response = login(readonly_user).get(reverse("home"))
    assertContains(response, "还没有分配角色", status_code=403)
