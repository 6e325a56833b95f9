"""Helpers of the value tests: payments made on bare deals (the rollup reads the
payments table and its history events, whoever wrote them)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.factories import CustomerFactory, DealFactory, UserFactory


@pytest.fixture
def pay():
    from culture.deals.models import Payment

    def _pay(customer, amount, on: date, channel=None):
        owner = customer.owner or UserFactory()
        deal = DealFactory(
            customer=customer, channel=channel, owner=owner, team=owner.team
        )
        return Payment.objects.create(
            deal=deal,
            customer=customer,
            channel=channel,
            amount=Decimal(amount),
            received_on=on,
        )

    return _pay


@pytest.fixture
def customers_of(sales_rep):
    """n customers owned by the salesperson (in team A, department 销售部)."""

    def _make(n: int, **kwargs):
        return [CustomerFactory(owner=sales_rep, **kwargs) for _ in range(n)]

    return _make
