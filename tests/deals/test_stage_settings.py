"""Deal stages in the settings area: admins only; a stage with deals is deactivated,
never deleted; an inactive stage leaves the board."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from culture.deals.models import DealStage
from tests.factories import CustomerFactory, DealFactory, deal_stage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("persona", "status"),
    [("admin_user", 200), ("manager", 403), ("sales_rep", 403), ("service_agent", 403)],
)
def test_only_admins_manage_stages(request, client, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("deals_admin:stages_list")).status_code == status


def test_the_settings_index_lists_the_stages_section(client, admin_user):
    client.force_login(admin_user)
    assertContains(
        client.get(reverse("settings:index")), reverse("deals_admin:stages_list")
    )


def test_admin_adds_a_stage_and_bad_probability_writes_nothing(client, admin_user):
    client.force_login(admin_user)
    data = {"name": "网签", "code": "online-sign", "position": 45, "probability": 150}
    response = client.post(reverse("deals_admin:stages_create"), data)
    assertContains(response, "0 至 100", status_code=400)
    assert not DealStage.objects.filter(code="online-sign").exists()
    data["probability"] = 90
    client.post(reverse("deals_admin:stages_create"), {**data, "is_active": "on"})
    assert DealStage.objects.get(code="online-sign").probability == 90


def test_a_stage_with_deals_is_deactivated_not_deleted(client, admin_user, sales_rep):
    stage = deal_stage("pledge")
    DealFactory(customer=CustomerFactory(owner=sales_rep), stage=stage, title="在途")
    client.force_login(admin_user)
    response = client.post(reverse("deals_admin:stages_delete", args=[stage.pk]))
    assert response.status_code == 409
    assertContains(response, "停用", status_code=409)
    assert DealStage.objects.filter(pk=stage.pk).exists()
    client.post(
        reverse("deals_admin:stages_edit", args=[stage.pk]),
        {
            "name": stage.name,
            "code": stage.code,
            "position": stage.position,
            "probability": stage.probability,
        },
    )
    stage.refresh_from_db()
    assert not stage.is_active
    client.force_login(sales_rep)
    board = client.get(reverse("deals:pipeline"))
    assertNotContains(board, 'data-testid="column-pledge"')
    assertContains(board, 'data-testid="column-visit"')


def test_an_unused_stage_can_be_deleted(client, admin_user):
    stage = DealStage.objects.create(name="临时", code="tmp", position=99)
    client.force_login(admin_user)
    client.post(reverse("deals_admin:stages_delete", args=[stage.pk]))
    assert not DealStage.objects.filter(pk=stage.pk).exists()
