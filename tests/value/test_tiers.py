"""Tier rules: B→A and A→B by hand-computed revenue, the change recorded, audited,
shown on the timeline, and the owner notified."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from crm.notifications.models import Notification
from culture.value import rollups, services
from culture.value.models import TierChange, TierRule
from customers import timeline
from customers.models import Customer

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 6, 5, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def rules():
    # The migration's defaults: A ≥ ¥3,000,000, B ≥ ¥1,000,000 over 24 months.
    return {r.tier: r for r in TierRule.objects.all()}


def _run():
    rollups.revenue_rebuild(now=NOW)
    with time_machine.travel(NOW, tick=False):
        return services.tiers_assign(now=NOW)


def test_defaults_are_the_property_sales_thresholds(rules):
    assert rules["A"].min_revenue == Decimal(3_000_000) and rules["A"].months == 24
    assert rules["B"].min_revenue == Decimal(1_000_000) and rules["B"].months == 24


def test_b_customer_reaching_3m_moves_to_a_and_owner_is_told(
    rules, customers_of, pay, sales_rep
):
    (big,) = customers_of(1, tier=Customer.Tier.B)
    pay(big, 2_000_000, date(2025, 3, 1))  # inside 24 months (from 2025-01-01)
    pay(big, 1_200_000, date(2026, 11, 1))
    pay(big, 9_000_000, date(2024, 12, 31))  # before the window: does not count
    assert _run() == 1
    big.refresh_from_db()
    assert big.tier == "A"
    change = TierChange.objects.get(customer=big)
    assert (change.from_tier, change.to_tier) == ("B", "A")
    assert "3,200,000" in change.reason and "24" in change.reason
    note = Notification.objects.get(recipient=sales_rep)
    assert "B → A" in note.title
    assert note.url == big.get_absolute_url()
    # Audited: the customer's history has the tier update.
    assert big.events.filter(pgh_label="update", tier="A").exists()
    # On the customer's timeline.
    entries, _cursor = timeline.entries(big)
    assert any(e.kind == "tier" and "B → A" in e.title for e in entries)


def test_a_customer_falling_below_3m_moves_to_b(rules, customers_of, pay):
    (fading,) = customers_of(1, tier=Customer.Tier.A)
    pay(fading, 2_999_999.99, date(2026, 6, 1))
    assert _run() == 1
    fading.refresh_from_db()
    assert fading.tier == "B"
    change = TierChange.objects.get(customer=fading)
    assert (change.from_tier, change.to_tier) == ("A", "B")


def test_a_customer_with_no_revenue_falls_back_to_c_others_untouched(
    rules, customers_of
):
    (old_a,) = customers_of(1, tier=Customer.Tier.A)
    (lead,) = customers_of(1, tier=Customer.Tier.D)  # manual D, no revenue: left alone
    assert _run() == 1
    old_a.refresh_from_db()
    lead.refresh_from_db()
    assert (old_a.tier, lead.tier) == ("C", "D")


def test_rfm_condition_and_second_run_changes_nothing(rules, customers_of, pay):
    rules["A"].min_rfm_total = 15
    rules["A"].save()
    (rich,) = customers_of(1, tier=Customer.Tier.C)
    pay(rich, 5_000_000, date(2026, 11, 1))
    assert _run() == 1  # no RFM row yet: total 0 < 15, so B
    rich.refresh_from_db()
    assert rich.tier == "B"
    assert _run() == 0  # nothing to change: no new rows, no new notification
    assert TierChange.objects.count() == 1


def test_tier_job_notifies_nobody_for_unowned_customers(rules, pay):
    from tests.factories import CustomerFactory

    pool = CustomerFactory(owner=None, team=None, tier=Customer.Tier.C)
    pay(pool, 1_500_000, date(2026, 11, 1))
    assert _run() == 1
    assert not Notification.objects.exists()
