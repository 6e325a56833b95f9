"""The board's won columns count from WonDealDay, which a trigger on deals_deal keeps
equal to the won deals grouped by (stage, owner, team, closing day), whatever writes
them; only the last BOARD_WON_DAYS days are on the board."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from culture.deals import selectors, services
from culture.deals.models import Deal, WonDealDay
from tests.factories import CustomerFactory, deal_stage


def grouped_won_deals() -> dict[tuple, tuple]:
    rows = (
        Deal.objects.filter(status=Deal.Status.WON, closed_on__isnull=False)
        .values("stage", "owner", "team", "closed_on")
        .annotate(n=Count("id"), t=Sum("amount"))
    )
    return {
        (r["stage"], r["owner"], r["team"], r["closed_on"]): (r["n"], r["t"])
        for r in rows
    }


def kept_days() -> dict[tuple, tuple]:
    return {
        (r.stage_id, r.owner_id, r.team_id, r.closed_on): (r.deals, r.amount)
        for r in WonDealDay.objects.filter(deals__gt=0)
    }


def new_deal(by, customer, code="visit", amount="1000000"):
    return services.deal_create(
        by=by,
        customer=customer,
        data={"title": "5号楼302", "amount": Decimal(amount)},
        stage=deal_stage(code),
    )


def win(by, deal, code="sign"):
    return services.deal_move(
        by=by, deal=deal, stage=deal_stage(code), version=deal.version
    )


@pytest.mark.django_db
def test_days_follow_wins_moves_edits_losses_and_deletes(sales_rep, teammate):
    customer = CustomerFactory(owner=sales_rep)
    a = win(sales_rep, new_deal(sales_rep, customer, "subscribe", "1200000"))
    b = win(sales_rep, new_deal(sales_rep, customer, "pledge", "1950000"))
    c = new_deal(sales_rep, customer, "pledge", "6800000")
    assert kept_days() == grouped_won_deals()
    assert sum(d for d, _t in kept_days().values()) == 2
    # Back to an open stage: no longer won.
    b = services.deal_move(
        by=sales_rep, deal=b, stage=deal_stage("visit"), version=b.version
    )
    assert kept_days() == grouped_won_deals()
    # Another closing day, amount and owner (a direct update: the trigger still runs).
    Deal.objects.filter(pk=a.pk).update(
        closed_on=timezone.localdate() - dt.timedelta(days=3),
        amount=Decimal("1300000"),
        owner=teammate,
    )
    c = services.deal_lose(by=sales_rep, deal=c, version=c.version, reason="预算不足")
    assert kept_days() == grouped_won_deals()
    Deal.objects.filter(pk=a.pk).delete()
    assert kept_days() == grouped_won_deals() == {}


@pytest.mark.django_db
def test_board_counts_only_the_last_30_days_of_wins(sales_rep, manager):
    customer = CustomerFactory(owner=sales_rep)
    recent = win(sales_rep, new_deal(sales_rep, customer, "subscribe", "2860000"))
    old = win(sales_rep, new_deal(sales_rep, customer, "subscribe", "500000"))
    Deal.objects.filter(pk=old.pk).update(
        closed_on=timezone.localdate() - dt.timedelta(days=selectors.BOARD_WON_DAYS + 1)
    )
    for user in (sales_rep, manager):
        columns = {c.stage.code: c for c in selectors.board(user=user, filters={})}
        assert (columns["sign"].count, columns["sign"].total) == (
            1,
            Decimal("2860000"),
        )
        assert [d.pk for d in columns["sign"].cards] == [recent.pk]
    other = {
        c.stage.code: c
        for c in selectors.board(user=manager, filters={"owner": manager.pk})
    }
    assert other["sign"].count == 0


@pytest.mark.django_db(transaction=True)
def test_truncate_clears_the_days(sales_rep):
    win(sales_rep, new_deal(sales_rep, CustomerFactory(owner=sales_rep)))
    assert WonDealDay.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE deals_deal CASCADE")
    assert not WonDealDay.objects.filter(deals__gt=0).exists()
