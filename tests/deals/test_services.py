"""The deal and payment services against PostgreSQL: stage moves, lost and reopen,
optimistic versions, totals kept by payments (also across a customer merge)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from culture.deals import services
from culture.deals.models import Deal, DealStageChange, Payment
from customers import services as customer_services
from customers.models import Customer
from tests.factories import CustomerFactory, deal_stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="王先生")


@pytest.fixture
def dealer(sales_rep):
    return CustomerFactory(
        owner=sales_rep,
        name="华东经销商",
        kind=Customer.Kind.DEALER,
        is_organization=True,
    )


def new_deal(by, customer, **data):
    data.setdefault("title", "3号楼1201")
    data.setdefault("amount", Decimal("2000000"))
    # deal_stage() also restores the default stages after a transactional test.
    stage = data.pop("stage", None) or deal_stage("visit")
    return services.deal_create(by=by, customer=customer, data=data, stage=stage)


def test_create_defaults_team_from_owner_and_starts_at_the_first_stage(
    sales_rep, customer
):
    deal = new_deal(sales_rep, customer)
    assert deal.team_id == sales_rep.team_id
    assert deal.stage.code == "visit"
    assert deal.status == Deal.Status.OPEN
    change = DealStageChange.objects.get(deal=deal)
    assert (change.from_stage, change.to_stage.code, change.to_status) == (
        None,
        "visit",
        "open",
    )


def test_each_stage_move_is_recorded_and_won_stages_close_the_deal(sales_rep, customer):
    deal = new_deal(sales_rep, customer)
    for code in ("pledge", "subscribe"):
        deal = services.deal_move(
            by=sales_rep, deal=deal, stage=deal_stage(code), version=deal.version
        )
        assert deal.status == Deal.Status.OPEN and deal.closed_on is None
    deal = services.deal_move(
        by=sales_rep, deal=deal, stage=deal_stage("sign"), version=deal.version
    )
    assert deal.status == Deal.Status.WON
    assert deal.closed_on == timezone.localdate()
    deal = services.deal_move(
        by=sales_rep, deal=deal, stage=deal_stage("paid"), version=deal.version
    )
    assert deal.status == Deal.Status.WON
    # Back to an open stage: open again, no closing date.
    deal = services.deal_move(
        by=sales_rep, deal=deal, stage=deal_stage("subscribe"), version=deal.version
    )
    assert deal.status == Deal.Status.OPEN and deal.closed_on is None
    moves = list(
        DealStageChange.objects.filter(deal=deal)
        .order_by("id")
        .values_list("to_stage__code", "to_status")
    )
    assert moves == [
        ("visit", "open"),
        ("pledge", "open"),
        ("subscribe", "open"),
        ("sign", "won"),
        ("paid", "won"),
        ("subscribe", "open"),
    ]


def test_moving_to_the_same_stage_changes_nothing(sales_rep, customer):
    deal = new_deal(sales_rep, customer)
    same = services.deal_move(
        by=sales_rep, deal=deal, stage=deal_stage("visit"), version=deal.version
    )
    assert same.version == deal.version
    assert DealStageChange.objects.filter(deal=deal).count() == 1


def test_lost_needs_a_reason_and_reopen_brings_it_back(sales_rep, customer):
    deal = new_deal(sales_rep, customer, stage=deal_stage("subscribe"))
    with pytest.raises(ValidationError) as error:
        services.deal_lose(by=sales_rep, deal=deal, version=deal.version, reason="  ")
    assert "请填写输单原因" in str(error.value)
    deal.refresh_from_db()
    assert deal.status == Deal.Status.OPEN
    deal = services.deal_lose(
        by=sales_rep, deal=deal, version=deal.version, reason="选择了竞品楼盘"
    )
    assert deal.status == Deal.Status.LOST and deal.lost_reason == "选择了竞品楼盘"
    with pytest.raises(ValidationError, match="请先重新打开"):
        services.deal_move(
            by=sales_rep, deal=deal, stage=deal_stage("sign"), version=deal.version
        )
    deal = services.deal_reopen(by=sales_rep, deal=deal, version=deal.version)
    assert deal.status == Deal.Status.OPEN and deal.lost_reason == ""
    assert deal.stage.code == "subscribe"


def test_a_stale_version_is_refused_as_edited_by_someone_else(
    sales_rep, teammate, customer
):
    deal = new_deal(sales_rep, customer)
    services.deal_update(
        by=teammate, deal=deal, version=deal.version, data={"title": "改过的名称"}
    )
    with pytest.raises(services.Conflict, match="已被他人修改"):
        services.deal_update(
            by=sales_rep, deal=deal, version=deal.version, data={"title": "我的名称"}
        )
    with pytest.raises(services.Conflict):
        services.deal_move(
            by=sales_rep, deal=deal, stage=deal_stage("sign"), version=deal.version
        )
    deal.refresh_from_db()
    assert deal.title == "改过的名称" and deal.stage.code == "visit"


def test_concurrent_moves_one_wins_the_other_is_told(
    sales_rep, teammate, customer, transactional_db
):
    deal = new_deal(sales_rep, customer)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def move(user, code):
        try:
            barrier.wait()
            services.deal_move(
                by=user, deal=deal, stage=deal_stage(code), version=deal.version
            )
            results.append("ok")
        except services.Conflict:
            results.append("conflict")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=move, args=(sales_rep, "pledge")),
        threading.Thread(target=move, args=(teammate, "sign")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["conflict", "ok"]
    assert DealStageChange.objects.filter(deal=deal).count() == 2


def test_channel_must_be_a_channel_kind_and_not_the_customer(
    sales_rep, customer, dealer
):
    with pytest.raises(ValidationError) as error:
        new_deal(sales_rep, customer, channel=customer)
    assert "channel" in error.value.message_dict
    plain = CustomerFactory(owner=sales_rep, kind=Customer.Kind.OWNER)
    with pytest.raises(ValidationError, match="经销商"):
        new_deal(sales_rep, customer, channel=plain)
    deal = new_deal(sales_rep, customer, channel=dealer)
    assert deal.channel == dealer


def test_amount_and_dates_are_bounded(sales_rep, customer):
    for amount in ("-1", "10000000000", "1.001", "NaN"):
        with pytest.raises(ValidationError):
            new_deal(sales_rep, customer, amount=amount)
    with pytest.raises(ValidationError):
        new_deal(sales_rep, customer, expected_close_on=dt.date(1999, 12, 31))
    assert not Deal.objects.exists()


def test_outsiders_customer_and_roles_without_deals_are_refused(
    sales_rep, outsider, service_agent, customer
):
    with pytest.raises(ValidationError, match="找不到该客户"):
        new_deal(outsider, customer)
    with pytest.raises(PermissionDenied):
        new_deal(service_agent, customer)
    assert not Deal.objects.exists()


# --- payments --------------------------------------------------------------------------


def test_payments_keep_received_total_and_lifetime_value(sales_rep, customer, dealer):
    deal = new_deal(sales_rep, customer, channel=dealer, stage=deal_stage("sign"))
    first = services.payment_add(
        by=sales_rep, deal=deal, amount="500000", received_on=timezone.localdate()
    )
    services.payment_add(
        by=sales_rep, deal=deal, amount="300000.50", received_on=timezone.localdate()
    )
    deal.refresh_from_db()
    customer.refresh_from_db()
    dealer.refresh_from_db()
    assert deal.received_total == Decimal("800000.50")
    assert customer.lifetime_value == Decimal("800000.50")
    # The channel's revenue is its own figure, never the end customer's.
    assert dealer.lifetime_value == 0
    assert first.channel == dealer and first.customer == customer

    services.payment_remove(by=sales_rep, payment=first)
    deal.refresh_from_db()
    customer.refresh_from_db()
    assert deal.received_total == Decimal("300000.50")
    assert customer.lifetime_value == Decimal("300000.50")
    assert customer.lifetime_value == services.lifetime_value_of(customer.pk)


def test_payment_bounds_write_nothing(sales_rep, customer):
    deal = new_deal(sales_rep, customer, amount="100000")
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    for amount, day in (
        ("0", timezone.localdate()),
        ("100000.01", timezone.localdate()),
        ("100", tomorrow),
        ("100", dt.date(1999, 1, 1)),
    ):
        with pytest.raises(ValidationError):
            services.payment_add(
                by=sales_rep, deal=deal, amount=amount, received_on=day
            )
    assert not Payment.objects.exists()
    customer.refresh_from_db()
    assert customer.lifetime_value == 0


def test_a_lost_deal_takes_no_payment(sales_rep, customer):
    deal = new_deal(sales_rep, customer)
    deal = services.deal_lose(by=sales_rep, deal=deal, version=deal.version, reason="x")
    with pytest.raises(ValidationError):
        services.payment_add(
            by=sales_rep, deal=deal, amount="1", received_on=timezone.localdate()
        )


def test_lowering_the_amount_below_what_was_received_is_refused(sales_rep, customer):
    deal = new_deal(sales_rep, customer, amount="100000")
    services.payment_add(
        by=sales_rep, deal=deal, amount="80000", received_on=timezone.localdate()
    )
    with pytest.raises(ValidationError, match="不能低于已回款"):
        services.deal_update(
            by=sales_rep, deal=deal, version=deal.version, data={"amount": "50000"}
        )


def test_changing_the_channel_moves_the_payments_channel(sales_rep, customer, dealer):
    deal = new_deal(sales_rep, customer, channel=dealer)
    payment = services.payment_add(
        by=sales_rep, deal=deal, amount="1000", received_on=timezone.localdate()
    )
    services.deal_update(
        by=sales_rep, deal=deal, version=deal.version, data={"channel": None}
    )
    payment.refresh_from_db()
    assert payment.channel is None


def test_merge_moves_deals_and_payments_and_keeps_lifetime_value(
    sales_rep, manager, customer
):
    duplicate = CustomerFactory(owner=sales_rep, name="王先生（重复）")
    mine = new_deal(sales_rep, customer)
    theirs = new_deal(sales_rep, duplicate, amount="500000")
    services.payment_add(
        by=sales_rep, deal=mine, amount="1000", received_on=timezone.localdate()
    )
    services.payment_add(
        by=sales_rep, deal=theirs, amount="2000", received_on=timezone.localdate()
    )
    customer_services.customer_merge(by=manager, survivor=customer, duplicate=duplicate)
    customer.refresh_from_db()
    duplicate.refresh_from_db()
    theirs.refresh_from_db()
    assert theirs.customer == customer
    assert set(Payment.objects.values_list("customer_id", flat=True)) == {customer.pk}
    assert customer.lifetime_value == Decimal("3000")
    assert duplicate.lifetime_value == 0


def test_concurrent_payments_keep_the_totals(
    sales_rep, teammate, customer, transactional_db
):
    deal = new_deal(sales_rep, customer, amount="100000")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def pay(user):
        try:
            barrier.wait()
            services.payment_add(
                by=user, deal=deal, amount="1000", received_on=timezone.localdate()
            )
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=pay, args=(u,))
        for u in (sales_rep, teammate, sales_rep, teammate)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    deal.refresh_from_db()
    customer.refresh_from_db()
    assert deal.received_total == Decimal("4000")
    assert customer.lifetime_value == Decimal("4000")
