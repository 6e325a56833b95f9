"""The managers' dashboard: figures from the rollups, access per persona, filters,
drill-down, XLSX export and a constant number of queries."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook
from pytest_django.asserts import assertContains

from crm.accounts.roles import Role
from culture.dashboards import rollups, selectors
from tests.dashboards.conftest import make_deal, pay
from tests.factories import (
    ContactLogFactory,
    CustomerFactory,
    FollowUpFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
)

URL = reverse("dashboards:dashboard")


@pytest.fixture
def data(sales_rep, teammate, outsider, far_outsider, stages):
    """This month: sales_rep has 2 A-tier customers (one contacted now, one quiet
    since it came 60 days ago), a won
    deal of ¥800,000 paid ¥500,000, an open deal of ¥200,000 in 认购 and a complaint;
    the teammate one customer and a follow-up done late; another department has its
    own customer and payment, which nobody in this department may see."""
    now = timezone.now()
    today = timezone.localdate()
    alice = CustomerFactory(owner=sales_rep, tier="A", last_contacted_at=now)
    quiet = CustomerFactory(owner=sales_rep, tier="A")
    type(quiet).objects.filter(pk=quiet.pk).update(created_at=now - timedelta(days=60))
    bob = CustomerFactory(owner=teammate)
    ContactLogFactory(customer=alice, occurred_at=now - timedelta(minutes=5))
    FollowUpFactory(
        customer=bob,
        due_at=now - timedelta(minutes=30),
        status="done",
        done_at=now - timedelta(minutes=10),
    )
    won = make_deal(alice, amount="800000", stage="sign", status="won", closed_on=today)
    pay(won, "500000", today)
    make_deal(alice, amount="200000", stage="subscribe")
    TicketFactory(customer=alice, ticket_type="complaint")
    far = CustomerFactory(owner=far_outsider, tier="A")
    pay(make_deal(far, amount="999", stage="sign", status="won"), "999", today)
    rollups.rebuild()
    return {"alice": alice, "bob": bob}


def _get(client, user, **params):
    client.force_login(user)
    return client.get(URL, params)


def test_manager_sees_the_departments_figures(client, manager, data):
    response = _get(client, manager, period="month")
    assert response.status_code == 200
    ctx = response.context
    assert ctx["totals"]["new_customers"] == 2  # the quiet one came 60 days ago
    assert ctx["totals"]["revenue"] == Decimal("500000")  # not the other department's
    assert ctx["totals"]["complaints_opened"] == 1
    assert ctx["totals"]["followups_late"] == 1
    assert ctx["pipeline"]["amount"] == Decimal("200000")
    assert ctx["pipeline"]["weighted"] == Decimal("120000.00")  # 认购 60 %
    assert ctx["coverage"]["total"] == 2
    assert ctx["coverage"]["share"] == 50.0
    assert ctx["kpis"]["on_time_share"] == 0.0
    assertContains(response, "数据更新于")
    assertContains(response, "加权预测 = 金额 × 阶段赢单概率")
    assertContains(response, 'data-chart="chart-pipeline"')


def test_every_chart_item_links_to_the_customers_behind_it(client, manager, data):
    response = _get(client, manager)
    charts = response.context["charts"]
    for name in ("pipeline", "trend", "followups", "service", "revenue", "coverage"):
        for series in charts[name]["options"]["series"]:
            for item in series["data"]:
                assert item["url"].startswith("/"), (name, item)


def test_the_managers_home_is_the_dashboard(client, manager, data):
    client.force_login(manager)
    response = client.get("/")
    assertContains(response, 'data-testid="manager-dashboard"')
    assertContains(response, "echarts.min.js")
    assertContains(response, "数据更新于")


def test_a_salesperson_sees_only_their_own_share(client, teammate, data):
    response = _get(client, teammate, team="999", owner=str(data["alice"].owner_id))
    assert response.status_code == 200
    ctx = response.context
    assert ctx["totals"]["new_customers"] == 1  # bob only
    assert ctx["totals"]["revenue"] == 0
    assert ctx["pipeline"]["amount"] == 0
    assert ctx["teams"] == []
    assertContains(response, "仅显示您本人的数据")


def test_admin_sees_every_department(client, admin_user, data):
    response = _get(client, admin_user, period="month")
    assert response.context["totals"]["revenue"] == Decimal("500999")


@pytest.mark.parametrize("persona", ["readonly_user", "service_agent"])
def test_roles_without_a_dashboard_are_refused(client, request, persona, data):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    for url in (URL, reverse("dashboards:drill"), reverse("dashboards:export")):
        assert client.get(url).status_code == 403


def test_anonymous_gets_no_dashboard(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_team_outside_the_managers_department_is_ignored(
    client, manager, other_team, data
):
    response = _get(client, manager, team=str(other_team.pk))
    assert response.context["filters"].team_id is None
    assert response.context["totals"]["revenue"] == Decimal("500000")


def test_team_filter(client, manager, team_b, data, outsider):
    CustomerFactory(owner=outsider)
    rollups.refresh()
    response = _get(client, manager, team=str(team_b.pk))
    assert response.context["totals"]["new_customers"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"period": "decade"},
        {"period": "custom"},
        {"period": "custom", "start": "2026-12-31", "end": "2020-01-01"},
        {"period": "custom", "start": "2000-01-01", "end": "2199-12-31"},
        {"days": "45"},
        {"days": "99999999999999999999999"},
        {"team": "abc"},
        {"team": "-1"},
        {"start": "\x00"},
        {"period": "custom", "start": "not a date", "end": "2026-01-01"},
        {"period": "custom", "start": "1999-01-01", "end": "2026-01-01"},
    ],
)
def test_bad_filters_are_bounded(client, manager, params, data):
    response = _get(client, manager, **params)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        filters = response.context["filters"]
        assert (filters.end - filters.start).days <= selectors.MAX_SPAN_DAYS
        assert filters.days in selectors.COVERAGE_DAYS


def test_a_long_custom_range_is_cut_to_three_years(client, manager, data):
    response = _get(
        client, manager, period="custom", start="2000-01-01", end="2026-12-31"
    )
    assertContains(response, "时间段最长三年")


@pytest.mark.parametrize(
    ("start", "end"),
    [(-400, -20), (-366, 0), (-190, -5)],
    ids=["partial-ends", "to-today", "just-over-half-a-year"],
)
def test_a_long_period_reads_whole_months_with_the_same_figures(
    client, manager, sales_rep, teammate, far_outsider, stages, start, end
):
    """Over half a year the whole months come from the monthly table and the partial
    months at the ends from the daily one: totals, the per-salesperson table and
    every chart equal those summed from the daily rows alone."""
    from culture.dashboards.models import DailyActivity

    now = timezone.now()
    today = timezone.localdate()
    for k, owner in enumerate([sales_rep, teammate, far_outsider] * 6):
        customer = CustomerFactory(owner=owner)
        when = now - timedelta(days=23 * k + 3)
        ContactLogFactory(customer=customer, occurred_at=when)
        deal = make_deal(customer, amount="100000", stage="sign", status="won")
        pay(deal, str(1000 * (k + 1)), when.date())
    rollups.rebuild()
    first, last = today + timedelta(days=start), today + timedelta(days=end)
    response = _get(
        client,
        manager,
        period="custom",
        start=first.isoformat(),
        end=last.isoformat(),
    )
    ctx = response.context
    filters = ctx["filters"]
    span = (filters.end - filters.start).days + 1
    assert span > 184
    daily = selectors._scoped(DailyActivity.objects.all(), manager, filters).filter(
        day__gte=filters.start, day__lte=filters.end
    )
    by_day, people = selectors._daily_sums(daily)
    names = (*selectors.DAILY_SUMS, *selectors.DAILY_MONEY)
    assert ctx["totals"] == {n: sum(row[n] for row in by_day) for n in names}
    assert ctx["totals"]["revenue"] > 0
    assert ctx["people"] == selectors._people(people, filters)
    assert ctx["charts"] == selectors._charts(
        by_day, span, ctx["pipeline"], people, ctx["coverage"], filters
    )
    # The monthly rows were read: the same figures from fewer rows.
    _daily, monthly = selectors._activity(manager, filters, span)
    assert monthly is not None and monthly.exists()


def test_drill_down_lists_the_customers_behind_a_figure(client, manager, data, stages):
    client.force_login(manager)
    drill = reverse("dashboards:drill")
    response = client.get(
        drill, {"figure": "pipeline", "stage": stages["subscribe"].pk}
    )
    assert list(response.context["customers"]) == [data["alice"]]
    response = client.get(drill, {"figure": "followups_late", "period": "month"})
    assert list(response.context["customers"]) == [data["bob"]]
    response = client.get(drill, {"figure": "revenue", "period": "month"})
    assert list(response.context["customers"]) == [data["alice"]]
    response = client.get(drill, {"figure": "complaints", "period": "month"})
    assertContains(response, data["alice"].name)
    response = client.get(drill, {"figure": "nonsense", "stage": "x1"})
    assert response.status_code == 400


def test_drill_down_stays_in_the_salespersons_scope(client, outsider, data):
    client.force_login(outsider)
    response = client.get(reverse("dashboards:drill"), {"figure": "revenue"})
    assert list(response.context["customers"]) == []


def test_coverage_links_to_the_customer_list_of_uncontacted_a_tier(
    client, manager, data, sales_rep
):
    response = _get(client, manager, days="7")
    row = next(
        p for p in response.context["coverage"]["people"] if p["owner"] == sales_rep.pk
    )
    assert "tier=A" in row["url"] and "days_since_contact=7" in row["url"]
    client.force_login(manager)
    listed = client.get(row["url"])
    assert listed.status_code == 200
    names = [c.name for c in listed.context["page"].object_list]
    assert data["alice"].name not in names  # contacted today
    assert len(names) == 1


def test_xlsx_export_holds_the_tables(client, manager, data, sales_rep):
    client.force_login(manager)
    response = client.get(reverse("dashboards:export"), {"period": "month"})
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["概览", "销售人员", "商机阶段", "大客户覆盖"]
    people = list(book["销售人员"].values)
    assert people[0][0] == "负责人"
    mine = next(r for r in people[1:] if r[0] == str(sales_rep))
    assert mine[9] == 500000  # 回款
    stages = list(book["商机阶段"].values)
    assert stages[1] == ("认购", 1, 200000, 120000)


@pytest.mark.parametrize("size", [1, 8])
def test_a_constant_number_of_queries(
    client, manager, size, stages, sales_rep, django_assert_num_queries
):
    for _n in range(size):
        owner = UserFactory(team=TeamFactory(department=manager.team.department))
        customer = CustomerFactory(owner=owner, tier="A")
        ContactLogFactory(customer=customer)
        pay(
            make_deal(customer, status="won", stage="sign"),
            "1000",
            timezone.localdate(),
        )
        make_deal(customer, stage="pledge")
    rollups.rebuild()
    client.force_login(manager)
    client.get(URL)  # warm the session and the role
    # session, user, role, teams, freshness, the manager's team (scope), the days
    # and the people (one statement), pipeline, coverage, and pghistory's request
    # context (3)
    with django_assert_num_queries(12):
        assert client.get(URL).status_code == 200


def test_roles_in_personas_are_what_the_dashboard_expects(manager, sales_rep):
    assert manager.role == Role.MANAGER and sales_rep.role == Role.SALES
