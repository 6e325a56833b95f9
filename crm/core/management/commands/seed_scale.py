"""Scale data for `make bench`, written set-based into the separate bench database.

    python manage.py seed_scale --size small   # 10,000 customers, for quick runs and CI
    python manage.py seed_scale --size full    # 1,000,000 customers

Whatever settings it is started with, it runs under crm.settings.bench, so the rows land
in `kehu_bench` (created on the DATABASE_URL server) and never in the development data.
The data is reused when the bench database already holds it at that size with the same
generator and schema; anything else rebuilds it.

Each dataset is a row of DATASETS: a model and, per column, one SQL expression over the
row number `i` and the per-row draws of `base`. The model's own fields decide which
columns are written: a new column that is NULL-able, defaulted or blank-able is filled
with its default, a NOT NULL one without a default stops the build and names itself, and
a GeneratedField is left to PostgreSQL. So a new column is one line in `columns`.
Draws are `hashint8extended(i, seed)`, which makes the data the same on every build.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from pypinyin import lazy_pinyin

from crm.accounts.models import Department, Team, User
from crm.accounts.roles import Role
from customers.models import ContactLog, Customer, CustomerProfile

SIZES = {"small": 10_000, "full": 1_000_000}
SALESPEOPLE = 50
TEAM_SIZE = 5  # 10 teams of 5
PASSWORD = os.environ.get("KEHU_BENCH_PASSWORD", "kehu-bench")
STATE_TABLE = "bench_dataset"
GENERATOR_VERSION = "1"
CHUNK_ROWS = 100_000
CONTACTS_PER_CUSTOMER = 5  # 5,000,000 contact-log rows at full

DEPARTMENTS = {"east": "华东销售部", "south": "华南销售部", "service": "客户服务部"}
SALES_TEAMS = [
    *(("east", f"华东{n}组") for n in "一二三四五"),
    *(("south", f"华南{n}组") for n in "一二三四五"),
]
# The logins the runner uses, one per role; "sales" is the first of the 50 salespeople.
LOGINS = {
    Role.SALES: "sales",
    Role.MANAGER: "manager",
    Role.SERVICE: "service",
    Role.ADMIN: "admin",
}

# --- Name parts (repeats weight the common ones, roughly as in the population) -------
SURNAMES = (
    "王王王王王李李李李李张张张张张刘刘刘刘陈陈陈陈杨杨杨黄黄赵赵吴吴周周徐徐孙孙"
    "马马朱朱胡胡郭郭何何高高林林罗郑梁谢宋唐许韩冯邓彭曹肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛阎段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华建国文辉鑫宇浩然子涵欣怡梓轩"
    "佳琪思远晨阳雨婷俊杰志强海燕红梅秀兰玉兰春花秋菊立新永庆德胜家豪嘉怡诗雅博"
    "文凯一鸣天翔雪梅丹丹晓东晓燕建华建平建军国强国庆金凤凤英淑珍秀珍美玲丽娟慧"
    "敏宏伟晓明振华少华卫东红霞云飞"
)
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
MOBILE_PREFIXES = "130 131 132 133 135 136 137 138 139 150 151 152 155 156 157 158"
MOBILE_PREFIXES += " 159 166 176 177 180 181 182 185 186 187 188 189 198 199"
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


def lit(value: str) -> str:
    """A SQL string literal of one of the constants above (never of outside input)."""
    return "'" + value.replace("'", "''") + "'"


def array(values: Sequence[str]) -> str:
    return "(ARRAY[" + ", ".join(lit(v) for v in values) + "])"


def pinyins(values: Sequence[str]) -> tuple[list[str], list[str]]:
    """Full pinyin and initials of each value, as customers' search columns hold them."""
    full, initials = [], []
    for value in values:
        syllables = [s.lower() for s in lazy_pinyin(value) if s.isascii()]
        full.append("".join(syllables))
        initials.append("".join(s[0] for s in syllables))
    return full, initials


def draw(seed: int, n: int) -> str:
    """A repeatable pseudo-random integer in [0, n) for row `i`, independent per seed."""
    return f"mod(hashint8extended(i, {seed}) & 9223372036854775807, {n})"


def part(values: Sequence[str], index: str) -> str:
    return f"{array(values)}[1 + {index}]"


def pick(values: Sequence[str], seed: int) -> str:
    """One of `values`, uniformly; repeat a value to weight it."""
    return part(values, draw(seed, len(values)))


SURNAME_LIST = list(SURNAMES)
GIVEN_LIST = list(GIVEN)
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


@dataclass(frozen=True)
class Dataset:
    """One generated table. `model` None means its feature is not built yet."""

    name: str
    model: str | None
    rows_per_customer: float = 0  # 0: `rows` decides
    rows: dict[str, int] = field(default_factory=dict)
    # FROM clause yielding one row per generated row with its number as `i`; the
    # {start}/{stop} placeholders bound one chunk.
    source: str = "generate_series({start}::bigint, {stop}) AS g(i)"
    joins: str = ""
    base: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    todo: str = ""

    def size(self, size: str) -> int:
        if self.rows:
            return self.rows[size]
        return int(SIZES[size] * self.rows_per_customer)


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
            f"CASE WHEN phone_n < 88 THEN {part(MOBILE_PREFIXES.split(), draw(20, 30))} "
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

DATASETS: list[Dataset] = [
    CUSTOMERS,
    # One phone row per customer, its primary phone: the table that holds phone
    # uniqueness and serves phone search (trigram index).
    Dataset(
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
    ),
    # A one-to-one profile for one customer in five.
    Dataset(
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
    ),
    # CONTACTS_PER_CUSTOMER logs per customer between its creation and its
    # last_contacted_at (the last log is exactly then), over three years in all.
    Dataset(
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
    ),
    Dataset(
        name="followups",
        model=None,
        todo="TODO(customers follow-ups): open follow-ups for the sales home page "
        "(my day); they go through the scheduled-action pipeline, so generate both.",
    ),
    Dataset(
        name="tickets",
        model=None,
        rows_per_customer=1,
        todo="TODO(service desk, models landed in 80d8f18): 1,000,000 tickets, 10,000 "
        "of them due for the escalation sweep, one with 200 messages.",
    ),
    Dataset(
        name="ticket_messages",
        model=None,
        rows_per_customer=5,
        todo="TODO(service desk): the tickets' conversations.",
    ),
    Dataset(
        name="handover_units",
        model=None,
        rows={"small": 500, "full": 5_000},
        todo="TODO(handover): a 5,000-unit handover event with slots and stations.",
    ),
]


class Command(BaseCommand):
    help = "Fill the bench database (kehu_bench) with scale data, set-based."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", choices=sorted(SIZES), default="full")
        parser.add_argument(
            "--rebuild", action="store_true", help="Rebuild even when reusable."
        )
        parser.add_argument(
            "--recreate",
            action="store_true",
            help="Drop and recreate the whole bench database first.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.SETTINGS_MODULE != "crm.settings.bench":
            self._rerun_under_bench_settings(options)
            return
        started = time.monotonic()
        name = settings.DATABASES["default"]["NAME"]
        if options["recreate"]:
            drop_database(name)
        if create_database(name):
            self.stdout.write(f"created database {name}")
        self._migrate()
        if not schema_matches():
            # The bench database is disposable: a rewritten migration (one already
            # applied here in an older form) is cured by starting again.
            self.stdout.write("bench schema is out of date with the models; recreating")
            connection.close()
            drop_database(name)
            create_database(name)
            self._migrate()
        sellers = ensure_users()
        size = options["size"]
        plans = [build_sql(dataset) for dataset in DATASETS]
        signature = make_signature(size, sellers, plans)
        ensure_state_table()
        state = read_state()
        if not options["rebuild"] and all(
            state.get(p.dataset.name, {}).get("signature") == signature for p in plans
        ):
            self.stdout.write(
                self.style.SUCCESS(f"bench data at size {size} reused ({name})")
            )
            return
        self._build(plans, sellers, size, signature)
        self.stdout.write(
            self.style.SUCCESS(
                f"bench data at size {size} built in {time.monotonic() - started:.0f} s"
            )
        )

    def _rerun_under_bench_settings(self, options: dict[str, Any]) -> None:
        argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "seed_scale"]
        argv += ["--size", options["size"]]
        argv += [f"--{flag}" for flag in ("rebuild", "recreate") if options[flag]]
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings.bench"}
        result = subprocess.run(argv, env=env, check=False)  # noqa: S603 - own command
        if result.returncode:
            raise CommandError("seed_scale failed under crm.settings.bench")

    def _migrate(self) -> None:
        t0 = time.monotonic()
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(f"migrated in {time.monotonic() - t0:.1f} s")

    def _build(
        self,
        plans: list[Plan],
        sellers: list[tuple[int, int, int]],
        size: str,
        sig: str,
    ) -> None:
        tables = [p.table for p in plans if p.table]
        with transaction.atomic(), connection.cursor() as cursor:
            # Audit triggers (pghistory) and FK checks are off for this transaction
            # only: a million insert events are not what is being measured.
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            cursor.execute(
                "CREATE TEMP TABLE bench_seller (n int PRIMARY KEY, user_id bigint, "
                "team_id bigint) ON COMMIT DROP"
            )
            cursor.executemany("INSERT INTO bench_seller VALUES (%s, %s, %s)", sellers)
            if tables:
                quoted = ", ".join(connection.ops.quote_name(t) for t in tables)
                cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
            for plan in plans:
                self._build_one(cursor, plan, size, sig)
        with connection.cursor() as cursor:
            for table in tables:
                t0 = time.monotonic()
                cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")
                self.stdout.write(
                    f"  vacuum analyze {table}: {time.monotonic() - t0:.1f} s"
                )

    def _build_one(self, cursor: Any, plan: Plan, size: str, sig: str) -> None:
        dataset = plan.dataset
        if plan.missing:
            self.stdout.write(f"  {dataset.name}: not built ({plan.missing})")
            write_state(cursor, dataset.name, size, 0, sig, 0.0, plan.missing)
            return
        t0 = time.monotonic()
        indexes = drop_secondary_indexes(cursor, plan.table)
        total = dataset.size(size)
        for start in range(1, total + 1, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS - 1, total)
            cursor.execute(plan.sql.format(start=start, stop=stop), plan.params)
            self.stdout.write(
                f"  {dataset.name}: {stop:,}/{total:,} rows "
                f"({time.monotonic() - t0:.0f} s)"
            )
        t1 = time.monotonic()
        for statement in indexes:
            cursor.execute(statement)
        self.stdout.write(
            f"  {dataset.name}: {len(indexes)} indexes rebuilt in "
            f"{time.monotonic() - t1:.1f} s"
        )
        table = connection.ops.quote_name(plan.table)
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - a model's table
        rows = cursor.fetchone()[0]
        write_state(cursor, dataset.name, size, rows, sig, time.monotonic() - t0, "")


@dataclass
class Plan:
    dataset: Dataset
    table: str = ""
    sql: str = ""
    params: list[Any] = field(default_factory=list)
    missing: str = ""


def build_sql(dataset: Dataset) -> Plan:
    """The INSERT ... SELECT for one dataset, from the model's current fields."""
    if dataset.model is None:
        return Plan(dataset, missing=dataset.todo or "feature not built yet")
    try:
        model = apps.get_model(dataset.model)
    except LookupError:
        return Plan(dataset, missing=f"model {dataset.model} does not exist yet")
    names, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key and isinstance(f, models.AutoField):
            continue
        if getattr(f, "generated", False):
            continue  # PostgreSQL computes it
        if f.column in dataset.columns:
            names.append(f.column)
            exprs.append(dataset.columns[f.column])
        elif f.null:
            continue
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            names.append(f.column)
            exprs.append("now()")
        elif f.has_default() or (f.blank and f.empty_strings_allowed):
            names.append(f.column)
            exprs.append("%s")
            params.append(f.get_db_prep_save(f.get_default(), connection))
        else:
            raise CommandError(
                f"seed_scale cannot fill {model._meta.label}.{f.name}: the column "
                f"{f.column!r} is NOT NULL without a default. Add an expression for it "
                f"to the {dataset.name!r} dataset's columns in "
                "crm/core/management/commands/seed_scale.py."
            )
    base = ", ".join(f"{expr} AS {alias}" for alias, expr in dataset.base.items())
    quote = connection.ops.quote_name
    sql = (
        # Built from the model's own columns and this module's constants only.
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(n) for n in names)}) "
        f"SELECT {', '.join(exprs)} "
        f"FROM (SELECT i{', ' + base if base else ''} FROM {dataset.source}) AS b "
        f"{dataset.joins}"
    )
    return Plan(dataset, table=model._meta.db_table, sql=sql, params=params)


def make_signature(
    size: str, sellers: list[tuple[int, int, int]], plans: list[Plan]
) -> str:
    """Changes when anything that shapes the data does: size, users, schema, generator."""
    text = json.dumps(
        [
            GENERATOR_VERSION,
            size,
            sellers,
            [
                (p.dataset.name, p.sql, [str(x) for x in p.params], p.missing)
                for p in plans
            ],
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_users() -> list[tuple[int, int, int]]:
    """Departments, 10 sales teams of 5, the 50 salespeople and one login per role.

    Idempotent (matched by name). Returns (n, user_id, team_id) for the 50 sellers.
    """
    hashed = make_password(PASSWORD)
    departments = {
        key: Department.objects.get_or_create(name=name)[0]
        for key, name in DEPARTMENTS.items()
    }
    teams = [
        Team.objects.get_or_create(
            name=name, defaults={"department": departments[key]}
        )[0]
        for key, name in SALES_TEAMS
    ]
    service_team = Team.objects.get_or_create(
        name="客服组", defaults={"department": departments["service"]}
    )[0]
    groups = {role: Group.objects.get(name=role.value) for role in Role}
    names = [
        SURNAME_LIST[n * 7 % len(SURNAME_LIST)] + GIVEN[n * 3 % len(GIVEN)]
        for n in range(60)
    ]

    def user(username: str, role: Role, team: Team | None, display: str) -> User:
        account, _ = User.objects.update_or_create(
            username=username,
            defaults={
                "display_name": display,
                "team": team,
                "password": hashed,
                "is_staff": role == Role.ADMIN,
                "is_superuser": role == Role.ADMIN,
                "email": f"{username}@bench.example.cn",
            },
        )
        account.groups.set([groups[role]])
        return account

    sellers = []
    for n in range(1, SALESPEOPLE + 1):
        team = teams[(n - 1) // TEAM_SIZE]
        username = LOGINS[Role.SALES] if n == 1 else f"sales{n:02d}"
        account = user(username, Role.SALES, team, names[n] + "（销售）")
        sellers.append((n, account.pk, team.pk))
    manager = user(LOGINS[Role.MANAGER], Role.MANAGER, teams[0], "王经理")
    user(LOGINS[Role.SERVICE], Role.SERVICE, service_team, "陈客服")
    user(LOGINS[Role.ADMIN], Role.ADMIN, None, "系统管理员")
    Team.objects.filter(pk__in=[t.pk for t in teams[:5]]).update(lead=manager)
    return sellers


def schema_matches() -> bool:
    """True when every model's table has exactly the columns the models expect."""
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        for model in apps.get_models():
            meta = model._meta
            if not meta.managed or meta.proxy or meta.db_table not in tables:
                if meta.managed and not meta.proxy:
                    return False
                continue
            actual = {
                c.name
                for c in connection.introspection.get_table_description(
                    cursor, meta.db_table
                )
            }
            if actual != {f.column for f in meta.concrete_fields}:
                return False
    return True


def ensure_state_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (name text PRIMARY KEY, "
            "size text NOT NULL, rows bigint NOT NULL, signature text NOT NULL, "
            "seconds double precision NOT NULL, missing text NOT NULL DEFAULT '', "
            "built_at timestamptz NOT NULL DEFAULT now())"
        )


def read_state() -> dict[str, dict[str, Any]]:
    """What the bench database holds, per dataset (also read by bench/run.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, size, rows, signature, seconds, missing, built_at "  # noqa: S608
            f"FROM {STATE_TABLE}"
        )
        columns = [c.name for c in cursor.description]
        return {
            row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()
        }


def write_state(
    cursor: Any, name: str, size: str, rows: int, sig: str, seconds: float, missing: str
) -> None:
    cursor.execute(
        f"INSERT INTO {STATE_TABLE} (name, size, rows, signature, seconds, missing) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
        "size = EXCLUDED.size, rows = EXCLUDED.rows, signature = EXCLUDED.signature, "
        "seconds = EXCLUDED.seconds, missing = EXCLUDED.missing, built_at = now()",
        [name, size, rows, sig, seconds, missing],
    )


def drop_secondary_indexes(cursor: Any, table: str) -> list[str]:
    """Drop the table's indexes that back no constraint; return their CREATE statements.

    Loading first and indexing once is several times faster than maintaining six
    indexes row by row; it all happens in the build's transaction, so a failure
    leaves the indexes as they were.
    """
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        [table],
    )
    found = cursor.fetchall()
    for name, _ in found:
        cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    return [definition for _, definition in found]


def _server_params() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    return {k: v for k, v in params.items() if v is not None}


def create_database(name: str) -> bool:
    """Create the bench database on the same server when missing; True if created."""
    with psycopg.connect(**_server_params()) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


def drop_database(name: str) -> None:
    if "bench" not in name:
        raise CommandError(f"refusing to drop {name!r}: not a bench database")
    with psycopg.connect(**_server_params()) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
