"""Customers' demo data (`seed_demo`) and scale data (`seed_scale`, `make bench`).

Registered with crm.core.seeding at the end of this module, which the platform's commands
import through `autodiscover_modules("demo")`.

Demo: realistic Chinese customers with phones and profiles, and for the first sixty some
contacts and follow-ups through the real services (so reminders are scheduled). Only
customers up to the requested count are added, so running it twice adds nothing.

Scale: customers, their phones, profiles and contact logs, one set-based INSERT per
chunk (see crm/core/scale.py for how a Dataset becomes SQL).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

from django.utils import timezone
from faker import Faker

from crm.accounts.models import User
from crm.core import seeding
from crm.core.scale import (
    GIVEN_LIST,
    SALESPEOPLE,
    SIZES,
    SURNAME_LIST,
    Dataset,
    draw,
    lit,
    part,
    pick,
    pinyins,
)
from customers import search
from customers import services as customer_services
from customers.demo_texts import STORIES, ContactStory
from customers.models import ContactLog, Customer, CustomerPhone, CustomerProfile

# --- Demo data ---------------------------------------------------------------------------

PROVINCES = [
    ("广东省", "深圳市"),
    ("广东省", "广州市"),
    ("上海市", "上海市"),
    ("北京市", "北京市"),
    ("浙江省", "杭州市"),
    ("江苏省", "南京市"),
    ("四川省", "成都市"),
    ("湖北省", "武汉市"),
]
TAGS = ["学区房", "改善型", "投资客", "老业主", "团购", "VIP", "已交房", "待入伙"]
# Allocated mainland mobile prefixes: every 8-digit serial behind them is a valid number.
MOBILE_PREFIXES = ("130", "135", "138", "139", "150", "158", "186", "188", "189", "199")


def seed_demo(run: seeding.DemoRun) -> str:
    """Demo customers up to `run.customers`, with some activity; says how many it added."""
    added = _customers(run.customers, run.users, run.seed)
    return f"{added} customers added"


def _customers(wanted: int, users: dict[str, User], seed: int) -> int:
    existing = Customer.objects.count()
    missing = wanted - existing
    if missing <= 0:
        return 0
    fake = Faker("zh_CN")
    fake.seed_instance(seed + existing)
    rng = random.Random(seed + existing)  # noqa: S311 - demo data, not security
    owners = [users["sales1"], users["sales2"], users["manager1"], None]
    kinds = Customer.Kind.values
    customers, numbers, stories = [], [], []
    for offset in range(missing):
        owner = rng.choice(owners)
        story = rng.choice(STORIES)
        stories.append(story)
        kind = rng.choices(kinds, weights=[60, 15, 5, 8, 4, 5, 3])[0]
        is_org = kind != Customer.Kind.OWNER
        name = fake.company() if is_org else fake.name()
        pinyin, initials = search.pinyin_of(name)
        province = rng.choice(PROVINCES)
        # Unique by construction (the serial), and valid: a prefix outside the
        # allocated mobile ranges (154, 194 …) made the customer uneditable.
        numbers.append(f"{rng.choice(MOBILE_PREFIXES)}{existing + offset:08d}")
        customers.append(
            Customer(
                name=name,
                name_pinyin=pinyin,
                name_initials=initials,
                is_organization=is_org,
                kind=kind,
                stage=rng.choice(Customer.Stage.values),
                tier=rng.choices("ABCD", weights=[10, 25, 40, 25])[0],
                is_key_account=rng.random() < 0.1,
                source=rng.choice(Customer.Source.values),
                tags=rng.sample(TAGS, k=rng.randint(0, 2)),
                province=province[0],
                city=province[1],
                phone=numbers[-1],
                wechat_id=f"wx_{initials}{offset}" if rng.random() < 0.4 else "",
                email=fake.email() if rng.random() < 0.3 else "",
                owner=owner,
                team=owner.team if owner else None,
                pool_entered_at=None if owner else timezone.now(),
                notes=story.note if rng.random() < 0.3 else "",
            )
        )
    Customer.objects.bulk_create(customers, batch_size=2000)
    CustomerPhone.objects.bulk_create(
        (
            CustomerPhone(customer=c, number=n, is_primary=True)
            for c, n in zip(customers, numbers, strict=True)
        ),
        batch_size=2000,
    )
    CustomerProfile.objects.bulk_create(
        (CustomerProfile(customer=c) for c in customers), batch_size=2000
    )
    _activity(list(zip(customers, stories, strict=True))[:60], users, rng)
    return missing


def _activity(
    customers: list[tuple[Customer, ContactStory]],
    users: dict[str, User],
    rng: random.Random,
) -> None:
    """Contacts and follow-ups through the real services, so reminders are scheduled;
    each customer's contacts follow one story of customers/demo_texts.py, in order."""
    now = timezone.now()
    channels = ContactLog.Channel.values
    for customer, story in customers:
        author = customer.owner or users["service1"]
        steps = story.contacts[: rng.randint(1, len(story.contacts))]
        days = sorted(rng.sample(range(1, 90), k=len(steps)), reverse=True)
        for summary, days_ago in zip(steps, days, strict=True):
            customer_services.contact_log_create(
                by=author,
                customer=customer,
                channel=rng.choice(channels),
                summary=summary,
                occurred_at=now - timedelta(days=days_ago),
                sentiment=rng.choice(ContactLog.Sentiment.values),
            )
        if customer.owner and rng.random() < 0.5:
            # Some overdue, some today, some later: "my day" has something to show.
            due = now + timedelta(hours=rng.choice([-30, -3, 2, 5, 48, 120]))
            customer_services.followup_create(
                by=customer.owner,
                customer=customer,
                assignee=customer.owner,
                due_at=due,
                note=story.followup,
            )


# --- Scale data --------------------------------------------------------------------------

CONTACTS_PER_CUSTOMER = 5  # 5,000,000 contact-log rows at full

REGIONS = [  # province, city, district, short city name for organisation names
    ("北京市", "北京市", "朝阳区", "北京"),
    ("北京市", "北京市", "海淀区", "北京"),
    ("上海市", "上海市", "浦东新区", "上海"),
    ("上海市", "上海市", "徐汇区", "上海"),
    ("广东省", "广州市", "天河区", "广州"),
    ("广东省", "深圳市", "南山区", "深圳"),
    ("广东省", "佛山市", "顺德区", "佛山"),
    ("浙江省", "杭州市", "西湖区", "杭州"),
    ("浙江省", "宁波市", "鄞州区", "宁波"),
    ("江苏省", "南京市", "鼓楼区", "南京"),
    ("江苏省", "苏州市", "工业园区", "苏州"),
    ("四川省", "成都市", "高新区", "成都"),
    ("湖北省", "武汉市", "洪山区", "武汉"),
    ("重庆市", "重庆市", "渝北区", "重庆"),
    ("陕西省", "西安市", "雁塔区", "西安"),
    ("天津市", "天津市", "和平区", "天津"),
    ("湖南省", "长沙市", "岳麓区", "长沙"),
    ("河南省", "郑州市", "金水区", "郑州"),
    ("山东省", "青岛市", "市南区", "青岛"),
    ("福建省", "厦门市", "思明区", "厦门"),
    ("安徽省", "合肥市", "蜀山区", "合肥"),
    ("辽宁省", "沈阳市", "和平区", "沈阳"),
]
BRAND = "华鑫盛源达恒泰宏信瑞丰嘉德远通隆安宇新美佳博创联合润康中天海金富"
TRADES = ["科技", "贸易", "建材", "置业", "电器", "实业", "物流", "家居", "装饰"]
TRADES += ["商贸", "机电", "地产", "投资", "供应链", "电子"]
FORMS = ["有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司", "经销部"]
MOBILES = "130 131 132 133 135 136 137 138 139 150 151 152 155 156 157 158"
MOBILES += " 159 166 176 177 180 181 182 185 186 187 188 189 198 199"
AREA_CODES = ["010", "021", "020", "0755", "0571", "025", "028", "027", "023"]
SUMMARIES = [
    "电话回访，客户对户型比较满意，想再比较一下价格",
    "客户询问交付时间和物业费标准",
    "介绍了新推出的优惠政策，客户表示考虑",
    "客户反映上次维修不及时，已安抚并记录",
    "上门拜访，了解家庭需求，准备推荐三居",
    "微信发送了项目资料和样板间视频",
    "客户带家人到访，看了两套房源",
    "确认了签约时间，需要准备首付款证明",
    "客户暂时没有需求，半年后再联系",
    "经销商反馈本月出货量下降，需要支持",
    "会议讨论年度采购框架协议",
    "客户对报价有异议，申请领导特批折扣",
    "短信提醒客户参加周末开放日",
    "邮件发送了合同草稿，等待法务意见",
    "现场验房，客户提出两处整改意见",
    "客户介绍了朋友，登记为新线索",
]
OUTCOMES = ["", "", "有意向", "需再跟进", "已报价", "已成交", "暂无需求", "已解决"]
NEXT_STEPS = ["再次回访", "发送报价单", "邀请到访", "安排签约", "寄送资料"]
NOTES = [
    "老客户介绍",
    "关注学区房，预算有限",
    "需要发票，月底付款",
    "周末方便联系",
    "对交付时间比较在意",
    "已看过样板间",
    "希望上门讲解",
    "年底有采购计划",
]
BRAND_LIST = list(BRAND)
REGION_SHORT = [r[3] for r in REGIONS]
SUR_PY, SUR_IN = pinyins(SURNAME_LIST)
GIVEN_PY, GIVEN_IN = pinyins(GIVEN_LIST)
BRAND_PY, BRAND_IN = pinyins(BRAND_LIST)
CITY_PY, CITY_IN = pinyins(REGION_SHORT)
TRADE_PY, TRADE_IN = pinyins(TRADES)
FORM_PY, FORM_IN = pinyins(FORMS)


def name_expr(person: tuple[Sequence[str], ...], org: tuple[Sequence[str], ...]) -> str:
    """A name (or its pinyin/initials) from the same part indexes, so they always agree."""
    surname, given, brand, city, trade, form = (*person, *org)
    return (
        "CASE WHEN is_person THEN "
        f"{part(surname, 'sur')} || {part(given, 'g1')} || "
        f"CASE WHEN g2 >= 0 THEN {part(given, 'g2')} ELSE '' END "
        f"ELSE {part(city, 'region')} || {part(brand, 'b1')} || {part(brand, 'b2')} "
        f"|| {part(trade, 'trade')} || {part(form, 'form')} END"
    )


CUSTOMERS = Dataset(
    name="customers",
    model="customers.Customer",
    rows=SIZES,
    # Sellers 1..50 own the customers; 0 (3 %) leaves one in the public pool.
    joins="LEFT JOIN bench_seller AS sp ON sp.n = b.seller",
    base={
        "is_person": f"{draw(1, 100)} < 60",
        "seller": f"CASE WHEN {draw(2, 100)} < 3 THEN 0 ELSE 1 + {draw(3, SALESPEOPLE)} END",
        "sur": draw(4, len(SURNAME_LIST)),
        "g1": draw(5, len(GIVEN_LIST)),
        "g2": f"CASE WHEN {draw(6, 10)} < 7 THEN {draw(7, len(GIVEN_LIST))} ELSE -1 END",
        "region": draw(8, len(REGIONS)),
        "b1": draw(9, len(BRAND_LIST)),
        "b2": draw(10, len(BRAND_LIST)),
        "trade": draw(11, len(TRADES)),
        "form": draw(12, len(FORMS)),
        "org_kind": draw(13, 40),
        "stage_n": draw(14, 100),
        "tier_n": draw(15, 100),
        "phone_n": draw(16, 100),
        "age_s": draw(17, 3 * 365 * 86400),  # created up to three years ago
        "touch_n": draw(18, 1000),
        "extra_n": draw(19, 100),
        "last_n": draw(23, 1000),
    },
    columns={
        "name": name_expr(
            (SURNAME_LIST, GIVEN_LIST), (BRAND_LIST, REGION_SHORT, TRADES, FORMS)
        ),
        "kind": (
            f"CASE WHEN is_person THEN {lit(Customer.Kind.OWNER)} "
            f"WHEN org_kind < 15 THEN {lit(Customer.Kind.ENTERPRISE)} "
            f"WHEN org_kind < 20 THEN {lit(Customer.Kind.DISTRIBUTOR)} "
            f"WHEN org_kind < 28 THEN {lit(Customer.Kind.DEALER)} "
            f"WHEN org_kind < 32 THEN {lit(Customer.Kind.WHOLESALER)} "
            f"WHEN org_kind < 37 THEN {lit(Customer.Kind.AGENT)} "
            f"ELSE {lit(Customer.Kind.PARTNER)} END"
        ),
        "stage": (
            f"CASE WHEN stage_n < 30 THEN {lit(Customer.Stage.LEAD)} "
            f"WHEN stage_n < 55 THEN {lit(Customer.Stage.PROSPECT)} "
            f"WHEN stage_n < 85 THEN {lit(Customer.Stage.CUSTOMER)} "
            f"WHEN stage_n < 95 THEN {lit(Customer.Stage.DORMANT)} "
            f"ELSE {lit(Customer.Stage.LOST)} END"
        ),
        "tier": (
            "CASE WHEN tier_n < 10 THEN 'A' WHEN tier_n < 35 THEN 'B' "
            "WHEN tier_n < 75 THEN 'C' ELSE 'D' END"
        ),
        "is_key_account": "(tier_n < 10 AND extra_n < 60) OR extra_n = 99",
        # Unique by construction: the last eight digits are a bijection of i (< 10^8).
        "phone": (
            f"CASE WHEN phone_n < 88 THEN {part(MOBILES.split(), draw(20, 30))} "
            f"ELSE {part(AREA_CODES, draw(21, len(AREA_CODES)))} END "
            "|| lpad(mod(i * 7919 + 12345, 100000000)::text, 8, '0')"
        ),
        "email": "CASE WHEN extra_n < 35 THEN 'kh' || i || '@example.cn' ELSE '' END",
        "owner_id": "sp.user_id",
        "team_id": "sp.team_id",
        "notes": f"CASE WHEN extra_n < 20 THEN {part(NOTES, draw(22, len(NOTES)))} ELSE '' END",
        "version": "1",
        "created_at": "now() - make_interval(secs => age_s)",
        "updated_at": "now() - make_interval(secs => age_s * touch_n / 1000.0)",
        "source": pick(Customer.Source.values, 24),
        # Every customer has CONTACTS_PER_CUSTOMER contact logs, the last at this time
        # (the contact_logs dataset reads it back, so the two always agree).
        "last_contacted_at": "now() - make_interval(secs => age_s * last_n / 1000.0)",
        "contact_count": str(CONTACTS_PER_CUSTOMER),
        "is_organization": "NOT is_person",
        "province": part([r[0] for r in REGIONS], "region"),
        "city": part([r[1] for r in REGIONS], "region"),
        "district": part([r[2] for r in REGIONS], "region"),
        "name_pinyin": name_expr(
            (SUR_PY, GIVEN_PY), (BRAND_PY, CITY_PY, TRADE_PY, FORM_PY)
        ),
        "name_initials": name_expr(
            (SUR_IN, GIVEN_IN), (BRAND_IN, CITY_IN, TRADE_IN, FORM_IN)
        ),
    },
)

# One phone row per customer, its primary phone: the table that holds phone
# uniqueness and serves phone search (trigram index).
CUSTOMER_PHONES = Dataset(
    name="customer_phones",
    model="customers.CustomerPhone",
    rows_per_customer=1,
    source="customers_customer AS c, LATERAL (SELECT c.id AS i) AS g "
    "WHERE c.id BETWEEN {start} AND {stop} AND c.phone <> ''",
    base={"customer": "c.id", "number": "c.phone"},
    columns={
        "customer_id": "customer",
        "number": "number",
        "kind": "CASE WHEN number LIKE '1%%' THEN 'mobile' ELSE 'landline' END",
        "is_primary": "true",
    },
)

# A one-to-one profile for one customer in five.
CUSTOMER_PROFILES = Dataset(
    name="customer_profiles",
    model="customers.CustomerProfile",
    rows_per_customer=1,
    source="customers_customer AS c, LATERAL (SELECT c.id AS i) AS g "
    "WHERE c.id BETWEEN {start} AND {stop} AND mod(c.id, 5) = 0",
    columns={
        "customer_id": "i",
        "preferred_channel": pick(CustomerProfile.Channel.values, 31),
        "preferred_time": pick(CustomerProfile.TimeOfDay.values, 32),
        "interests": pick(["", "", "高尔夫", "茶艺", "亲子活动", "摄影"], 33),
        "special_needs": pick(["", "", "", "需要无障碍通道", "只说粤语"], 34),
    },
)

# CONTACTS_PER_CUSTOMER logs per customer between its creation and its
# last_contacted_at (the last log is exactly then), over three years in all.
CONTACT_LOGS = Dataset(
    name="contact_logs",
    model="customers.ContactLog",
    rows_per_customer=CONTACTS_PER_CUSTOMER,
    source="generate_series({start}::bigint, {stop}) AS g(i) "
    f"JOIN customers_customer AS c ON c.id = 1 + (g.i - 1) / {CONTACTS_PER_CUSTOMER} "
    f"AND c.id BETWEEN 1 + ({{start}} - 1) / {CONTACTS_PER_CUSTOMER} "
    f"AND 1 + ({{stop}} - 1) / {CONTACTS_PER_CUSTOMER}",
    # Pool customers (no owner) were last contacted by some salesperson.
    joins="LEFT JOIN bench_seller AS sp ON sp.n = 1 + mod(b.i, 50)",
    base={
        "customer": "c.id",
        "owner": "c.owner_id",
        "k": f"mod(i - 1, {CONTACTS_PER_CUSTOMER})",
        "first_at": "c.created_at",
        "last_at": "c.last_contacted_at",
        "u": f"{draw(41, 1000)} / 1000.0",
        "channel_n": draw(42, 100),
        "extra_n": draw(43, 100),
    },
    columns={
        "customer_id": "customer",
        "author_id": "coalesce(owner, sp.user_id)",
        "channel": (
            f"CASE WHEN channel_n < 45 THEN {lit(ContactLog.Channel.PHONE)} "
            f"WHEN channel_n < 70 THEN {lit(ContactLog.Channel.WECHAT)} "
            f"WHEN channel_n < 80 THEN {lit(ContactLog.Channel.VISIT)} "
            f"WHEN channel_n < 87 THEN {lit(ContactLog.Channel.SMS)} "
            f"WHEN channel_n < 92 THEN {lit(ContactLog.Channel.EMAIL)} "
            f"WHEN channel_n < 96 THEN {lit(ContactLog.Channel.MEETING)} "
            f"ELSE {lit(ContactLog.Channel.ON_SITE)} END"
        ),
        "direction": (
            f"CASE WHEN extra_n < 75 THEN {lit(ContactLog.Direction.OUTBOUND)} "
            f"ELSE {lit(ContactLog.Direction.INBOUND)} END"
        ),
        "occurred_at": (
            f"CASE WHEN k = {CONTACTS_PER_CUSTOMER - 1} THEN last_at ELSE "
            f"first_at + (last_at - first_at) * ((k + u) / {CONTACTS_PER_CUSTOMER - 1}) END"
        ),
        "summary": pick(SUMMARIES, 44),
        "outcome": pick(OUTCOMES, 45),
        "sentiment": (
            f"CASE WHEN extra_n < 25 THEN {lit(ContactLog.Sentiment.POSITIVE)} "
            f"WHEN extra_n < 92 THEN {lit(ContactLog.Sentiment.NEUTRAL)} "
            f"ELSE {lit(ContactLog.Sentiment.NEGATIVE)} END"
        ),
        "next_step": f"CASE WHEN extra_n < 10 THEN {pick(NEXT_STEPS, 46)} ELSE '' END",
    },
)

FOLLOWUPS = Dataset(
    name="followups",
    model=None,
    todo="TODO(customers follow-ups): open follow-ups for the sales home page "
    "(my day); they go through the scheduled-action pipeline, so generate both.",
)


seeding.register(
    __name__,
    demo=seed_demo,
    scale=seeding.Scale(
        datasets=[
            CUSTOMERS,
            CUSTOMER_PHONES,
            CUSTOMER_PROFILES,
            CONTACT_LOGS,
            FOLLOWUPS,
        ]
    ),
)
