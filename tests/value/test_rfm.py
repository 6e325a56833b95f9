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
