"""Each field and operator of the rule language against hand-built customers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from culture.deals.models import Payment
from culture.segments import rules
from customers.models import Customer
from service.handover.models import Appointment
from tests.factories import CustomerFactory, DealFactory, TicketFactory
from tests.handover.builders import make_event, slots_of

pytestmark = pytest.mark.django_db


def ids(tree: dict) -> set[int]:
    cleaned = rules.validate(tree)
    return set(rules.customers_matching(cleaned).values_list("pk", flat=True))


def one(field: str, operator: str, value=None) -> dict:
    return {
        "op": "and",
        "rules": [{"field": field, "operator": operator, "value": value}],
    }


@pytest.fixture
def people(sales_rep, teammate, outsider):
    a = CustomerFactory(
        owner=sales_rep,
        kind="dealer",
        tier="A",
        stage="customer",
        source="referral",
        province="浙江省",
        city="杭州市",
        tags=["VIP", "团购"],
    )
    b = CustomerFactory(
        owner=teammate,
        kind="owner",
        tier="B",
        stage="lead",
        source="online",
        province="广东省",
        city="深圳市",
        tags=["VIP"],
    )
    c = CustomerFactory(
        owner=None,
        team=None,
        kind="agent",
        tier="C",
        stage="dormant",
        source="walk_in",
        province="上海",
        city="上海市",
    )
    d = CustomerFactory(
        owner=outsider,
        kind="dealer",
        tier="A",
        stage="lost",
        province="四川省",
        city="成都市",
        tags=[],
    )
    return a, b, c, d


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("kind", "in", ["dealer"], "ad"),
        ("kind", "not_in", ["dealer"], "bc"),
        ("tier", "in", ["A", "C"], "acd"),
        ("tier", "not_in", ["A"], "bc"),
        ("stage", "in", ["dormant", "lost"], "cd"),
        ("stage", "not_in", ["lead"], "acd"),
        ("source", "in", ["online", "walk_in"], "bc"),
        ("source", "not_in", ["referral"], "bcd"),
        ("macro_region", "in", ["华东"], "ac"),
        ("macro_region", "in", ["华南", "西南"], "bd"),
        ("macro_region", "not_in", ["华东"], "bd"),
        ("province", "in", ["广东省", "四川省"], "bd"),
        ("province", "not_in", ["广东省"], "acd"),
        ("city", "in", ["杭州市"], "a"),
        ("city", "not_in", ["杭州市", "上海市"], "bd"),
        ("tags", "has_any", ["团购", "VIP"], "ab"),
        ("tags", "has_all", ["团购", "VIP"], "a"),
        ("tags", "has_none", ["VIP"], "cd"),
        ("owner", "is_empty", None, "c"),
    ],
)
def test_customer_field_operators(people, field, operator, value, expected):
    named = dict(zip("abcd", people, strict=True))
    assert ids(one(field, operator, value)) == {named[k].pk for k in expected}


def test_owner_and_team_in_and_not_in(people, sales_rep, team_a, team_b):
    a, b, c, d = people
    assert ids(one("owner", "in", [sales_rep.pk])) == {a.pk}
    assert ids(one("owner", "not_in", [sales_rep.pk])) == {b.pk, c.pk, d.pk}
    assert ids(one("team", "in", [team_a.pk])) == {a.pk, b.pk}
    assert ids(one("team", "not_in", [team_a.pk])) == {c.pk, d.pk}
    assert ids(one("team", "is_empty")) == {c.pk}


def test_days_since_last_contact(sales_rep):
    now = timezone.now()
    old = timezone.now() - dt.timedelta(days=400)
    recent = CustomerFactory(
        owner=sales_rep, last_contacted_at=now - dt.timedelta(days=3)
    )
    month = CustomerFactory(
        owner=sales_rep, last_contacted_at=now - dt.timedelta(days=45)
    )
    never_old = CustomerFactory(owner=sales_rep, last_contacted_at=None)
    Customer.objects.filter(pk=never_old.pk).update(created_at=old)
    never_new = CustomerFactory(owner=sales_rep, last_contacted_at=None)
    assert ids(one("last_contact", "gt", 30)) == {month.pk, never_old.pk}
    assert ids(one("last_contact", "lt", 30)) == {recent.pk}
    assert ids(one("last_contact", "between", {"min": 40, "max": 50})) == {month.pk}
    assert ids(one("last_contact", "between", {"min": 0, "max": 10})) == {recent.pk}
    assert ids(one("last_contact", "never")) == {never_old.pk, never_new.pk}


def test_tickets_and_complaints_in_a_period(sales_rep):
    quiet, one_complaint, two_repairs, old_complaint = (
        CustomerFactory(owner=sales_rep) for _ in range(4)
    )
    TicketFactory(customer=one_complaint, ticket_type="complaint")
    TicketFactory(customer=two_repairs, ticket_type="repair")
    TicketFactory(customer=two_repairs, ticket_type="inquiry")
    long_ago = TicketFactory(customer=old_complaint, ticket_type="complaint")
    type(long_ago).objects.filter(pk=long_ago.pk).update(
        created_at=timezone.now() - dt.timedelta(days=200)
    )
    everyone = {quiet.pk, one_complaint.pk, two_repairs.pk, old_complaint.pk}
    assert ids(one("complaints", "count_gte", {"days": 90, "count": 1})) == {
        one_complaint.pk
    }
    assert ids(one("complaints", "count_gte", {"days": 365, "count": 1})) == {
        one_complaint.pk,
        old_complaint.pk,
    }
    assert ids(one("complaints", "none", {"days": 90})) == everyone - {one_complaint.pk}
    assert ids(one("tickets", "count_gte", {"days": 30, "count": 2})) == {
        two_repairs.pk
    }
    assert ids(one("tickets", "count_gte", {"days": 30, "count": 1})) == {
        one_complaint.pk,
        two_repairs.pk,
    }
    assert ids(one("tickets", "none", {"days": 30})) == {quiet.pk, old_complaint.pk}


def pay(deal, amount, days_ago=0):
    return Payment.objects.create(
        deal=deal,
        customer=deal.customer,
        channel=deal.channel,
        amount=Decimal(amount),
        received_on=timezone.localdate() - dt.timedelta(days=days_ago),
    )


def test_revenue_end_customer_and_channel_views(sales_rep):
    dealer = CustomerFactory(owner=sales_rep, kind="dealer")
    big, small, none, old = (CustomerFactory(owner=sales_rep) for _ in range(4))
    pay(DealFactory(customer=big, channel=dealer), "300000")
    pay(DealFactory(customer=big), "200000", days_ago=10)
    pay(DealFactory(customer=small, channel=dealer), "50000", days_ago=5)
    pay(DealFactory(customer=old), "900000", days_ago=400)
    everyone = {dealer.pk, big.pk, small.pk, none.pk, old.pk}
    period = {"days": 30}
    assert ids(one("revenue", "gte", {**period, "amount": "500000"})) == {big.pk}
    assert ids(one("revenue", "gte", {**period, "amount": "10000"})) == {
        big.pk,
        small.pk,
    }
    # ≤ includes those with no revenue at all (0).
    assert ids(one("revenue", "lte", {**period, "amount": "100000"})) == everyone - {
        big.pk
    }
    assert ids(
        one("revenue", "between", {**period, "min": "10000", "max": "100000"})
    ) == {small.pk}
    assert ids(one("revenue", "between", {**period, "min": "0", "max": "100000"})) == (
        everyone - {big.pk}
    )
    year = {
        "from": (timezone.localdate() - dt.timedelta(days=500)).isoformat(),
        "to": timezone.localdate().isoformat(),
    }
    assert ids(one("revenue", "gte", {**year, "amount": "800000"})) == {old.pk}
    # The dealer's view: what flowed through it (300,000 + 50,000), never added to
    # the end customers'.
    assert ids(one("channel_revenue", "gte", {**period, "amount": "350000"})) == {
        dealer.pk
    }
    assert ids(one("channel_revenue", "gte", {**period, "amount": "350001"})) == set()


def test_open_deals_count_and_amount(sales_rep):
    two, one_big, lost = (CustomerFactory(owner=sales_rep) for _ in range(3))
    DealFactory(customer=two, amount=100)
    DealFactory(customer=two, amount=100)
    DealFactory(customer=one_big, amount=5_000_000)
    DealFactory(customer=lost, amount=9_000_000, status="lost", lost_reason="价格")
    assert ids(one("open_deals", "count_gte", 1)) == {two.pk, one_big.pk}
    assert ids(one("open_deals", "count_gte", 2)) == {two.pk}
    assert ids(one("open_deals", "amount_gte", "1000000")) == {one_big.pk}


def test_handover_booked_checked_in_not_booked(admin_user, sales_rep):
    event = make_event(admin_user)
    other = make_event(admin_user, name="另一场交付")
    slot = slots_of(event)[0]
    booked, arrived, nothing = (CustomerFactory(owner=sales_rep) for _ in range(3))
    Appointment.objects.create(
        event=event, slot=slot, customer=booked, created_by=admin_user
    )
    Appointment.objects.create(
        event=event,
        slot=slot,
        customer=arrived,
        created_by=admin_user,
        state="checked_in",
        checked_in_at=timezone.now(),
    )
    on_event = {"event": event.pk}
    assert ids(one("handover", "booked", on_event)) == {booked.pk, arrived.pk}
    assert ids(one("handover", "checked_in", on_event)) == {arrived.pk}
    assert ids(one("handover", "not_booked", on_event)) == {nothing.pk}
    assert ids(one("handover", "booked", {"event": other.pk})) == set()
    assert ids(one("handover", "booked", {"event": None})) == {booked.pk, arrived.pk}


def test_and_or_nesting(people):
    a, b, c, d = people
    tree = {
        "op": "and",
        "rules": [
            {"field": "tier", "operator": "in", "value": ["A", "B"]},
            {
                "op": "or",
                "rules": [
                    {"field": "macro_region", "operator": "in", "value": ["华东"]},
                    {"field": "tags", "operator": "has_all", "value": ["VIP"]},
                ],
            },
        ],
    }
    assert ids(tree) == {a.pk, b.pk}
    tree["op"] = "or"
    assert ids(tree) == {a.pk, b.pk, c.pk, d.pk}


def test_merged_customers_are_never_members(people):
    a, b, *_ = people
    Customer.objects.filter(pk=b.pk).update(merged_into=a)
    assert ids(one("tags", "has_any", ["VIP"])) == {a.pk}


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        (None, "规则组"),
        ({"op": "xor", "rules": []}, "规则组"),
        ({"op": "and", "rules": []}, "请至少添加一条规则"),
        (one("colour", "in", ["red"]), "未知的字段"),
        (one("tier", "like", ["A"]), "不支持条件"),
        (one("tier", "in", ["Z"]), "未知的取值：Z"),
        (one("tier", "in", []), "请至少"),
        (one("province", "in", ["x" * 31]), "最多 30 个字"),
        (one("owner", "in", [999999]), "负责人不存在"),
        (one("last_contact", "gt", "abc"), "须为整数"),
        (one("last_contact", "gt", 99999), "须在 0 至 3650"),
        (one("last_contact", "between", {"min": 9, "max": 3}), "最小天数"),
        (one("complaints", "count_gte", {"days": 0, "count": 1}), "须在 1 至 3650"),
        (one("complaints", "count_gte", {"days": 30, "count": 0}), "次数"),
        (one("revenue", "gte", {"days": 30, "amount": "-1"}), "金额须在 0"),
        (one("revenue", "gte", {"days": 30, "amount": "NaN"}), "金额"),
        (
            one(
                "revenue",
                "gte",
                {"from": "2026-02-30", "to": "2026-03-01", "amount": 1},
            ),
            "日期",
        ),
        (
            one(
                "revenue",
                "gte",
                {"from": "2026-03-02", "to": "2026-03-01", "amount": 1},
            ),
            "开始日期不能晚于",
        ),
        (one("revenue", "between", {"days": 9, "min": 5, "max": 1}), "最小金额"),
        (one("handover", "booked", {"event": 999999}), "入伙活动不存在"),
        (one("tier", "in", "A"), None),
    ],
)
def test_invalid_rules_give_chinese_messages(tree, message):
    if message is None:  # a plain string is read as a one-item list
        assert rules.validate(tree)["rules"][0]["value"] == ["A"]
        return
    with pytest.raises(ValidationError) as caught:
        rules.validate(tree)
    assert message in " ".join(caught.value.messages)


def test_too_deep_and_too_many_rules_are_refused():
    deep = {
        "op": "and",
        "rules": [
            {
                "op": "or",
                "rules": [
                    {
                        "op": "and",
                        "rules": [
                            {
                                "op": "or",
                                "rules": [
                                    {"field": "tier", "operator": "in", "value": ["A"]}
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    with pytest.raises(ValidationError, match="最多嵌套"):
        rules.validate(deep)
    many = {
        "op": "and",
        "rules": [
            {"field": "tier", "operator": "in", "value": ["A"]} for _ in range(21)
        ],
    }
    with pytest.raises(ValidationError, match="最多 20 条"):
        rules.validate(many)


def test_definition_in_words(sales_rep):
    tree = rules.validate(
        {
            "op": "and",
            "rules": [
                {"field": "tier", "operator": "in", "value": ["A"]},
                {"field": "kind", "operator": "in", "value": ["dealer"]},
                {"field": "macro_region", "operator": "in", "value": ["华东"]},
                {
                    "field": "complaints",
                    "operator": "count_gte",
                    "value": {"days": 90, "count": 1},
                },
                {"field": "owner", "operator": "in", "value": [sales_rep.pk]},
            ],
        }
    )
    words = rules.describe(tree)
    assert "价值等级 属于 A 且 客户类型 属于 经销商" in words
    assert "近 90 天投诉 ≥ 1 次" in words
    assert str(sales_rep) in words


def test_macro_regions_cover_full_and_short_names():
    assert {"浙江省", "浙江", "上海市", "上海"} <= set(rules.provinces_of("华东"))
    assert "广西壮族自治区" in rules.provinces_of("华南")
    assert "黑龙江省" in rules.provinces_of("东北")
