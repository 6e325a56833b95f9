"""The value pages: access for every persona, bounded parameters, constant queries,
XLSX export, and the tier rules' settings page."""

from __future__ import annotations

from datetime import date
from io import BytesIO

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from culture.value import rollups, services
from culture.value.models import TierRule
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
TODAY = date.today()
THIS_MONTH = TODAY.replace(day=1)
PAGES = [
    reverse("value:overview"),
    reverse("value:core_list"),
    reverse("value:changes_list", args=["entered"]),
    reverse("value:changes_list", args=["left"]),
    reverse("value:rfm_cell", args=[5, 5]),
    reverse("value:tier_change_list"),
]


@pytest.fixture
def world(sales_rep, teammate, far_outsider, pay):
    """One paying customer each for the salesperson, a teammate and another
    department, then the rollup, RFM and tiers built."""
    mine = CustomerFactory(owner=sales_rep, name="甲公司")
    theirs = CustomerFactory(owner=teammate, name="乙公司")
    far = CustomerFactory(owner=far_outsider, name="丙公司")
    pay(mine, 1_200_000, THIS_MONTH)
    pay(theirs, 300, THIS_MONTH)
    pay(far, 900, THIS_MONTH)
    rollups.revenue_rebuild()
    services.rfm_compute()
    services.tiers_assign()
    return {"mine": mine, "theirs": theirs, "far": far}


@pytest.mark.parametrize("url", PAGES)
def test_roles_without_value_pages_get_403(url, login, readonly_user, service_agent):
    for user in (readonly_user, service_agent):
        assert login(user).get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_login(url, client):
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_sales_see_only_their_own_customers(world, login, sales_rep, teammate):
    page = login(sales_rep).get(reverse("value:overview")).content.decode()
    assert "甲公司" in page and "乙公司" not in page and "丙公司" not in page
    page = login(teammate).get(reverse("value:core_list")).content.decode()
    assert "乙公司" in page and "甲公司" not in page


def test_outsider_sees_nothing_of_team_a(world, login, outsider):
    page = login(outsider).get(reverse("value:overview")).content.decode()
    assert "甲公司" not in page and "乙公司" not in page and "丙公司" not in page


def test_manager_sees_the_department_admin_everyone(world, login, manager, admin_user):
    page = login(manager).get(reverse("value:core_list")).content.decode()
    assert "甲公司" in page and "丙公司" not in page
    response = login(admin_user).get(reverse("value:overview"))
    assert response.context["pareto"].total == 1_201_200  # all three departments


def test_overview_shows_figures_definitions_chart_and_freshness(world, login, manager):
    response = login(manager).get(reverse("value:overview"))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-chart="pareto-chart"' in page and 'data-chart="rfm-chart"' in page
    assert "数据更新于" in page
    assert "前 20% 客户贡献回款" in page and "也计入分母" in page
    assert response.context["pareto"].total == 1_200_300


def test_tier_change_visible_in_scope_only(world, login, sales_rep, far_outsider):
    # 甲公司 reached B (≥ ¥1,000,000): its owner sees the change, others do not.
    url = reverse("value:tier_change_list")
    assert "甲公司" in login(sales_rep).get(url).content.decode()
    assert "甲公司" not in login(far_outsider).get(url).content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "kind=month&p=1999-12",
        "kind=month&p=2999-01",
        "kind=month&p=2026-13",
        "kind=quarter&p=2026-Q5",
        "kind=year&p=abcd",
        "p=" + "9" * 50,
        "after=-1",
        "after=abc",
        "after=" + "9" * 30,
    ],
)
def test_bad_parameters_are_400_not_500(query, login, manager):
    response = login(manager).get(reverse("value:core_list") + "?" + query)
    assert response.status_code == 400


def test_unknown_kind_and_view_fall_back(login, manager):
    response = login(manager).get(reverse("value:overview") + "?kind=week&view=x")
    assert response.status_code == 200
    assert response.context["period"].kind == "month"
    assert response.context["view"] == "customer"


def test_rfm_cell_out_of_grid_is_400_and_unknown_list_404(login, manager):
    client = login(manager)
    assert client.get(reverse("value:rfm_cell", args=[6, 1])).status_code == 400
    assert client.get(reverse("value:rfm_cell", args=[0, 5])).status_code == 400
    assert client.get("/value/changes/nobody/").status_code == 404
    assert client.get("/value/export/everything.xlsx").status_code == 404


def test_periods_quarter_and_year_render(world, login, admin_user):
    client = login(admin_user)
    for kind in ("quarter", "year"):
        response = client.get(reverse("value:overview") + f"?kind={kind}")
        assert response.status_code == 200
        assert response.context["pareto"].total == 1_201_200


def test_export_core_list_as_xlsx(world, login, manager):
    response = login(manager).get(reverse("value:export", args=["core"]))
    assert response.status_code == 200
    book = load_workbook(BytesIO(b"".join(response.streaming_content)))
    rows = list(book.active.values)
    assert rows[0][:2] == ("排名", "客户")
    assert [r[1] for r in rows[1:]] == ["甲公司"]  # 80 % of the department's revenue


def test_sales_may_export_figures_not_customer_lists(world, login, sales_rep):
    client = login(sales_rep)
    assert client.get(reverse("value:export", args=["rfm"])).status_code == 200
    assert client.get(reverse("value:export", args=["core"])).status_code == 403


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", PAGES)
def test_constant_queries_at_two_sizes(url, login, manager, sales_rep, pay):
    client = login(manager)
    customer = CustomerFactory(owner=sales_rep)
    pay(customer, 5_000_000, THIS_MONTH)
    rollups.revenue_rebuild()
    services.rfm_compute()
    services.tiers_assign()
    small = _queries(client, url)
    for i in range(15):
        other = CustomerFactory(owner=sales_rep)
        pay(other, 1_000 * (i + 1), THIS_MONTH)
        pay(other, 10_000, THIS_MONTH.replace(year=THIS_MONTH.year - 1))
    TierRule.objects.filter(tier="B").update(min_revenue=1000)
    rollups.revenue_rebuild()
    services.rfm_compute()
    services.tiers_assign()
    assert _queries(client, url) == small


# --- the tier rules' settings page ------------------------------------------------------


def test_tier_rules_are_admins_only(login, admin_user, manager, sales_rep):
    url = reverse("value_admin:tierrule_list")
    assert login(admin_user).get(url).status_code == 200
    assert login(manager).get(url).status_code == 403
    assert login(sales_rep).get(url).status_code == 403


def test_bad_tier_rule_re_renders_and_writes_nothing(login, admin_user):
    rule = TierRule.objects.get(tier="A")
    url = reverse("value_admin:tierrule_edit", args=[rule.pk])
    response = login(admin_user).post(
        url,
        {"tier": "A", "months": 99, "min_revenue": "-5", "min_rfm_total": 20},
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert {"months", "min_revenue", "min_rfm_total"} <= set(form.errors)
    rule.refresh_from_db()
    assert (rule.months, rule.min_rfm_total) == (24, 0)


def test_admin_changes_a_tier_rule(login, admin_user):
    rule = TierRule.objects.get(tier="B")
    url = reverse("value_admin:tierrule_edit", args=[rule.pk])
    response = login(admin_user).post(
        url,
        {
            "tier": "B",
            "months": 12,
            "min_revenue": "800000",
            "min_rfm_total": 9,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.months, rule.min_revenue, rule.min_rfm_total) == (12, 800000, 9)
