"""The monthly revenue rollup: the incremental refresh equals a full rebuild."""

from __future__ import annotations

from datetime import date

import pytest

from culture.deals.models import Payment
from culture.value import rollups
from culture.value.models import CustomerRevenue, RollupState
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _rows() -> set[tuple]:
    return set(
        CustomerRevenue.objects.values_list(
            "month",
            "customer_id",
            "amount",
            "payments",
            "channel_amount",
            "channel_payments",
        )
    )


def test_incremental_refresh_equals_rebuild(customers_of, pay):
    a, b, c = customers_of(3)
    dealer = CustomerFactory(kind=Customer.Kind.DEALER, owner=a.owner)
    rollups.revenue_rebuild()
    assert _rows() == set()
    p1 = pay(a, 100, date(2026, 10, 5), channel=dealer)
    pay(a, 50, date(2026, 10, 20))
    p3 = pay(b, 70, date(2026, 11, 1))
    pay(c, 30, date(2026, 11, 2), channel=dealer)
    assert rollups.revenue_refresh() > 0
    incremental = _rows()
    rollups.revenue_rebuild()
    assert incremental == _rows()
    assert (date(2026, 10, 1), dealer.pk, 0, 0, 100, 1) in incremental

    # An update that moves a payment to another customer and month, and a delete.
    Payment.objects.filter(pk=p1.pk).update(customer=b, received_on=date(2026, 9, 30))
    Payment.objects.filter(pk=p3.pk).delete()
    rollups.revenue_refresh()
    incremental = _rows()
    rollups.revenue_rebuild()
    assert incremental == _rows()
    assert not any(
        row[1] == b.pk and row[0] == date(2026, 11, 1) for row in incremental
    )


def test_refresh_is_idempotent_and_records_freshness(customers_of, pay):
    (a,) = customers_of(1)
    pay(a, 10, date(2026, 11, 1))
    rollups.revenue_refresh()
    first = _rows()
    rollups.revenue_refresh()  # re-reads the overlap: same rows
    assert _rows() == first
    state = RollupState.objects.get(name=rollups.REVENUE)
    assert state.refreshed_at is not None and state.watermark > 0


def test_refresh_through_the_deal_services(admin_user, customers_of):
    from culture.deals import services as deal_services
    from tests.factories import DealFactory

    (a,) = customers_of(1)
    deal = DealFactory(customer=a)
    deal_services.payment_add(
        by=admin_user, deal=deal, amount=200, received_on=date(2026, 11, 3)
    )
    rollups.revenue_refresh()
    assert _rows() == {(date(2026, 11, 1), a.pk, 200, 1, 0, 0)}
