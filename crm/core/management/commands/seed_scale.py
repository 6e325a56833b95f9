"""Scale data for `make bench`, written set-based into the separate bench database.

    python manage.py seed_scale --size small   # 10,000 customers and tickets, for CI
    python manage.py seed_scale --size full    # 1,000,000 customers and tickets

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
from django.utils import timezone
from pypinyin import lazy_pinyin

from crm.accounts.models import Department, Team, User
from crm.accounts.roles import Role
from customers.models import ContactLog, Customer, CustomerProfile

SIZES = {"small": 10_000, "full": 1_000_000}
SALESPEOPLE = 50
TEAM_SIZE = 5  # 10 teams of 5
PASSWORD = os.environ.get("KEHU_BENCH_PASSWORD", "kehu-bench")
STATE_TABLE = "bench_dataset"
GENERATOR_VERSION = "2"
CHUNK_ROWS = 100_000
# Emptied with the datasets: they point at the old rows' ids.
ALSO_EMPTIED = [
    "scheduler_scheduledaction",
    "notifications_notification",
    "service_ticketevent",
]
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
    # What {start}/{stop} count when it is not the rows themselves (e.g. "tickets").
    unit: str = "rows"
    # Statements run once after the load (e.g. moving a sequence past the loaded rows).
    after: tuple[str, ...] = ()
    chunk: int = CHUNK_ROWS  # {start}..{stop} per INSERT
    # Planner settings for this dataset's INSERTs only (restored afterwards).
    settings: dict[str, str] = field(default_factory=dict)

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

# --- The service desk ------------------------------------------------------------------
# Five desk teams of ten agents; agent 1 of each team leads it, and `service` (the login)
# is agent 1 of 客服一组. Every ticket's category belongs to one team (the team queue).
SERVICE_TEAMS = [f"客服{n}组" for n in "一二三四五"]
AGENTS_PER_TEAM = 10
SERVICE_MANAGER = (
    "service_manager"  # a manager of the desk department: level-2 escalation
)
OPEN_PER_MILLE = 20  # 2 % of the tickets are open, the rest resolved or closed
# The ticket of the service.ticket scenario: open, in progress, in 客服一组, assigned to
# `service`, with exactly BIG_TICKET_MESSAGES messages; its id is BIG_TICKET at any size.
BIG_TICKET = 4242
BIG_TICKET_MESSAGES = 200
MESSAGES_PER_TICKET = 5  # 1 to 5 per ticket, 3 on average
CALENDAR_DAYS_BEFORE = 3 * 365 + 40  # business-minute map: the customers' three years
CALENDAR_DAYS_AFTER = 180  # ... and far enough ahead for every open ticket's deadline
MASK = "9223372036854775807"
# Per type: its top-level category and four leaves; leaf j of type t goes to team
# (4t + j) mod 5, so each team serves four leaves across the types.
TICKET_CATEGORIES = {
    "repair": ("报修", ["水电", "门窗", "电梯", "空调"]),
    "complaint": ("投诉", ["物业服务", "工程质量", "销售承诺", "收费标准"]),
    "inquiry": ("咨询", ["交房入伙", "产权办证", "物业费", "保修政策"]),
    "suggestion": ("建议", ["社区环境", "便民设施", "服务流程", "安全管理"]),
    "praise": ("表扬", ["维修师傅", "客服人员", "保安保洁", "销售顾问"]),
}
# Resolution target multiplier by type (repairs take longer, inquiries less).
TYPE_RESOLUTION = {
    "repair": 1.5,
    "complaint": 1.0,
    "inquiry": 0.5,
    "suggestion": 2.0,
    "praise": 1.0,
}
SUBJECTS = {
    "repair": [
        "卫生间漏水",
        "电梯故障",
        "窗户关不严",
        "空调不制冷",
        "水管爆裂",
        "入户门锁损坏",
        "外墙渗水",
        "家中跳闸停电",
    ],
    "complaint": [
        "保安态度差",
        "墙面开裂",
        "赠送车位未兑现",
        "物业费收费不透明",
        "夜间施工噪音",
        "维修不及时",
        "小区卫生差",
        "交房延期",
    ],
    "inquiry": [
        "入伙需要带什么资料",
        "房产证办理进度",
        "物业费标准",
        "保修期多久",
        "车位租售政策",
        "装修审批流程",
    ],
    "suggestion": ["增加快递柜", "增设充电桩", "延长泳池开放时间", "增加儿童游乐设施"],
    "praise": ["表扬维修师傅", "感谢客服耐心解答", "保安帮忙搬运", "保洁阿姨认真负责"],
}
DESCRIPTIONS = [
    "客户来电反映，希望尽快安排处理。",
    "业主在微信群里反映，已电话核实情况。",
    "客户到访前台登记，情绪比较激动。",
    "客户通过网页表单提交，留了手机号。",
    "第二次反映同一问题，上次处理后又出现。",
    "客户要求上门查看，白天家里有人。",
    "邻居也有类似情况，可能是公共部位问题。",
    "客户希望今天之内给答复。",
]
RESOLUTIONS = [
    "已安排师傅上门维修，客户确认问题解决。",
    "已向客户解释收费标准并出示明细，客户表示理解。",
    "已协调工程部整改完毕，回访客户满意。",
    "已电话答复客户咨询，并短信发送相关资料。",
    "建议已转相关部门评估，已告知客户处理进度。",
    "已对相关人员进行批评教育，并向客户致歉。",
    "更换配件后恢复正常，保修期内不收费。",
    "已记录表扬并通报表彰相关员工。",
]
CUSTOMER_LINES = [
    "请问什么时候能来处理？",
    "今天下午家里有人，可以上门。",
    "问题还是没有解决，麻烦再看一下。",
    "好的，谢谢。",
    "照片已经发过去了，请查收。",
    "能不能换个时间？明天上午比较方便。",
]
REPLY_LINES = [
    "您好，您的问题已受理，我们会尽快安排处理。",
    "师傅预计明天上午上门，请您家中留人。",
    "已联系工程部，有进展会第一时间告知您。",
    "非常抱歉给您带来不便，我们正在加紧处理。",
    "请问问题是否已经解决？如有需要请随时联系我们。",
]
NOTE_LINES = [
    "已电话联系客户，约好上门时间。",
    "需工程部配合，已发起后台工单。",
    "客户情绪较大，注意沟通方式。",
    "配件需要订货，预计三天到货。",
    "组长已知悉，今天内跟进。",
]


def uniform(seed: int) -> str:
    """A repeatable draw in [0, 1) for row `i`."""
    return f"({draw(seed, 1_000_000)}::float8 / 1000000)"


def forced(value: int, expr: str) -> str:
    """`expr`, except for the BIG_TICKET row, which takes `value`."""
    return f"CASE WHEN i = {BIG_TICKET} THEN {value} ELSE {expr} END"


def weighted(index: str, choices: Sequence[tuple[str, int]]) -> str:
    """One of `choices` (value, percent) by `index` in [0, 100)."""
    whens, edge = [], 0
    for value, share in choices[:-1]:
        edge += share
        whens.append(f"WHEN {index} < {edge} THEN {lit(value)}")
    return f"CASE {' '.join(whens)} ELSE {lit(choices[-1][0])} END"


def by_type(column: str, lists: dict[str, list[str]], seed: int) -> str:
    whens = " ".join(f"WHEN {lit(t)} THEN {pick(v, seed)}" for t, v in lists.items())
    return f"CASE {column} {whens} END"


def moment(alias: str) -> str:
    """The business minute `alias` (a bench_minute row) plus the ticket's seconds."""
    return f"{alias}.at + make_interval(secs => sec)"


def business_time(after: str, minutes: str, late: str, cutoff: int, u: str) -> str:
    """`after` plus a response time: within `minutes` (1..minutes) unless `late` <
    `cutoff` (percent), then up to twice `minutes`, capped before now."""
    taken = (
        f"CASE WHEN {late} < {cutoff} THEN {minutes} + 1 + floor({minutes} * {u}) "
        f"ELSE 1 + floor(({minutes} - 1) * {u}) END"
    )
    return f"least(clk.now_ord - 1, {after} + ({taken})::int)"


TICKET_TYPES = [
    ("repair", 40),
    ("complaint", 25),
    ("inquiry", 25),
    ("suggestion", 5),
    ("praise", 5),
]
PRIORITIES = [("urgent", 5), ("high", 20), ("normal", 60), ("low", 15)]
CHANNELS = [
    ("hotline", 50),
    ("wechat", 20),
    ("web", 10),
    ("walk_in", 8),
    ("email", 5),
    ("on_site", 7),
]
# Business minutes are numbered (bench_minute.ord, see create_service_tables), so a
# deadline is `created + target` and its time one join: the same as
# BusinessCalendar.add_minutes. Each LATERAL step derives from the one before; OFFSET 0
# keeps the planner from inlining them (it would evaluate every draw many times over).
TICKETS = Dataset(
    name="tickets",
    model="service.Ticket",
    rows=SIZES,
    source=(
        "generate_series({start}::bigint, {stop}) AS g(i) "
        "CROSS JOIN bench_clock AS clk "
        f"JOIN customers_customer AS c ON c.id = 1 + {draw(51, 'clk.customers')} "
        # The first business minute of the day after the customer was created.
        "LEFT JOIN bench_day AS cday "
        f"ON cday.d = (c.created_at AT TIME ZONE {lit(settings.TIME_ZONE)})::date + 1 "
        "CROSS JOIN LATERAL (SELECT "
        f"{forced(0, draw(52, 1000))} < {OPEN_PER_MILLE} AS is_open, "
        f"{forced(50, draw(53, 100))} AS state_n, "
        f"{forced(0, draw(54, 100))} AS type_n, "
        f"{draw(55, 100)} AS prio_n, "
        f"{forced(0, draw(56, 4))} AS cat_n, "
        f"{forced(0, draw(57, AGENTS_PER_TEAM))} AS agent_n, "
        f"{uniform(58)} AS age_u, {uniform(59)} AS span_u, "
        f"{uniform(60)} AS fr_u, {draw(61, 100)} AS fr_late, "
        f"{uniform(62)} AS res_u, {draw(63, 100)} AS res_late, "
        f"{uniform(64)} AS pause_u, {draw(66, 100)} AS done_n"
        " OFFSET 0) AS d "
        "CROSS JOIN LATERAL (SELECT "
        "CASE WHEN NOT d.is_open THEN "
        "CASE WHEN d.done_n < 10 THEN 'resolved' ELSE 'closed' END "
        "WHEN d.state_n < 10 THEN 'new' WHEN d.state_n < 40 THEN 'assigned' "
        "WHEN d.state_n < 85 THEN 'in_progress' ELSE 'waiting' END AS status, "
        f"{weighted('d.type_n', TICKET_TYPES)} AS ticket_type, "
        f"{weighted('d.prio_n', PRIORITIES)} AS priority, "
        "(c.is_key_account OR c.tier = 'A') AS key_account, "
        "least(coalesce(cday.first_ord, clk.now_ord), clk.now_ord) AS lo"
        " OFFSET 0) AS e "
        "JOIN bench_category AS bc ON bc.ticket_type = e.ticket_type AND bc.k = d.cat_n "
        "JOIN bench_policy AS bp ON bp.ticket_type = e.ticket_type "
        "AND bp.priority = e.priority AND bp.for_key = e.key_account "
        "JOIN bench_agent AS ba ON ba.team_id = bc.team_id AND ba.k = d.agent_n "
        # When it was opened: open tickets in the last days (unanswered ones within half
        # a working day), the others any time in the customer's life until a week ago.
        "CROSS JOIN LATERAL (SELECT "
        "e.status NOT IN ('new', 'assigned') AS answered, (CASE WHEN d.is_open THEN "
        "least(clk.now_ord - 1, greatest(e.lo, clk.now_ord - CASE WHEN e.status IN "
        "('new', 'assigned') THEN floor(240 * d.age_u ^ 2) "
        "ELSE 30 + floor(3000 * d.age_u ^ 2) END)) "
        "WHEN clk.now_ord - 3000 > e.lo "
        "THEN e.lo + floor((clk.now_ord - 3000 - e.lo) * d.span_u) "
        "ELSE least(e.lo, clk.now_ord - 100) END)::int AS created_ord"
        " OFFSET 0) AS p "
        "CROSS JOIN LATERAL (SELECT "
        "p.created_ord + bp.first_response_minutes AS fr_due_ord, "
        "p.created_ord + bp.resolution_minutes AS res_due_ord, "
        "CASE WHEN p.answered THEN greatest(p.created_ord, "
        + business_time(
            "p.created_ord", "bp.first_response_minutes", "d.fr_late", 8, "d.fr_u"
        )
        + ") END AS fr_ord"
        " OFFSET 0) AS q "
        "CROSS JOIN LATERAL (SELECT "
        "CASE WHEN NOT d.is_open THEN greatest(q.fr_ord, "
        + business_time(
            "p.created_ord", "bp.resolution_minutes", "d.res_late", 12, "d.res_u"
        )
        + ") END AS res_ord, "
        "CASE WHEN e.status = 'waiting' THEN "
        "q.fr_ord + floor((clk.now_ord - q.fr_ord) * d.pause_u)::int END AS pause_ord"
        " OFFSET 0) AS r"
    ),
    joins=(
        "LEFT JOIN bench_minute AS m_c ON m_c.ord = b.created_ord "
        "LEFT JOIN bench_minute AS m_fd ON m_fd.ord = b.fr_due_ord "
        "LEFT JOIN bench_minute AS m_rd ON m_rd.ord = b.res_due_ord "
        "LEFT JOIN bench_minute AS m_f ON m_f.ord = b.fr_ord "
        "LEFT JOIN bench_minute AS m_r ON m_r.ord = b.res_ord "
        "LEFT JOIN bench_minute AS m_p ON m_p.ord = b.pause_ord"
    ),
    base={
        "customer": "c.id",
        "customer_name": "c.name",
        "customer_phone": "c.phone",
        "is_org": "c.is_organization",
        "status": "e.status",
        "ticket_type": "e.ticket_type",
        "priority": "e.priority",
        "category": "bc.id",
        "team": "bc.team_id",
        "agent": "ba.user_id",
        "policy": "bp.id",
        "is_open": "d.is_open",
        "created_ord": "p.created_ord",
        "fr_due_ord": "q.fr_due_ord",
        "res_due_ord": "q.res_due_ord",
        "fr_ord": "q.fr_ord",
        "res_ord": "r.res_ord",
        "pause_ord": "r.pause_ord",
        "now_ord": "clk.now_ord",
        "sec": draw(68, 60),
        "channel_n": draw(69, 100),
        "contact_n": draw(73, 100),
        "close_s": draw(65, 7 * 86400),
        "sat_n": draw(67, 100),
        "esc_n": draw(74, 100),
    },
    columns={
        "id": "i",
        # Year opened + the ticket number, as services.next_reference makes them;
        # unique because i is (the sequence is moved past it afterwards).
        "reference": (
            f"to_char(m_c.at AT TIME ZONE {lit(settings.TIME_ZONE)}, 'YYYY') "
            "|| lpad(i::text, greatest(6, length(i::text)), '0')"
        ),
        "customer_id": "customer",
        "contact_name": (
            "CASE WHEN NOT is_org AND contact_n < 85 THEN customer_name ELSE "
            f"{pick(SURNAME_LIST, 75)} || {pick(GIVEN_LIST, 76)} END"
        ),
        "contact_phone": "customer_phone",
        "ticket_type": "ticket_type",
        "channel": weighted("channel_n", CHANNELS),
        "category_id": "category",
        "priority": "priority",
        "subject": by_type("ticket_type", SUBJECTS, 70),
        "description": pick(DESCRIPTIONS, 71),
        "team_id": "team",
        "assignee_id": "CASE WHEN status = 'new' THEN NULL ELSE agent END",
        "status": "status",
        "sla_policy_id": "policy",
        "first_response_due_at": moment("m_fd"),
        "resolution_due_at": moment("m_rd"),
        "paused_at": moment("m_p"),
        "resolution_left": (
            "CASE WHEN pause_ord IS NOT NULL THEN greatest(0, res_due_ord - pause_ord) END"
        ),
        "first_responded_at": moment("m_f"),
        "resolved_at": moment("m_r"),
        "closed_at": (
            f"CASE WHEN status = 'closed' THEN least(now(), {moment('m_r')} "
            "+ make_interval(secs => 3600 + close_s)) END"
        ),
        # As the escalation pipeline would have left them: an open clock past its
        # deadline is flagged, a late answer or resolution too.
        "first_response_breached": (
            "CASE WHEN fr_ord IS NOT NULL THEN fr_ord > fr_due_ord "
            "ELSE fr_due_ord <= now_ord END"
        ),
        "resolution_breached": (
            "CASE WHEN res_ord IS NOT NULL THEN res_ord > res_due_ord "
            "ELSE res_due_ord <= coalesce(pause_ord, now_ord) END"
        ),
        "escalation_level": (
            "CASE WHEN (CASE WHEN fr_ord IS NOT NULL THEN fr_ord > fr_due_ord "
            "ELSE fr_due_ord <= now_ord END) OR (CASE WHEN res_ord IS NOT NULL "
            "THEN res_ord > res_due_ord ELSE res_due_ord <= coalesce(pause_ord, now_ord) "
            "END) THEN 1 + (esc_n < 30)::int ELSE 0 END"
        ),
        "resolution_summary": (
            f"CASE WHEN is_open THEN '' ELSE {pick(RESOLUTIONS, 72)} END"
        ),
        "satisfaction": (
            "CASE WHEN status = 'closed' AND sat_n < 60 THEN CASE WHEN sat_n < 35 "
            "THEN 5 WHEN sat_n < 50 THEN 4 WHEN sat_n < 55 THEN 3 WHEN sat_n < 58 "
            "THEN 2 ELSE 1 END END"
        ),
        "created_by_id": "CASE WHEN channel_n BETWEEN 70 AND 79 THEN NULL ELSE agent END",
        "version": (
            "CASE status WHEN 'new' THEN 1 WHEN 'assigned' THEN 2 "
            "WHEN 'in_progress' THEN 3 WHEN 'closed' THEN 5 ELSE 4 END"
        ),
        "created_at": moment("m_c"),
        "updated_at": (
            f"greatest({moment('m_c')}, {moment('m_f')}, {moment('m_p')}, "
            f"{moment('m_r')})"
        ),
    },
    # Six look-ups of business minutes per ticket: hashing bench_minute once per chunk
    # is several times faster than six index probes per row.
    chunk=250_000,
    settings={
        "enable_nestloop": "off",
        "enable_memoize": "off",
        "work_mem": "128MB",
    },
    after=(
        "SELECT setval(pg_get_serial_sequence('service_ticket', 'id'), "
        "(SELECT max(id) FROM service_ticket))",
        # services.next_reference numbers on from here: no reference is issued twice.
        "SELECT setval('service_ticket_ref_seq', (SELECT max(id) FROM service_ticket))",
    ),
)

# 1 to MESSAGES_PER_TICKET messages per ticket (BIG_TICKET: BIG_TICKET_MESSAGES). An
# answered ticket's first message is the reply at first_responded_at; the rest are
# spread until it was resolved, paused or now. Unanswered tickets have no reply.
TICKET_MESSAGES = Dataset(
    name="ticket_messages",
    model="service.TicketMessage",
    rows=SIZES,
    unit="tickets",
    source=(
        "service_ticket AS t CROSS JOIN LATERAL (SELECT CASE WHEN t.id = "
        f"{BIG_TICKET} THEN {BIG_TICKET_MESSAGES} ELSE 1 + mod(hashint8extended(t.id, "
        f"81) & {MASK}, {MESSAGES_PER_TICKET}) END AS cnt) AS mc "
        "CROSS JOIN LATERAL generate_series(1, mc.cnt) AS m(n) "
        "CROSS JOIN LATERAL (SELECT t.id * 1000 + m.n AS i) AS g "
        "WHERE t.id BETWEEN {start} AND {stop}"
    ),
    base={
        "ticket": "t.id",
        "n": "m.n",
        "cnt": "mc.cnt",
        "kind": (
            "CASE WHEN t.first_responded_at IS NULL THEN "
            f"CASE WHEN {draw(82, 100)} < 60 THEN 'customer' ELSE 'note' END "
            "WHEN m.n = 1 THEN 'reply' "
            f"WHEN {draw(82, 100)} < 40 THEN 'customer' "
            f"WHEN {draw(82, 100)} < 75 THEN 'reply' ELSE 'note' END"
        ),
        "assignee": "t.assignee_id",
        "answered": "t.first_responded_at IS NOT NULL",
        "start_at": "coalesce(t.first_responded_at, t.created_at)",
        "end_at": "greatest(t.created_at, coalesce(t.resolved_at, t.paused_at, now()))",
        "u": uniform(83),
    },
    columns={
        "ticket_id": "ticket",
        "kind": "kind",
        "author_id": "CASE WHEN kind = 'customer' THEN NULL ELSE assignee END",
        "body": (
            f"CASE kind WHEN 'customer' THEN {pick(CUSTOMER_LINES, 84)} "
            f"WHEN 'reply' THEN {pick(REPLY_LINES, 84)} ELSE {pick(NOTE_LINES, 84)} END"
        ),
        "created_at": (
            "CASE WHEN answered AND n = 1 THEN start_at "
            "ELSE start_at + (end_at - start_at) * ((n - 1 + u) / cnt) END"
        ),
    },
)

# Each status change of each ticket along new → assigned → in progress → waiting or
# resolved → closed, at the ticket's own times.
TICKET_TRANSITIONS = Dataset(
    name="ticket_transitions",
    model="service.TicketTransition",
    rows=SIZES,
    unit="tickets",
    source=(
        "service_ticket AS t CROSS JOIN LATERAL generate_series(1, CASE t.status "
        "WHEN 'new' THEN 1 WHEN 'assigned' THEN 2 WHEN 'in_progress' THEN 3 "
        "WHEN 'closed' THEN 5 ELSE 4 END) AS m(n) "
        "CROSS JOIN LATERAL (SELECT t.id * 10 + m.n AS i) AS g "
        "WHERE t.id BETWEEN {start} AND {stop}"
    ),
    base={
        "ticket": "t.id",
        "n": "m.n",
        "status": "t.status",
        "opened": "t.created_at",
        "answered": "t.first_responded_at",
        "paused": "t.paused_at",
        "resolved": "t.resolved_at",
        "closed": "t.closed_at",
        "creator": "t.created_by_id",
        "assignee": "t.assignee_id",
    },
    columns={
        "ticket_id": "ticket",
        "from_status": (
            "CASE n WHEN 1 THEN '' WHEN 2 THEN 'new' WHEN 3 THEN 'assigned' "
            "WHEN 4 THEN 'in_progress' ELSE 'resolved' END"
        ),
        "to_status": (
            "CASE n WHEN 1 THEN 'new' WHEN 2 THEN 'assigned' WHEN 3 THEN 'in_progress' "
            "WHEN 4 THEN CASE WHEN status = 'waiting' THEN 'waiting' ELSE 'resolved' END "
            "ELSE 'closed' END"
        ),
        "by_id": "CASE WHEN n = 1 THEN creator ELSE assignee END",
        "created_at": (
            "CASE n WHEN 1 THEN opened WHEN 2 THEN opened + interval '5 seconds' "
            "WHEN 3 THEN answered WHEN 4 THEN coalesce(paused, resolved) ELSE closed END"
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
    TICKETS,
    TICKET_MESSAGES,
    TICKET_TRANSITIONS,
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
        staff = ensure_users()
        ensure_service_desk(staff)
        size = options["size"]
        plans = [build_sql(dataset) for dataset in DATASETS]
        signature = make_signature(size, staff, plans)
        ensure_state_table()
        state = read_state()
        if not options["rebuild"] and all(
            state.get(p.dataset.name, {}).get("signature") == signature for p in plans
        ):
            self.stdout.write(
                self.style.SUCCESS(f"bench data at size {size} reused ({name})")
            )
            return
        self._build(plans, staff, size, signature)
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

    def _build(self, plans: list[Plan], staff: Staff, size: str, sig: str) -> None:
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
            cursor.executemany(
                "INSERT INTO bench_seller VALUES (%s, %s, %s)", staff.sellers
            )
            t0 = time.monotonic()
            create_service_tables(cursor, staff, size)
            self.stdout.write(
                f"  service lookup tables (business minutes, teams, SLA policies): "
                f"{time.monotonic() - t0:.1f} s"
            )
            if tables:
                # Also what points at the old rows' ids: actions, notifications, audit.
                everything = tables + [t for t in ALSO_EMPTIED if t not in tables]
                quoted = ", ".join(connection.ops.quote_name(t) for t in everything)
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
        restore = {}
        for name, value in dataset.settings.items():
            cursor.execute(
                "SELECT current_setting(%s), set_config(%s, %s, true)",
                [name, name, value],
            )
            restore[name] = cursor.fetchone()[0]
        for start in range(1, total + 1, dataset.chunk):
            stop = min(start + dataset.chunk - 1, total)
            cursor.execute(plan.sql.format(start=start, stop=stop), plan.params)
            self.stdout.write(
                f"  {dataset.name}: {stop:,}/{total:,} {dataset.unit} "
                f"({time.monotonic() - t0:.0f} s)"
            )
        for name, value in restore.items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        # Statistics now, so the datasets built from this one get good plans.
        cursor.execute(f"ANALYZE {connection.ops.quote_name(plan.table)}")
        t1 = time.monotonic()
        for statement in indexes:
            cursor.execute(statement)
        self.stdout.write(
            f"  {dataset.name}: {len(indexes)} indexes rebuilt in "
            f"{time.monotonic() - t1:.1f} s"
        )
        for statement in dataset.after:
            cursor.execute(statement)
        table = connection.ops.quote_name(plan.table)
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608  # nosec B608 # a model's quoted table name, no input
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
        auto = f.primary_key and isinstance(f, models.AutoField)
        if auto and f.column not in dataset.columns:
            continue  # numbered by its sequence, unless the dataset sets it
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


@dataclass
class Staff:
    """Who and what the generated rows point at (all of it goes into the signature)."""

    sellers: list[tuple[int, int, int]]  # (n, user_id, team_id): the 50 salespeople
    agents: list[tuple[int, int, int, int]]  # (n, k, user_id, team_id); k = 0 leads
    service_teams: list[int] = field(default_factory=list)
    # (ticket_type, k, category_id, team_id): the four leaves of each type
    categories: list[tuple[str, int, int, int]] = field(default_factory=list)
    # (ticket_type, priority, for_key_accounts, policy_id, first_response, resolution)
    policies: list[tuple[str, str, bool, int, int, int]] = field(default_factory=list)
    calendar: list[str] = field(default_factory=list)  # working periods and overrides


def make_signature(size: str, staff: Staff, plans: list[Plan]) -> str:
    """Changes when anything that shapes the data does: size, users, schema, generator."""
    text = json.dumps(
        [
            GENERATOR_VERSION,
            size,
            staff.sellers,
            staff.agents,
            staff.categories,
            staff.policies,
            hashlib.sha256("\n".join(staff.calendar).encode()).hexdigest(),
            [
                (p.dataset.name, p.sql, [str(x) for x in p.params], p.missing)
                for p in plans
            ],
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_users() -> Staff:
    """Departments, 10 sales teams of 5 and the 50 salespeople, 5 service-desk teams of
    10 agents (agent 1 of each leads it), a desk manager and one login per role.

    Idempotent (matched by name).
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
    service_teams = [
        Team.objects.get_or_create(
            name=name, defaults={"department": departments["service"]}
        )[0]
        for name in SERVICE_TEAMS
    ]
    groups = {role: Group.objects.get(name=role.value) for role in Role}
    names = [
        SURNAME_LIST[n * 7 % len(SURNAME_LIST)] + GIVEN[n * 3 % len(GIVEN)]
        for n in range(60)
    ]
    agent_names = [
        SURNAME_LIST[(n * 11 + 3) % len(SURNAME_LIST)] + GIVEN[(n * 5 + 1) % len(GIVEN)]
        for n in range(AGENTS_PER_TEAM * len(SERVICE_TEAMS) + 1)
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
                "is_away": False,
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
    agents = []
    for n in range(1, AGENTS_PER_TEAM * len(SERVICE_TEAMS) + 1):
        place, k = divmod(n - 1, AGENTS_PER_TEAM)
        team = service_teams[place]
        if n == 1:
            account = user(LOGINS[Role.SERVICE], Role.SERVICE, team, "陈客服")
        else:
            account = user(
                f"service{n:02d}", Role.SERVICE, team, agent_names[n] + "（客服）"
            )
        agents.append((n, k, account.pk, team.pk))
        if k == 0:
            Team.objects.filter(pk=team.pk).update(lead=account)
    manager = user(LOGINS[Role.MANAGER], Role.MANAGER, teams[0], "王经理")
    user(SERVICE_MANAGER, Role.MANAGER, service_teams[0], "周经理（客服）")
    user(LOGINS[Role.ADMIN], Role.ADMIN, None, "系统管理员")
    Team.objects.filter(pk__in=[t.pk for t in teams[:5]]).update(lead=manager)
    return Staff(
        sellers=sellers, agents=agents, service_teams=[t.pk for t in service_teams]
    )


def ensure_service_desk(staff: Staff) -> None:
    """SLA policies for every type and priority (and key accounts), the working
    calendar, the category tree with its teams and the canned replies. Idempotent."""
    from service import calendar_data
    from service.demo import CANNED, TARGETS
    from service.models import (
        CalendarDay,
        CannedReply,
        Category,
        SLAPolicy,
        WorkingPeriod,
    )

    today = timezone.localdate()
    calendar_data.calendar_seed(years=list(range(today.year - 4, today.year + 2)))
    staff.calendar = [
        f"{p.weekday} {p.start} {p.end}" for p in WorkingPeriod.objects.all()
    ] + [f"{d} {w}" for d, w in CalendarDay.objects.values_list("date", "is_working")]
    staff.calendar.sort()
    for ticket_type, _ in TICKET_TYPES:
        for priority, _ in PRIORITIES:
            for key in (False, True):
                first, resolution = TARGETS[priority]
                resolution = round(resolution * TYPE_RESOLUTION[ticket_type])
                if key:  # key accounts are answered and resolved twice as fast
                    first, resolution = max(15, first // 2), resolution // 2
                policy, _ = SLAPolicy.objects.update_or_create(
                    ticket_type=ticket_type,
                    priority=priority,
                    for_key_accounts=key,
                    defaults={
                        "name": f"{ticket_type}-{priority}{'-key' if key else ''}",
                        "first_response_minutes": first,
                        "resolution_minutes": resolution,
                        "warn_before_minutes": min(30, first // 2),
                    },
                )
                staff.policies.append(
                    (ticket_type, priority, key, policy.pk, first, resolution)
                )
    teams = staff.service_teams
    for t, (ticket_type, (top, leaves)) in enumerate(TICKET_CATEGORIES.items()):
        parent, _ = Category.objects.get_or_create(name=top, parent=None)
        for j, leaf in enumerate(leaves):
            team = teams[(4 * t + j) % len(teams)]
            category, _ = Category.objects.update_or_create(
                name=leaf, parent=parent, defaults={"team_id": team}
            )
            staff.categories.append((ticket_type, j, category.pk, team))
    for title, body in CANNED:
        CannedReply.objects.get_or_create(title=title, defaults={"body": body})


def create_service_tables(cursor: Any, staff: Staff, size: str) -> None:
    """The build transaction's lookup tables for the service datasets.

    bench_minute numbers every business minute (WorkingPeriod and CalendarDay, read as
    BusinessCalendar reads them) from three years back to half a year ahead, so that
    "created + N business minutes" is one join; bench_day gives the first business
    minute on or after each date; bench_clock the business minute of now.
    """
    tz = settings.TIME_ZONE
    cursor.execute(
        "CREATE TEMP TABLE bench_agent (n int PRIMARY KEY, k int, user_id bigint, "
        "team_id bigint) ON COMMIT DROP"
    )
    cursor.executemany("INSERT INTO bench_agent VALUES (%s, %s, %s, %s)", staff.agents)
    cursor.execute(
        "CREATE TEMP TABLE bench_category (ticket_type text, k int, id bigint, "
        "team_id bigint, PRIMARY KEY (ticket_type, k)) ON COMMIT DROP"
    )
    cursor.executemany(
        "INSERT INTO bench_category VALUES (%s, %s, %s, %s)", staff.categories
    )
    cursor.execute(
        "CREATE TEMP TABLE bench_policy (ticket_type text, priority text, "
        "for_key boolean, id bigint, first_response_minutes int, "
        "resolution_minutes int, PRIMARY KEY (ticket_type, priority, for_key)) "
        "ON COMMIT DROP"
    )
    cursor.executemany(
        "INSERT INTO bench_policy VALUES (%s, %s, %s, %s, %s, %s)", staff.policies
    )
    cursor.execute(
        "SELECT (now() AT TIME ZONE %s)::date - %s, (now() AT TIME ZONE %s)::date + %s",
        [tz, CALENDAR_DAYS_BEFORE, tz, CALENDAR_DAYS_AFTER],
    )
    first, last = cursor.fetchone()
    cursor.execute(
        "CREATE TEMP TABLE bench_minute ON COMMIT DROP AS "
        "WITH days AS (SELECT s.d::date AS d, extract(isodow FROM s.d)::int - 1 AS wd "
        "FROM generate_series(%s::date, %s::date, interval '1 day') AS s(d)), "
        "worked AS (SELECT days.d, wp.start, wp.end FROM days "
        "LEFT JOIN service_calendarday AS cd ON cd.date = days.d "
        # A 调休 weekend is worked with Monday's hours (BusinessCalendar.day_periods).
        "JOIN service_workingperiod AS wp ON wp.weekday = CASE WHEN cd.is_working "
        "AND NOT EXISTS (SELECT 1 FROM service_workingperiod AS x "
        "WHERE x.weekday = days.wd) THEN 0 ELSE days.wd END "
        "WHERE cd.is_working IS DISTINCT FROM false) "
        "SELECT (row_number() OVER (ORDER BY at))::int AS ord, at FROM ("
        "SELECT ((w.d + w.start) AT TIME ZONE %s) + make_interval(mins => m) AS at "
        "FROM worked AS w, generate_series(0, "
        "(extract(epoch FROM w.end - w.start) / 60)::int - 1) AS m) AS minutes",
        [first, last, tz],
    )
    cursor.execute("ALTER TABLE bench_minute ADD PRIMARY KEY (ord)")
    cursor.execute("CREATE INDEX ON bench_minute (at)")
    cursor.execute(
        "CREATE TEMP TABLE bench_day ON COMMIT DROP AS SELECT s.d::date AS d, "
        "(SELECT m.ord FROM bench_minute AS m WHERE m.at >= s.d::date::timestamp "
        "AT TIME ZONE %s ORDER BY m.at LIMIT 1) AS first_ord "
        "FROM generate_series(%s::date, %s::date, interval '1 day') AS s(d)",
        [tz, first, last],
    )
    cursor.execute("ALTER TABLE bench_day ADD PRIMARY KEY (d)")
    cursor.execute(
        "CREATE TEMP TABLE bench_clock ON COMMIT DROP AS SELECT "
        "(SELECT max(ord) FROM bench_minute WHERE at <= now()) AS now_ord, "
        "%s::bigint AS customers",
        [SIZES[size]],
    )
    for table in ("agent", "category", "policy", "minute", "day", "clock"):
        cursor.execute(f"ANALYZE bench_{table}")


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
            "SELECT name, size, rows, signature, seconds, missing, built_at "  # noqa: S608  # nosec B608 # STATE_TABLE is a constant
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
        f"INSERT INTO {STATE_TABLE} (name, size, rows, signature, seconds, missing) "  # noqa: S608  # nosec B608 # constant table, values bound
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
