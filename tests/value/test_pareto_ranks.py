"""The precomputed Pareto rankings (culture/value/pareto_ranks.py): every figure, the
80 % list and the set changes read from them equal the direct computation over the
rollup, after a rebuild and after incremental refreshes (rollup = rebuild)."""

from __future__ import annotations

from datetime import date

import pytest

from culture.value import pareto_ranks, rollups, selectors
from culture.value.models import ParetoRank, ParetoSummary
from culture.value.periods import parse
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
TODAY = date(2026, 12, 6)
PERIODS = [
    parse("month", "2026-11", today=TODAY),
    parse("month", "2026-10", today=TODAY),
    parse("quarter", "2026-Q4", today=TODAY),
    parse("year", "2026", today=TODAY),
]


def _figures(result):
    return (
        result.customers,
        result.payers,
        result.total,
        result.top_count,
        result.top_revenue,
        result.core_count,
        result.entered,
        result.left,
        result.stayed,
        result.curve,
    )


def _rows(rows):
    return [(r.customer.pk, r.rank, r.revenue, r.previous) for r in rows[0]], rows[1]


def _assert_same_as_direct(user):
    scope = selectors.scope_for(user)
    assert scope.rank_key is not None
    for period in PERIODS:
        for view in selectors.VIEWS:
            args = {"period": period, "view": view, "scope": scope}
            assert _figures(selectors.pareto(**args)) == _figures(
                selectors.pareto_direct(**args)
            ), (period, view)
            for limit in (1, 50):
                assert _rows(selectors.core_customers(**args, limit=limit)) == _rows(
                    selectors.core_customers_direct(**args, limit=limit)
                )
            for which in selectors.SET_CHANGES:
                assert _rows(selectors.set_changes(**args, which=which)) == _rows(
                    selectors.set_changes_direct(**args, which=which)
                ), which


def _ranks():
    return sorted(
        ParetoRank.objects.values_list(
            "kind", "start", "view", "scope", "rank", "customer_id", "revenue", "cum"
        )
    )


def _summaries():
    return sorted(
        ParetoSummary.objects.values_list(
            "kind",
            "start",
            "view",
            "scope",
            "payers",
            "total",
            "core_count",
            "other_payers",
            "entered",
            "left",
            "stayed",
        )
    )


def test_hand_computed_example_from_the_ranking(admin_user, customers_of, pay):
    a, b, c, d, e = customers_of(5)
    pay(a, 60, date(2026, 11, 3))
    pay(a, 40, date(2026, 11, 20))
    pay(b, 50, date(2026, 11, 5))
    pay(c, 30, date(2026, 11, 30))
    pay(d, 20, date(2026, 11, 1))
    pay(e, 999, date(2026, 10, 31))
    rollups.revenue_rebuild()
    ranking = list(
        ParetoRank.objects.filter(
            kind="month", start=date(2026, 11, 1), view="customer", scope="all"
        )
        .order_by("rank")
        .values_list("customer_id", "revenue", "cum")
    )
    assert ranking == [
        (a.pk, 100, 100),
        (b.pk, 50, 150),
        (c.pk, 30, 180),
        (d.pk, 20, 200),
    ]
    result = selectors.pareto(
        period=PERIODS[0], view="customer", scope=selectors.scope_for(admin_user)
    )
    assert (result.customers, result.payers, result.total) == (5, 4, 200)
    assert (result.top_count, result.top_revenue, result.core_count) == (1, 100, 3)
    # E paid 999 in October only: it is October's whole 80 % set and left it.
    assert (result.entered, result.left, result.stayed) == (3, 1, 0)
    assert result.curve[-2:] == [[80.0, 100.0], [100.0, 100.0]]
    _assert_same_as_direct(admin_user)


def test_every_scope_and_view_equals_the_direct_computation(
    admin_user, manager, sales_rep, teammate, far_outsider, pay
):
    mine = [CustomerFactory(owner=sales_rep) for _ in range(4)]
    theirs = [CustomerFactory(owner=teammate) for _ in range(3)]
    far = CustomerFactory(owner=far_outsider)
    dealer = CustomerFactory(kind=Customer.Kind.DEALER, owner=sales_rep)
    CustomerFactory(kind=Customer.Kind.AGENT, owner=teammate)
    for i, customer in enumerate(mine + theirs):
        pay(customer, 10 * (i + 1), date(2026, 10, 1 + i))
        pay(
            customer,
            7 * (8 - i),
            date(2026, 11, 2 + i),
            channel=dealer if i % 2 else None,
        )
    pay(far, 500, date(2026, 11, 9))
    pay(mine[0], 35, date(2026, 11, 9))  # ties with another customer's November
    rollups.revenue_rebuild()
    for user in (admin_user, manager, sales_rep, teammate):
        _assert_same_as_direct(user)


def test_incremental_refresh_equals_rebuild(admin_user, sales_rep, customers_of, pay):
    a, b, c, d = customers_of(4)
    pay(a, 50, date(2026, 10, 1))
    pay(b, 40, date(2026, 10, 1))
    pay(d, 10, date(2026, 10, 1))
    pay(a, 60, date(2026, 11, 1))
    pay(b, 10, date(2026, 11, 1))
    rollups.revenue_rebuild()
    before = selectors.pareto(
        period=PERIODS[0], view="customer", scope=selectors.scope_for(admin_user)
    )
    assert (before.core_count, before.entered, before.left, before.stayed) == (
        1,
        0,
        1,
        1,
    )
    # A new payment moves C from nowhere to second place in November (and the
    # quarter and the year), and one in October changes October's set too.
    pay(c, 30, date(2026, 11, 15))
    late = pay(d, 45, date(2026, 10, 20))
    assert rollups.revenue_refresh() > 0
    incremental = (_ranks(), _summaries())
    _assert_same_as_direct(admin_user)
    _assert_same_as_direct(sales_rep)
    after = selectors.pareto(
        period=PERIODS[0], view="customer", scope=selectors.scope_for(admin_user)
    )
    assert (after.payers, after.core_count) == (3, 2)  # A 60, C 30 of 100
    rollups.revenue_rebuild()
    assert (_ranks(), _summaries()) == incremental
    # A delete: D falls out of October again.
    late.delete()
    rollups.revenue_refresh()
    incremental = (_ranks(), _summaries())
    _assert_same_as_direct(admin_user)
    rollups.revenue_rebuild()
    assert (_ranks(), _summaries()) == incremental


def test_a_period_left_with_no_revenue_loses_its_ranking(admin_user, customers_of, pay):
    (a,) = customers_of(1)
    payment = pay(a, 70, date(2026, 11, 3))
    rollups.revenue_rebuild()
    assert ParetoSummary.objects.filter(start=date(2026, 11, 1), kind="month").exists()
    payment.delete()
    rollups.revenue_refresh()
    assert not ParetoRank.objects.exists()
    assert not ParetoSummary.objects.exists()
    _assert_same_as_direct(admin_user)


def test_rebuild_of_an_empty_rollup_writes_nothing():
    assert pareto_ranks.rebuild() == 0
