"""Deals and payments for the dashboard's tests (plain rows, as the deal services of
culture/deals would store them)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from culture.deals.models import Deal, DealStage, Payment


def make_deal(
    customer: Any,
    *,
    amount: str = "100000",
    stage: str = "visit",
    status: str = "open",
    channel: Any = None,
    closed_on: date | None = None,
    owner: Any = None,
) -> Deal:
    owner = owner or customer.owner
    return Deal.objects.create(
        customer=customer,
        channel=channel,
        title=f"{customer.name} 的商机",
        amount=Decimal(amount),
        stage=DealStage.objects.get(code=stage),
        status=status,
        owner=owner,
        team=owner.team,
        closed_on=closed_on,
        lost_reason="价格" if status == "lost" else "",
    )


def pay(deal: Deal, amount: str, on: date) -> Payment:
    payment = Payment.objects.create(
        deal=deal,
        customer=deal.customer,
        channel=deal.channel,
        amount=Decimal(amount),
        received_on=on,
    )
    Deal.objects.filter(pk=deal.pk).update(
        received_total=deal.received_total + payment.amount
    )
    return payment


@pytest.fixture
def stages(db) -> dict[str, DealStage]:
    return {s.code: s for s in DealStage.objects.all()}
