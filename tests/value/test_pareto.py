"""Pareto arithmetic against hand-computed examples (docs/value.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from culture.value import rollups, selectors
from culture.value.periods import parse
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
NOV = parse("month", "2026-11", today=date(2026, 12, 6))
OCT = parse("month", "2026-10", today=date(2026, 12, 6))


def _pareto(user, period=NOV, view="customer"):
    rollups.revenue_rebuild()
    return selectors.pareto(period=period, view=view, scope=selectors.scope_for(user))


def test_top_share_core_count_and_curve_count_zero_revenue_customers(
    admin_user, customers_of, pay
):
    a, b, c, d, e = customers_of(5)
    pay(a, 60, date(2026, 11, 3))
    pay(a, 40, date(2026, 11, 20))  # A: 100 in two payments
    pay(b, 50, date(2026, 11, 5))
    pay(c, 30, date(2026, 11, 30))
    pay(d, 20, date(2026, 11, 1))
    pay(e, 999, date(2026, 10, 31))  # E: nothing in November
    result = _pareto(admin_user)
    # 5 customers in scope (E counts with 0); total 200.
    assert (result.customers, result.payers, result.total) == (5, 4, Decimal(200))
    # Top 20 % of 5 customers = 1 customer (A): 100 / 200.
    assert result.top_count == 1
    assert result.top_share == pytest.approx(0.5)
    # 100 (50 %), 150 (75 %), 180 (90 %): three customers reach 80 %.
    assert result.core_count == 3
    assert result.zero_revenue == 1
    assert result.curve == [
        [0.0, 0.0],
        [20.0, 50.0],
        [40.0, 75.0],
        [60.0, 90.0],
        [80.0, 100.0],
        [100.0, 100.0],
    ]


def test_ties_are_broken_by_customer_id(admin_user, customers_of, pay):
    first, second, third = customers_of(3)
    pay(first, 50, date(2026, 11, 2))
    pay(second, 50, date(2026, 11, 2))
    result = _pareto(admin_user)
    # ceil(0.2 × 3) = 1 customer: 50 of 100; 80 % needs both tied customers.
    assert result.top_count == 1
    assert result.top_share == pytest.approx(0.5)
    assert result.core_count == 2
    rows, more = selectors.core_customers(
        period=NOV, view="customer", scope=selectors.scope_for(admin_user)
    )
    assert [r.customer for r in rows] == [first, second]
    assert [r.rank for r in rows] == [1, 2]
    assert more is None
    assert third.pk not in [r.customer.pk for r in rows]


def test_empty_period_has_no_shares(admin_user, customers_of, pay):
    customers_of(4)
    result = _pareto(admin_user)
    assert (result.customers, result.payers, result.total) == (4, 0, Decimal(0))
    assert result.top_share is None
    assert result.core_count == 0
    assert result.curve == [[0.0, 0.0], [100.0, 100.0]]


def test_dealer_revenue_counts_in_each_view_separately(admin_user, customers_of, pay):
    buyer, other = customers_of(2)
    dealer = CustomerFactory(kind=Customer.Kind.DEALER, owner=buyer.owner)
    CustomerFactory(kind=Customer.Kind.AGENT, owner=buyer.owner)  # no channel revenue
    pay(buyer, 300, date(2026, 11, 9), channel=dealer)
    pay(other, 100, date(2026, 11, 9))
    customer_view = _pareto(admin_user)
    channel_view = _pareto(admin_user, view="channel")
    # Customer view: the buyer's 300 and the other's 100; the dealer has none.
    assert customer_view.total == Decimal(400)
    assert customer_view.customers == 4
    # Channel view: the 300 through the dealer only; denominator = 2 channel customers.
    assert channel_view.total == Decimal(300)
    assert (channel_view.customers, channel_view.payers) == (2, 1)
    assert channel_view.top_share == pytest.approx(1.0)


def test_set_changes_since_previous_period(admin_user, customers_of, pay):
    a, b, c, d = customers_of(4)
    # October: A 50, B 40, D 10 → 80 % of 100 needs A and B.
    pay(a, 50, date(2026, 10, 1))
    pay(b, 40, date(2026, 10, 1))
    pay(d, 10, date(2026, 10, 1))
    # November: A 60, C 30, B 10 → 80 % of 100 needs A and C.
    pay(a, 60, date(2026, 11, 1))
    pay(c, 30, date(2026, 11, 1))
    pay(b, 10, date(2026, 11, 1))
    result = _pareto(admin_user)
    assert (result.entered, result.left, result.stayed) == (1, 1, 1)
    scope = selectors.scope_for(admin_user)

    def who(which):
        rows, _more = selectors.set_changes(
            period=NOV, view="customer", scope=scope, which=which
        )
        return [(r.customer, r.revenue, r.previous) for r in rows]

    assert who("entered") == [(c, Decimal(30), None)]
    assert who("left") == [(b, Decimal(10), Decimal(40))]
    assert who("stayed") == [(a, Decimal(60), Decimal(50))]


def test_scope_manager_department_and_sales_own_share(
    admin_user, manager, sales_rep, teammate, far_outsider, pay
):
    mine = CustomerFactory(owner=sales_rep)
    teammates = CustomerFactory(owner=teammate)
    far = CustomerFactory(owner=far_outsider)
    pay(mine, 100, date(2026, 11, 1))
    pay(teammates, 300, date(2026, 11, 1))
    pay(far, 600, date(2026, 11, 1))
    assert _pareto(admin_user).total == Decimal(1000)
    assert _pareto(manager).total == Decimal(400)  # department 销售部
    own = _pareto(sales_rep)
    assert (own.total, own.customers) == (Decimal(100), 1)


def test_curve_has_at_most_200_points(admin_user, pay, sales_rep):
    from culture.value.models import CustomerRevenue

    customers = [CustomerFactory(owner=sales_rep) for _ in range(450)]
    CustomerRevenue.objects.bulk_create(
        CustomerRevenue(month=NOV.start, customer=c, amount=i + 1, payments=1)
        for i, c in enumerate(customers)
    )
    from culture.value import pareto_ranks

    pareto_ranks.rebuild()  # the rollup was written directly: rank it
    result = selectors.pareto(
        period=NOV, view="customer", scope=selectors.scope_for(admin_user)
    )
    assert result.payers == 450
    assert len(result.curve) <= 201  # the origin + at most 200 sampled points
    assert result.curve[-1] == [100.0, 100.0]
