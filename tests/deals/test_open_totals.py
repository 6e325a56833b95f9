"""The board's column totals come from OpenDealTotal, which a trigger on deals_deal
keeps equal to the open deals grouped by (stage, owner, team), whatever writes them."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.db.models import Count, Sum

from culture.deals import selectors, services
from culture.deals.models import Deal, OpenDealTotal
from tests.factories import CustomerFactory, deal_stage


def grouped_open_deals() -> dict[tuple, tuple]:
    rows = (
        Deal.objects.filter(status=Deal.Status.OPEN)
        .values("stage", "owner", "team")
        .annotate(n=Count("id"), t=Sum("amount"))
    )
    return {(r["stage"], r["owner"], r["team"]): (r["n"], r["t"]) for r in rows}


def kept_totals() -> dict[tuple, tuple]:
    return {
        (r.stage_id, r.owner_id, r.team_id): (r.deals, r.amount)
        for r in OpenDealTotal.objects.filter(deals__gt=0)
    }


def new_deal(by, customer, code="visit", amount="1000000"):
    return services.deal_create(
        by=by,
        customer=customer,
        data={"title": "5号楼302", "amount": Decimal(amount)},
        stage=deal_stage(code),
    )


@pytest.mark.django_db
def test_totals_follow_creates_moves_edits_losses_and_deletes(sales_rep, teammate):
    customer = CustomerFactory(owner=sales_rep)
    a = new_deal(sales_rep, customer, "visit", "1200000")
    b = new_deal(sales_rep, customer, "subscribe", "1950000")
    c = new_deal(sales_rep, customer, "pledge", "6800000")
    a = services.deal_move(
        by=sales_rep, deal=a, stage=deal_stage("pledge"), version=a.version
    )
    b = services.deal_move(
        by=sales_rep, deal=b, stage=deal_stage("sign"), version=b.version
    )
    c = services.deal_lose(by=sales_rep, deal=c, version=c.version, reason="预算不足")
    c = services.deal_reopen(by=sales_rep, deal=c, version=c.version)
    Deal.objects.filter(pk=a.pk).update(amount=Decimal("1300000"), owner=teammate)
    assert kept_totals() == grouped_open_deals()
    pledge = OpenDealTotal.objects.filter(stage=deal_stage("pledge"))
    assert sum(r.deals for r in pledge) == 2
    assert sum(r.amount for r in pledge) == Decimal("8100000")
    # The won deal is not open: its stage has no open total.
    assert not OpenDealTotal.objects.filter(stage=deal_stage("sign"), deals__gt=0)
    Deal.objects.filter(pk=c.pk).delete()
    assert kept_totals() == grouped_open_deals()


@pytest.mark.django_db
def test_board_columns_show_the_kept_totals_plus_recent_wins(sales_rep, manager):
    customer = CustomerFactory(owner=sales_rep)
    new_deal(sales_rep, customer, "subscribe", "1950000")
    new_deal(sales_rep, customer, "subscribe", "50000")
    won = new_deal(sales_rep, customer, "subscribe", "2860000")
    services.deal_move(
        by=sales_rep, deal=won, stage=deal_stage("sign"), version=won.version
    )
    for user in (sales_rep, manager):
        columns = {c.stage.code: c for c in selectors.board(user=user, filters={})}
        assert (columns["subscribe"].count, columns["subscribe"].total) == (
            2,
            Decimal("2000000"),
        )
        assert (columns["sign"].count, columns["sign"].total) == (1, Decimal("2860000"))


@pytest.mark.django_db(transaction=True)
def test_truncate_clears_the_totals(sales_rep):
    new_deal(sales_rep, CustomerFactory(owner=sales_rep))
    assert OpenDealTotal.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE deals_deal CASCADE")
    assert not OpenDealTotal.objects.filter(deals__gt=0).exists()


@pytest.mark.django_db(transaction=True)
def test_opposite_moves_at_once_keep_the_totals(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    deals = [new_deal(sales_rep, customer, "visit") for _ in range(4)]
    deals += [new_deal(sales_rep, customer, "pledge") for _ in range(4)]
    barrier = threading.Barrier(len(deals))
    errors: list[BaseException] = []

    def move(deal: Deal) -> None:
        target = "pledge" if deal.stage.code == "visit" else "visit"
        try:
            barrier.wait(timeout=10)
            services.deal_move(
                by=sales_rep, deal=deal, stage=deal_stage(target), version=deal.version
            )
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=move, args=(d,)) for d in deals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert kept_totals() == grouped_open_deals()
