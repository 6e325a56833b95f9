"""Each scorecard figure against the hand-counted world of conftest.py, the sigma
conversion, and the filters (team, region, segment) on the same rows."""

from __future__ import annotations

import pytest

from culture.scorecard import figures, rollups, selectors
from tests.scorecard.conftest import END, NOW, START


def test_sigma_conversion_follows_the_six_sigma_table():
    assert figures.sigma_level(66_807) == pytest.approx(3.0, abs=0.01)
    assert figures.sigma_level(6_210) == pytest.approx(4.0, abs=0.01)
    assert figures.sigma_level(233) == pytest.approx(5.0, abs=0.01)
    assert figures.sigma_level(3.4) == pytest.approx(6.0, abs=0.01)
    assert figures.sigma_level(0) is None  # no defect: no finite level
    assert figures.dpmo(3, 2) == 750_000  # 3 defects in 2 tickets × 2 opportunities


def test_nps_is_promoters_minus_detractors_with_the_three_shares():
    result = figures.compute(
        "nps", {"nps_answers": 10, "nps_promoters": 5, "nps_detractors": 2}
    )
    assert result["value"] == pytest.approx(30.0)
    assert result["detail"]["passives"] == pytest.approx(30.0)
    assert figures.compute("nps", {})["value"] is None  # no answer: no score


def _page(user, **filters):
    f = selectors.Filters("custom", START, END, **filters)
    data = selectors.scorecard(user=user, filters=f)
    return {r.key: r for s in data["sections"] for r in s["figures"]}, data


@pytest.mark.django_db
def test_every_figure_matches_the_hand_count(world, admin_user):
    rollups.rebuild(now=NOW)
    page, data = _page(admin_user)
    v = {k: r.value for k, r in page.items()}
    # Surveys: 6 sent; 5 answered; CSAT 5, 2, 4 → 2 of 3 satisfied; NPS 3 and 9.
    assert v["csat_rate"] == pytest.approx(200 / 3)
    assert page["csat_rate"].detail["response_rate"] == pytest.approx(500 / 6)
    assert v["response_rate"] == pytest.approx(500 / 6)
    assert v["nps"] == pytest.approx(0.0)
    assert page["nps"].detail["promoters"] == pytest.approx(50.0)
    assert page["nps"].detail["detractors"] == pytest.approx(50.0)
    # Recoveries: r1 recorded 10 h after opening; r2 open and past its due time, so
    # settled and late: 1 of 2 within 24 hours.
    assert v["recovery_open"] == 1
    assert page["recovery_open"].detail["overdue"] == 1
    assert v["recovery_24h"] == pytest.approx(50.0)
    # Customers: 4; owned 3 (carol has none); dormant carol; A/B: alice, bob, carol,
    # contacted in 30 days: alice; A: alice and bob, alice contacted and profiled
    # (bob's profile has a channel but nothing about him).
    assert v["owned"] == pytest.approx(75.0)
    assert v["dormant"] == pytest.approx(25.0)
    assert v["contacted_ab"] == pytest.approx(100 / 3)
    assert v["ka_coverage"] == pytest.approx(50.0)
    assert v["profile_filled"] == pytest.approx(50.0)
    # Contacts with A-tier customers: two (alice), one after her page was opened; 2
    # contacts over 2 key accounts in 6 days = 5 per 30 days.
    assert v["profile_viewed"] == pytest.approx(50.0)
    assert v["ka_frequency"] == pytest.approx(5.0)
    # Work orders due: on time, late, still open (rejected left out); ratings 5 and 3.
    assert v["wo_on_time"] == pytest.approx(100 / 3)
    assert v["wo_rating"] == pytest.approx(4.0)
    assert data["departments"] == [
        {
            "name": "工程部",
            "due": 3,
            "on_time": pytest.approx(100 / 3),
            "overdue": 1,
            "rated": 2,
            "rating": 4.0,
        }
    ]
    # Tickets due with an outcome: t1 met, t2 and t3 breached (t4 running): 1 of 3.
    assert v["sla"] == pytest.approx(100 / 3)
    assert v["dealer_sla"] == pytest.approx(0.0)  # dave's t3
    assert v["dealer_csat"] == pytest.approx(100.0)  # dave's 4
    # Resolved: t1, t2, t3; t3 reopened within 7 days; t1 alone in one reply.
    assert v["reopen"] == pytest.approx(100 / 3)
    assert v["fcr"] == pytest.approx(100 / 3)
    # One repair under warranty, two assets under warranty on 15 June.
    assert v["warranty_repairs"] == pytest.approx(50.0)
    # Defects: t2 1, t3 2 = 3 in 3 tickets × 2 opportunities: DPMO 500,000.
    assert page["sigma"].detail["dpmo"] == pytest.approx(500_000)
    assert v["sigma"] == pytest.approx(1.5)
    assert v["pareto_top20"] is None  # no value rollups in this world
    # Freshness on every rollup figure; targets and their judgement.
    assert all(r.fresh for k, r in page.items() if k != "pareto_top20")
    assert page["csat_rate"].met is False
    assert page["recovery_24h"].met is False
    assert page["owned"].met is False and page["dealer_csat"].met is True


@pytest.mark.django_db
def test_filters_by_team_region_and_segment(world, admin_user, team_a, team_b):
    rollups.rebuild(now=NOW)
    by_team, _ = _page(admin_user, team_id=team_b.pk)
    assert by_team["csat_rate"].value == pytest.approx(0.0)  # bob's 2 (team b)
    assert by_team["sla"].value == pytest.approx(0.0)
    # 华东: alice (浙江省) and dave (浙江): CSAT 5 and 4.
    by_region, _ = _page(admin_user, region="华东")
    assert by_region["csat_rate"].value == pytest.approx(100.0)
    assert by_region["owned"].value == pytest.approx(100.0)
    # The segment holds alice alone: her CSAT 5, her NPS 3 and 9.
    by_segment, _ = _page(admin_user, segment_id=world["segment"].pk)
    assert by_segment["csat_rate"].value == pytest.approx(100.0)
    assert by_segment["nps"].value == pytest.approx(0.0)
    assert by_segment["ka_coverage"].value == pytest.approx(100.0)


@pytest.mark.django_db
def test_trend_compares_with_the_previous_period(world, admin_user):
    rollups.rebuild(now=NOW)
    page, _ = _page(admin_user)
    assert page["csat_rate"].previous is None  # nothing answered in 4–9 June
    weeks = page["csat_rate"].trend
    assert len(weeks) == selectors.TREND_WEEKS
    # The week of Monday 8 June holds every answer.
    assert weeks[-1]["label"] == "06-15"
    assert weeks[-2]["value"] == pytest.approx(200 / 3)
