"""Deals' demo data (`seed_demo`) and scale data (`seed_scale`, `make bench`).

Demo: three years of property deals and payments that tell the managers' dashboard a
story: sales peak in spring (March to May) and in 金九银十 (September, October) and
drop around the Spring Festival; three big dealers carry a good share of the deals;
the A-tier key accounts buy the most and most of them were called lately; about one
customer in ten went quiet long ago and is now dormant or lost. Every row comes from
`culture.deals.builder` (the form's and the import's checks), the payments never exceed
their deal, and each customer's 累计成交额 is the sum of their payments.

Scale: 3,000,000 deals and 3,000,000 payments over the 1,000,000 scale customers, one
INSERT … SELECT per chunk (crm/core/scale.py).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from crm.core import seeding
from crm.core.scale import Dataset, draw, pick, uniform
from culture.deals import builder
from culture.deals.models import Deal, DealStage, Payment
from customers.demo_texts import STORIES
from customers.models import ContactLog, Customer, FollowUp

YEARS = 3
# Relative weight of each month (1 = January): the Spring Festival trough, the spring
# peak and 金九银十.
SEASON = {
    1: 6,
    2: 3,
    3: 11,
    4: 13,
    5: 11,
    6: 7,
    7: 6,
    8: 7,
    9: 13,
    10: 14,
    11: 8,
    12: 7,
}
PRODUCTS = [
    "滨江花园 3 栋 1201",
    "翠湖湾 5 栋 802",
    "云山府 2 期 洋房",
    "天悦城 商铺 A-12",
    "锦绣华庭 车位 B2-088",
    "海棠苑 别墅 18 号",
    "中央公园 写字楼 15F",
    "龙湖新城 9 栋 1503",
]
LOST_REASONS = [
    "价格超出预算",
    "选择了竞品楼盘",
    "贷款未获批",
    "家庭意见不一",
    "暂缓购房",
]


def _months(today: dt.date) -> list[tuple[dt.date, int]]:
    """The first day of each of the last 36 months with its seasonal weight."""
    first = today.replace(day=1)
    months = []
    for back in range(YEARS * 12):
        year, month = divmod(first.year * 12 + first.month - 1 - back, 12)
        start = dt.date(year, month + 1, 1)
        months.append((start, SEASON[start.month]))
    return months


def _day_in(month: dt.date, today: dt.date, rng: random.Random) -> dt.date:
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    last = min(following - dt.timedelta(days=1), today)
    return month + dt.timedelta(days=rng.randint(0, (last - month).days))


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    moment = dt.datetime.combine(day, dt.time(rng.randint(9, 19), rng.randint(0, 59)))
    return timezone.make_aware(moment)


def seed_demo(run: seeding.DemoRun) -> str:
    if Deal.objects.exists():  # idempotent: deals are seeded once
        return ""
    rng = random.Random(run.seed + 14)  # noqa: S311 - demo data, not security
    today = timezone.localdate()
    stages = {s.code: s for s in DealStage.objects.filter(is_active=True)}
    customers = list(
        # The property demo's 1,100 owners are the handover's (service/property/
        # demo.py): their purchases are not told here, and the seed stays quick.
        Customer.objects.filter(
            merged_into__isnull=True, is_verified=True, unit_ownerships__isnull=True
        )
        .select_related("owner")
        .order_by("pk")
    )
    if not customers or not stages:
        return ""
    sellers = [run.users[n] for n in ("sales1", "sales2", "manager1") if n in run.users]
    channels = [c for c in customers if c.kind in builder.CHANNEL_KINDS][:3]
    ends = [c for c in customers if c.pk not in {ch.pk for ch in channels}]
    # One customer in ten went quiet: no deal in the last year, dormant or lost.
    quiet = [c.pk for c in ends[60:]]  # past the customers with demo contacts
    churned = set(rng.sample(quiet, k=min(len(quiet), max(1, len(ends) // 10))))
    months = _months(today)
    month_days = [m for m, _ in months]
    month_weights = [w for _, w in months]
    born: dict[int, dt.date] = {}
    deals: list[Deal] = []
    for customer in ends:
        key = customer.tier == "A" or customer.is_key_account
        # Customers arrive over the three years, with the seasons; their deals follow.
        arrived = _day_in(rng.choices(month_days, month_weights)[0], today, rng)
        if customer.pk in churned:
            arrived = min(arrived, today - dt.timedelta(days=700))
        born[customer.pk] = arrived
        later = [(m, w) for m, w in months if m >= arrived.replace(day=1)]
        count = rng.randint(5, 10) if key else rng.choices(range(5), [2, 4, 4, 2, 1])[0]
        for _n in range(count):
            month = rng.choices([m for m, _ in later], [w for _, w in later])[0]
            created = max(_day_in(month, today, rng), arrived)
            if customer.pk in churned:
                created = min(created, today - dt.timedelta(days=400))
            deals.append(_deal(customer, created, key, channels, sellers, stages, rng))
    Deal.objects.bulk_create(deals, batch_size=1000)
    # created_at is auto_now_add: set it to the deal's story date afterwards.
    _set_created(deals)
    payments = _payments(deals, today, rng)
    Payment.objects.bulk_create(payments, batch_size=1000)
    _received_totals()
    _customers_story(ends, born, churned, sellers, today, rng)
    return f"{len(deals)} deals, {len(payments)} payments added"


def _deal(
    customer: Customer,
    created: dt.date,
    key: bool,
    channels: list[Customer],
    sellers: list,
    stages: dict[str, DealStage],
    rng: random.Random,
) -> Deal:
    owner = customer.owner or rng.choice(sellers)
    base = rng.uniform(80, 450) * 10_000
    amount = Decimal(round(base * (2.5 if key else 1), -3))
    age = (timezone.localdate() - created).days
    lost_reason = ""
    closed_on = None
    if age > 60 and rng.random() < 0.3:
        stage, lost_reason = stages["visit"], rng.choice(LOST_REASONS)
        closed_on = created + dt.timedelta(days=rng.randint(10, 60))
    elif age > 30 and rng.random() < 0.75:
        stage = stages["paid"] if age > 240 else stages["sign"]
        closed_on = created + dt.timedelta(days=rng.randint(15, min(age, 90)))
    else:
        stage = stages[rng.choice(["visit", "visit", "pledge", "subscribe"])]
    channel = rng.choice(channels) if channels and rng.random() < 0.45 else None
    deal = builder.build(
        customer=customer,
        owner=owner,
        stage=stage,
        data={
            "title": f"{customer.name} · {rng.choice(PRODUCTS)}",
            "product": rng.choice(PRODUCTS),
            "amount": amount,
            "channel": channel,
            "expected_close_on": created + dt.timedelta(days=rng.randint(30, 120)),
        },
        closed_on=closed_on,
        lost_reason=lost_reason,
    )
    deal.story_created = created  # type: ignore[attr-defined]
    return deal


def _set_created(deals: list[Deal]) -> None:
    rows = [(d.pk, d.story_created) for d in deals]  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        # Statistics first: on a table that was empty the planner expects a handful
        # of rows and joins the 14,000 ids to a sequential scan each (30 s, not 1 s).
        cursor.execute("ANALYZE deals_deal")
        cursor.execute(
            "UPDATE deals_deal AS d SET created_at = (v.day::timestamp + interval "
            "'10 hours') AT TIME ZONE current_setting('TimeZone'), "
            "stage_changed_at = (v.day::timestamp + interval '10 hours') "
            "AT TIME ZONE current_setting('TimeZone') "
            "FROM unnest(%s::bigint[], %s::date[]) AS v(id, day) WHERE d.id = v.id",
            [[r[0] for r in rows], [r[1] for r in rows]],
        )


def _payments(deals: list[Deal], today: dt.date, rng: random.Random) -> list[Payment]:
    """A down payment on signing, then instalments: paid in full at 回款."""
    payments = []
    for deal in deals:
        if deal.status != Deal.Status.WON:
            continue
        shares = [0.3, 0.7] if deal.stage.code == "paid" else [0.3]
        if deal.stage.code == "paid" and rng.random() < 0.5:
            shares = [0.3, 0.4, 0.3]
        day = deal.closed_on
        received = Decimal(0)
        for share in shares:
            if day > today:
                break
            amount = (deal.amount * Decimal(str(share))).quantize(Decimal("1"))
            amount = min(amount, deal.amount - received)
            if amount <= 0:
                break
            payment = builder.payment(deal=deal, amount=amount, received_on=day)
            deal.received_total = received = received + amount
            payments.append(payment)
            day = day + dt.timedelta(days=rng.randint(20, 75))
    return payments


def _received_totals() -> None:
    """Each deal's received_total and each customer's 累计成交额 from the payments."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE deals_deal AS d SET received_total = p.total FROM (SELECT deal_id, "
            "sum(amount) AS total FROM deals_payment GROUP BY deal_id) AS p "
            "WHERE d.id = p.deal_id"
        )
        cursor.execute(
            "UPDATE customers_customer AS c SET lifetime_value = coalesce(p.total, 0) "
            "FROM customers_customer AS c2 LEFT JOIN (SELECT customer_id, sum(amount) "
            "AS total FROM deals_payment GROUP BY customer_id) AS p "
            "ON p.customer_id = c2.id WHERE c.id = c2.id"
        )


def _customers_story(
    customers: list[Customer],
    born: dict[int, dt.date],
    churned: set[int],
    sellers: list,
    today: dt.date,
    rng: random.Random,
) -> None:
    """Customers arrive over three years; the churned went quiet long ago; most key
    accounts were called lately; a quarter of follow-ups for the managers to judge."""
    with connection.cursor() as cursor:
        ids = [c.pk for c in customers]
        cursor.execute(
            "UPDATE customers_customer AS c SET created_at = least(c.created_at, "
            "(v.day::timestamp + interval '9 hours') AT TIME ZONE "
            "current_setting('TimeZone')) FROM unnest(%s::bigint[], %s::date[]) "
            "AS v(id, day) WHERE c.id = v.id",
            [ids, [born[i] for i in ids]],
        )
    for pk in churned:
        quiet = timezone.now() - dt.timedelta(days=rng.randint(200, 700))
        Customer.objects.filter(pk=pk).update(
            stage=rng.choice([Customer.Stage.DORMANT, Customer.Stage.LOST]),
            last_contacted_at=quiet,
        )
    contacts, followups = [], []
    now = timezone.now()
    for customer in customers:
        if customer.pk in churned or customer.owner is None:
            continue
        key = customer.tier == "A"
        # The trend: contacts over the last year, more around the sales peaks.
        for _n in range(rng.randint(2, 6) if key else rng.randint(0, 3)):
            day = today - dt.timedelta(days=rng.randint(0, 360))
            if rng.random() * 14 > SEASON[day.month]:
                day = today - dt.timedelta(days=rng.randint(0, 45))
            contacts.append(_contact(customer, _at(day, rng), rng))
        if key and rng.random() < 0.7:  # most key accounts were called lately
            day = today - dt.timedelta(days=rng.randint(0, 25))
            contacts.append(_contact(customer, _at(day, rng), rng))
        for _n in range(rng.choices([0, 1, 2], [3, 5, 2])[0]):
            due = now - dt.timedelta(days=rng.randint(1, 80), hours=rng.randint(0, 8))
            roll = rng.random()
            status, done_at = FollowUp.Status.DONE, None
            if roll < 0.76:
                done_at = due - dt.timedelta(hours=rng.randint(1, 30))
            elif roll < 0.93:
                done_at = due + dt.timedelta(hours=rng.randint(2, 96))
            else:
                status = FollowUp.Status.OPEN
            followups.append(
                FollowUp(
                    customer=customer,
                    assignee=customer.owner,
                    created_by=customer.owner,
                    due_at=due,
                    note=rng.choice(STORIES).followup,
                    status=status,
                    done_at=done_at,
                )
            )
    ContactLog.objects.bulk_create(contacts, batch_size=1000)
    FollowUp.objects.bulk_create(followups, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer AS c SET last_contacted_at = k.last, "
            "contact_count = k.n FROM (SELECT customer_id, max(occurred_at) AS last, "
            "count(*) AS n FROM customers_contactlog GROUP BY customer_id) AS k "
            "WHERE c.id = k.customer_id AND NOT (c.id = ANY(%s))",
            [list(churned)],
        )


def _contact(customer: Customer, when: dt.datetime, rng: random.Random) -> ContactLog:
    return ContactLog(
        customer=customer,
        author=customer.owner,
        channel=rng.choice(["phone", "wechat", "visit"]),
        occurred_at=when,
        summary=rng.choice(rng.choice(STORIES).contacts),
    )


# --- Scale data ----------------------------------------------------------------------

# Deals per scale customer: 3,000,000 over the 1,000,000 customers at full size.
DEALS_PER_CUSTOMER = 3
SCALE_DAYS = YEARS * 365
# Once per statement: the customer count and the three big dealers (the first three
# dealer, distributor or agent customers).
_ONCE = (
    "CROSS JOIN (SELECT (SELECT max(id) FROM customers_customer) AS customers, "
    "ARRAY(SELECT id FROM customers_customer WHERE kind IN "
    "('dealer', 'distributor', 'agent') ORDER BY id LIMIT 3) AS dealers, "
    "(SELECT array_agg(id ORDER BY position) FROM deals_dealstage) AS stages) AS o "
)

# Deal i: its customer is skewed towards the first ids (u²: a few customers, the big
# accounts, carry many deals); created any day of three years; 45 per cent through one of
# the three big dealers; fate < 30 lost (if older than 60 days), ≥ 60 won, else open.
SCALE_DEALS = Dataset(
    name="deals",
    model="deals.Deal",
    rows_per_customer=DEALS_PER_CUSTOMER,
    source=(
        "generate_series({start}::bigint, {stop}) AS g(i) " + _ONCE + "JOIN "
        "customers_customer AS c ON c.id = 1 + floor((o.customers - 1) * "
        f"{uniform(141)} ^ 2)::bigint "
        f"JOIN bench_seller AS sp ON sp.n = 1 + {draw(142, 50)} "
        "CROSS JOIN LATERAL (SELECT "
        f"{draw(143, SCALE_DAYS)} AS age, {draw(144, 100)} AS fate, "
        f"{draw(145, 100)} AS via, {uniform(146)} AS size_u OFFSET 0) AS d"
    ),
    base={
        "customer": "c.id",
        "owner": "coalesce(c.owner_id, sp.user_id)",
        "team": "coalesce(c.team_id, sp.team_id)",
        "dealer": "CASE WHEN d.via < 45 THEN o.dealers[1 + mod(d.via, 3)] END",
        "age": "d.age",
        "lost": "d.fate < 30 AND d.age > 60",
        "won": "d.fate >= 60",
        "fate": "d.fate",
        "size_u": "d.size_u",
        "stages": "o.stages",
    },
    columns={
        "customer_id": "customer",
        "channel_id": "CASE WHEN dealer <> customer THEN dealer END",
        "title": pick(PRODUCTS, 147),
        "product": pick(["住宅", "商铺", "车位", "别墅", "写字楼"], 148),
        "amount": "round((500000 + 4500000 * size_u ^ 2)::numeric, -3)",
        # Stages by position: 来访 认筹 认购 open or lost, 签约 回款 won.
        "stage_id": (
            "stages[CASE WHEN won THEN CASE WHEN age > 240 THEN 5 ELSE 4 END "
            "WHEN lost THEN 1 + mod(fate, 2) ELSE 1 + mod(fate, 3) END]"
        ),
        "status": "CASE WHEN won THEN 'won' WHEN lost THEN 'lost' ELSE 'open' END",
        "owner_id": "owner",
        "team_id": "team",
        "lost_reason": f"CASE WHEN lost AND NOT won THEN {pick(LOST_REASONS, 149)} "
        "ELSE '' END",
        "expected_close_on": "current_date - age::int + 60",
        "closed_on": "CASE WHEN won OR lost THEN current_date - age::int "
        "+ least(30, age)::int END",
        "created_at": "now() - make_interval(days => age::int)",
        "stage_changed_at": "now() - make_interval(days => age::int)",
        "updated_at": "now() - make_interval(days => age::int)",
        "version": "1",
    },
    after=(
        "SELECT setval(pg_get_serial_sequence('deals_deal', 'id'), "
        "(SELECT max(id) FROM deals_deal))",
        # The board's totals: their triggers are off while the bench data is
        # written (session_replication_role = replica), so they are summed here.
        "DELETE FROM deals_opendealtotal",
        "INSERT INTO deals_opendealtotal (stage_id, owner_id, team_id, deals, amount) "
        "SELECT stage_id, owner_id, team_id, count(*), sum(amount) FROM deals_deal "
        "WHERE status = 'open' GROUP BY 1, 2, 3",
        "DELETE FROM deals_wondealday",
        "INSERT INTO deals_wondealday "
        "(stage_id, owner_id, team_id, closed_on, deals, amount) "
        "SELECT stage_id, owner_id, team_id, closed_on, count(*), sum(amount) "
        "FROM deals_deal WHERE status = 'won' AND closed_on IS NOT NULL "
        "GROUP BY 1, 2, 3, 4",
    ),
)

# Payments of the won deals, deal by deal: one to four instalments (2.5 on average,
# about 3,000,000 at full size), each a share of the amount, every 30 days from the
# closing, never after today. received_total and 累计成交额 are summed afterwards.
SCALE_PAYMENTS = Dataset(
    name="payments",
    model="deals.Payment",
    rows_per_customer=DEALS_PER_CUSTOMER,
    unit="deals",
    source=(
        "deals_deal AS d CROSS JOIN LATERAL generate_series(1, 1 + mod(d.id, 4)::int) AS k(n) "
        "CROSS JOIN LATERAL (SELECT d.id * 4 + k.n AS i) AS g "
        "WHERE d.id BETWEEN {start} AND {stop} AND d.status = 'won'"
    ),
    base={
        "deal": "d.id",
        "customer": "d.customer_id",
        "channel": "d.channel_id",
        "amount": "trunc(d.amount / (1 + mod(d.id, 4)), 2)",
        "received": "least(current_date, d.closed_on + (k.n - 1) * 30)",
    },
    columns={
        "deal_id": "deal",
        "customer_id": "customer",
        "channel_id": "channel",
        "amount": "greatest(amount, 0.01)",
        "received_on": "received",
        "note": "''",
        "created_at": "received::timestamp + interval '10 hours'",
    },
    after=(
        "UPDATE deals_deal AS d SET received_total = p.total FROM (SELECT deal_id, "
        "sum(amount) AS total FROM deals_payment GROUP BY deal_id) AS p "
        "WHERE d.id = p.deal_id",
        "UPDATE customers_customer AS c SET lifetime_value = p.total FROM (SELECT "
        "customer_id, sum(amount) AS total FROM deals_payment GROUP BY customer_id) "
        "AS p WHERE c.id = p.customer_id",
    ),
)


seeding.register(
    __name__,
    demo=seed_demo,
    scale=seeding.Scale(datasets=[SCALE_DEALS, SCALE_PAYMENTS]),
)
