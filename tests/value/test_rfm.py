"""RFM scores by NTILE(5) against hand-computed examples."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from culture.value import services
from culture.value.models import CustomerValue

pytestmark = pytest.mark.django_db
TODAY = date(2026, 12, 6)
NOW = datetime(2026, 12, 6, 5, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _scores():
    return {
        v.customer_id: (
            v.recency_days,
            v.frequency,
            int(v.monetary),
            v.r_score,
            v.f_score,
            v.m_score,
            v.segment,
        )
        for v in CustomerValue.objects.all()
    }


def test_five_customers_one_per_quintile(customers_of, pay):
    a, b, c, d, e = customers_of(5)
    # A: most recent, most frequent, most money; E the opposite.
    for day in (1, 2, 3, 4, 5):
        pay(a, 100, date(2026, 12, day))
    for day in (1, 2, 3, 4):
        pay(b, 80, date(2026, 11, day))
    for day in (1, 2, 3):
        pay(c, 60, date(2026, 10, day))
    for day in (1, 2):
        pay(d, 40, date(2026, 6, day))
    pay(e, 10, date(2026, 1, 15))
    pay(e, 10_000, date(2025, 11, 30))  # before the 12-month window: ignored
    assert services.rfm_compute(today=TODAY, now=NOW) == 5
    scores = _scores()
    assert scores[a.pk] == (1, 5, 500, 5, 5, 5, "champions")
    assert scores[b.pk] == (32, 4, 320, 4, 4, 4, "champions")
    assert scores[c.pk] == (64, 3, 180, 3, 3, 3, "needs_attention")
    assert scores[d.pk] == (187, 2, 80, 2, 2, 2, "hibernating")
    assert scores[e.pk] == (325, 1, 10, 1, 1, 1, "hibernating")


def test_at_risk_recent_deal_counts_for_recency_and_ties(customers_of, pay):
    from culture.deals.models import Deal
    from tests.factories import DealFactory

    cs = customers_of(10)
    # Two customers per quintile of frequency; the frequent ones paid long ago.
    for i, customer in enumerate(cs):
        for k in range(i + 1):
            pay(customer, 10, date(2026, 1, 1 + k))
    # The last customer won a deal yesterday: recency 1 day, not ~330.
    DealFactory(customer=cs[0], status=Deal.Status.WON, closed_on=date(2026, 12, 5))
    services.rfm_compute(today=TODAY, now=NOW)
    scores = _scores()
    # Frequencies 1..10 → F 1,1,2,2,3,3,4,4,5,5.
    assert [scores[c.pk][4] for c in cs] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores[cs[0].pk][0] == 1 and scores[cs[0].pk][3] == 5
    # The others all last paid in January (ties on the date): split by customer id,
    # the frequent ones, paid on later January days, are more recent.
    assert scores[cs[9].pk][3] >= scores[cs[1].pk][3]
    assert scores[cs[8].pk][6] in {"at_risk", "loyal", "champions"}


def test_segment_rule_matches_sql_for_every_cell():
    expected = {
        (5, 5): "champions",
        (4, 4): "champions",
        (3, 5): "loyal",
        (1, 4): "at_risk",
        (2, 5): "at_risk",
        (5, 1): "promising",
        (1, 1): "hibernating",
        (2, 3): "about_to_sleep",
        (3, 3): "needs_attention",
        (5, 3): "needs_attention",
    }
    for (r, f), segment in expected.items():
        assert services.segment_of(r, f) == segment


def test_empty_window_scores_nobody(customers_of):
    customers_of(3)
    assert services.rfm_compute(today=TODAY, now=NOW) == 0
    assert not CustomerValue.objects.exists()


# --- the grid's cells per scope (value_rfmcell) -----------------------------------------


def _direct(scope):
    """The grid and segments aggregated from the scores (the reference)."""
    import dataclasses

    from culture.value import selectors

    plain = dataclasses.replace(scope, rank_key=None)
    return selectors.rfm_grid(scope=plain), selectors.rfm_segments(scope=plain)


def _grid_figures(grid):
    return {
        key: (cell["n"], cell["total"], round(cell["m"], 2))
        for key, cell in grid["cells"].items()
    }, grid["scored"]


def _assert_cells_equal_direct(user):
    from culture.value import selectors

    scope = selectors.scope_for(user)
    assert scope.rank_key is not None
    grid, segments = _direct(scope)
    read = selectors.rfm_grid(scope=scope)
    assert _grid_figures(read) == _grid_figures(grid)
    assert selectors.rfm_segments(scope=scope, grid=read) == segments
    assert selectors.rfm_segments(scope=scope) == segments
    return read


def _paying_world(customers_of, pay, sales_rep, teammate, far_outsider):
    from tests.factories import CustomerFactory

    mine = customers_of(6)
    theirs = [CustomerFactory(owner=teammate) for _ in range(3)]
    far = [CustomerFactory(owner=far_outsider) for _ in range(2)]
    for i, customer in enumerate(mine + theirs + far):
        for k in range(1 + i % 4):
            pay(customer, 100 * (i + 1) + k, date(2026, 1 + i, 1 + k))
    return mine, theirs, far


def test_grid_cells_per_scope_equal_the_scores(
    admin_user, manager, sales_rep, teammate, far_outsider, customers_of, pay
):
    from culture.value.models import RfmCell

    mine, theirs, far = _paying_world(
        customers_of, pay, sales_rep, teammate, far_outsider
    )
    assert services.rfm_compute(today=TODAY, now=NOW) == 11
    grids = {
        user.username: _assert_cells_equal_direct(user)
        for user in (admin_user, manager, sales_rep, teammate, far_outsider)
    }
    assert grids["admin_a"]["scored"] == 11
    assert grids["manager_a"]["scored"] == 9  # team A's: not the far department's
    assert grids["sales_a"]["scored"] == 6
    assert grids["sales_far"]["scored"] == 2
    # At most 25 cells a scope: the page reads the scope's cells, not the scores.
    assert RfmCell.objects.filter(scope="all").count() <= 25
    assert (
        sum(RfmCell.objects.filter(scope="all").values_list("customers", flat=True))
        == 11
    )


def test_cells_follow_the_next_compute_like_a_rebuild(
    admin_user, manager, sales_rep, teammate, far_outsider, customers_of, pay
):
    """Recomputed after new payments, a reassignment, a customer no longer verified
    and a merge: every scope's cells equal the scores again, and equal cells written
    from scratch (rfm_cells_rebuild)."""
    from culture.value.models import RfmCell
    from customers.models import Customer

    mine, theirs, far = _paying_world(
        customers_of, pay, sales_rep, teammate, far_outsider
    )
    services.rfm_compute(today=TODAY, now=NOW)
    pay(theirs[0], 50_000, date(2026, 12, 1))
    Customer.objects.filter(pk=mine[0].pk).update(owner=teammate)
    Customer.objects.filter(pk=mine[1].pk).update(is_verified=False)
    Customer.objects.filter(pk=mine[2].pk).update(merged_into=mine[3])
    services.rfm_compute(today=TODAY, now=NOW)
    for user in (admin_user, manager, sales_rep, teammate, far_outsider):
        _assert_cells_equal_direct(user)
    from culture.value import selectors

    # The admins' grid counts every score (as before the cells); the others only
    # verified, unmerged customers.
    assert selectors.rfm_grid(scope=selectors.scope_for(admin_user))["scored"] == 11
    assert selectors.rfm_grid(scope=selectors.scope_for(sales_rep))["scored"] == 3
    written = sorted(
        RfmCell.objects.values_list(
            "scope", "r_score", "f_score", "customers", "monetary"
        )
    )
    services.rfm_cells_rebuild()
    assert (
        sorted(
            RfmCell.objects.values_list(
                "scope", "r_score", "f_score", "customers", "monetary"
            )
        )
        == written
    )


def test_no_scores_no_cells(admin_user, customers_of):
    from culture.value import selectors
    from culture.value.models import RfmCell

    customers_of(2)
    services.rfm_compute(today=TODAY, now=NOW)
    assert not RfmCell.objects.exists()
    grid = selectors.rfm_grid(scope=selectors.scope_for(admin_user))
    assert grid == {"cells": {}, "scored": 0}
    segments = selectors.rfm_segments(scope=selectors.scope_for(admin_user))
    assert {s["n"] for s in segments} == {0}
