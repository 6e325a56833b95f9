"""Service-desk demo data (`seed_demo`) and scale data (`seed_scale`, `make bench`).

Registered with crm.core.seeding at the end of this module, which the platform's commands
import through `autodiscover_modules("demo")`.

Demo: categories, SLAs, the working calendar, canned replies, assets sold by dealers,
and about forty tickets in every state, for the first demo customers. Everything goes
through the services with `now=` in the past where a ticket should look old, so its SLA
deadlines, escalations and work orders are real: with `make run` the worker escalates
the tickets whose first response is already overdue. Idempotent: does nothing once any
ticket exists.

Scale: the desk's reference rows (SLA policies, calendar, categories per team), then
tickets, their messages and transitions, set-based over the customers dataset.
"""

from __future__ import annotations

import hashlib
import os
import random
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from crm.accounts.models import Department, Team, User
from crm.accounts.roles import Role
from crm.core import seeding
from crm.core.scale import (
    AGENTS_PER_TEAM,
    GIVEN_LIST,
    MASK,
    SIZES,
    SURNAME_LIST,
    Dataset,
    Reference,
    Staff,
    draw,
    lit,
    pick,
    uniform,
    weighted,
)
from customers.models import Customer
from service import calendar_data, services
from service.demo_texts import FOLLOW_UP_REPLY, STORIES, Story
from service.models import (
    Asset,
    CalendarDay,
    CannedReply,
    Category,
    Priority,
    SLAPolicy,
    Ticket,
    TicketMessage,
    TicketTransition,
    TicketType,
    WorkingPeriod,
    WorkOrder,
)

CATEGORIES = {
    "报修": ["水电", "门窗", "电梯", "空调"],
    "投诉": ["物业服务", "工程质量", "销售承诺"],
    "咨询": ["交房入伙", "产权办证", "物业费"],
    "建议": [],
    "表扬": [],
}
# Business minutes (first response, resolution) by priority; 7.5 working hours a day.
TARGETS = {
    Priority.URGENT: (30, 240),
    Priority.HIGH: (60, 600),
    Priority.NORMAL: (120, 1350),
    Priority.LOW: (240, 2700),
}
BACK_OFFICE = {
    "工程部": "工程维修组",
    "财务部": None,
    "法务部": None,
    "物业管理部": None,
}
CANNED = [
    (
        "已受理",
        "{客户}您好，您的问题已受理，工单号 {工单号}。我们会尽快安排处理，"
        "有进展会第一时间告知您。客服 {处理人}",
    ),
    (
        "预约上门",
        "{客户}您好，维修师傅将于明天上午上门，请您家中留人。如需改时间请回复本消息"
        "或致电客服热线，并报工单号 {工单号}。",
    ),
    (
        "已解决回访",
        "{客户}您好，工单 {工单号} 已处理完毕。请问您对处理结果是否满意？如仍有问题，"
        "欢迎随时联系我们。",
    ),
    ("需要补充信息", "{客户}您好，为尽快处理，请补充问题部位的照片和方便联系的时间。"),
]
# What each demo ticket goes through: (status path, hours ago it was opened, answered?)
SCENARIOS = [
    ("new", 0.2, False),
    ("new", 0.4, False),
    ("assigned", 0.3, False),
    ("assigned", 1.0, False),
    ("assigned", 0.1, False),
    ("breaching", 30, False),
    ("breaching", 54, False),
    ("breaching", 78, False),
    ("breaching", 6, False),
    ("breaching", 100, False),
    ("in_progress", 3, True),
    ("in_progress", 20, True),
    ("in_progress", 26, True),
    ("in_progress", 50, True),
    ("in_progress", 2, True),
    ("in_progress", 70, True),
    ("waiting", 24, True),
    ("waiting", 48, True),
    ("waiting", 5, True),
    ("resolved", 72, True),
    ("resolved", 96, True),
    ("resolved", 120, True),
    ("resolved", 150, True),
    ("resolved", 200, True),
    ("resolved", 240, True),
    ("resolved", 300, True),
    ("closed", 400, True),
    ("closed", 500, True),
    ("closed", 600, True),
    ("closed", 700, True),
    ("reopened", 200, True),
    ("unassigned", 0.5, False),
    ("unassigned", 4, False),
    ("unassigned", 28, False),
    ("in_progress", 8, True),
    ("resolved", 360, True),
    ("closed", 800, True),
    ("assigned", 2, False),
    ("waiting", 60, True),
    ("in_progress", 12, True),
]


def seed_demo(run: seeding.DemoRun) -> str:
    """The desk's demo for the first 200 demo customers; says how many tickets it added."""
    customers = Customer.objects.filter(merged_into__isnull=True).order_by("pk")
    tickets = seed_service_demo(
        run.users,
        list(customers[:200]),
        random.Random(run.seed),  # noqa: S311 - demo data
    )
    return f"{tickets} tickets added"


def seed_service_demo(
    users: dict[str, User], customers: list[Any], rng: random.Random
) -> int:
    """Create the desk's reference data and demo tickets; returns tickets created."""
    if Ticket.objects.exists() or not customers:
        return 0
    calendar_data.calendar_seed()
    desk = users["service1"].team
    people = _people(users, desk)
    departments = {
        name: Department.objects.get_or_create(name=name)[0] for name in BACK_OFFICE
    }
    categories = _categories(desk)
    _policies()
    for title, body in CANNED:
        CannedReply.objects.get_or_create(title=title, defaults={"body": body})
    owners = [c for c in customers if not c.is_organization] or customers
    assets = _assets(people["service1"], owners, customers, rng)
    tickets = _tickets(people, owners, assets, categories, rng)
    _work_orders(people, departments, tickets, rng)
    _link_and_merge(people["service1"], tickets, categories)
    return len(tickets) + 1


def _link_and_merge(agent: User, tickets: list[Ticket], categories: dict) -> None:
    """Two related tickets, and a duplicate the customer filed online, merged."""
    # The leak (story 0) and the cracked wall (story 5) of the same building.
    services.ticket_link(by=agent, ticket=tickets[5], other=tickets[12])
    original = tickets[12]
    duplicate = services.ticket_create(
        by=None,
        customer=original.customer,
        ticket_type=original.ticket_type,
        channel=Ticket.Channel.WEB,
        category=categories[_story(12).category],
        subject=original.subject,
        description="业主在网上又报了一次：" + original.description,
    )
    services.ticket_merge(by=agent, target=original, duplicate=duplicate)


def _people(users: dict[str, User], desk: Team) -> dict[str, User]:
    """A second agent (round-robin has someone to alternate with) and an engineer."""
    password = os.environ.get("CRM_DEMO_PASSWORD", "kehu-demo")
    engineering, _ = Department.objects.get_or_create(name="工程部")
    engineers, _ = Team.objects.get_or_create(
        name=BACK_OFFICE["工程部"], defaults={"department": engineering}
    )
    people = dict(users)
    for username, name, team in (
        ("service2", "刘客服", desk),
        ("engineer1", "张工", engineers),
    ):
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "display_name": name,
                "team": team,
                "email": f"{username}@example.com",
            },
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=Role.SERVICE.value))
        people[username] = user
    Team.objects.filter(pk=desk.pk, lead__isnull=True).update(lead=users["manager1"])
    Team.objects.filter(pk=engineers.pk, lead__isnull=True).update(
        lead=people["engineer1"]
    )
    return people


def _categories(desk: Team) -> dict[tuple[str, str | None], Category]:
    found = {}
    for parent_name, children in CATEGORIES.items():
        parent, _ = Category.objects.get_or_create(
            name=parent_name, parent=None, defaults={"team": desk}
        )
        found[(parent_name, None)] = parent
        for child in children:
            found[(parent_name, child)], _ = Category.objects.get_or_create(
                name=child, parent=parent, defaults={"team": desk}
            )
    return found


# The urgent repair policy (the demo's 电梯困人 ticket) counts round the clock.
ROUND_THE_CLOCK = (TicketType.REPAIR, Priority.URGENT)


def _policies() -> None:
    for ticket_type in TicketType:
        # Suggestions and praise are answered, not fixed: looser targets.
        factor = 2 if ticket_type in (TicketType.SUGGESTION, TicketType.PRAISE) else 1
        for priority in Priority:
            first, resolution = TARGETS[priority]
            for key in (False, True):
                divisor = 2 if key else 1
                SLAPolicy.objects.get_or_create(
                    ticket_type=ticket_type,
                    priority=priority,
                    for_key_accounts=key,
                    defaults={
                        "name": f"{ticket_type.label}·{priority.label}"
                        + ("（重点客户）" if key else ""),
                        "first_response_minutes": max(15, first * factor // divisor),
                        "resolution_minutes": max(60, resolution * factor // divisor),
                        "warn_before_minutes": 15 if first <= 60 else 30,
                        # 电梯困人 and other urgent repairs cannot wait for Monday.
                        "calendar": SLAPolicy.Calendar.ROUND_THE_CLOCK
                        if (ticket_type, priority) == ROUND_THE_CLOCK
                        else SLAPolicy.Calendar.BUSINESS,
                    },
                )


def _assets(
    by: User, owners: list[Any], customers: list[Any], rng: random.Random
) -> dict[int, list[Asset]]:
    dealers = [
        c
        for c in customers
        if c.kind in ("dealer", "distributor", "agent", "wholesaler")
    ][:4]
    today = timezone.localdate()
    assets: dict[int, list[Asset]] = {}
    for n, customer in enumerate(owners[:30]):
        delivered = today - timedelta(days=rng.randint(60, 1500))
        unit = Asset.Kind.UNIT if n % 3 else Asset.Kind.APPLIANCE
        name = (
            f"{rng.randint(1, 12)}栋{rng.randint(1, 3)}单元{rng.randint(2, 30)}0{rng.randint(1, 4)}室"
            if unit == Asset.Kind.UNIT
            else rng.choice(["中央空调 KFR-120", "智能门锁 S3", "燃气热水器 16L"])
        )
        asset = services.asset_create(
            by=by,
            customer=customer,
            data={
                "kind": unit,
                "name": name,
                "serial": f"SN{rng.randint(100000, 999999)}",
                "delivered_on": delivered,
                "warranty_until": _years_after(delivered, 2 if n % 2 else 5),
                "dealer": rng.choice(dealers) if dealers else None,
            },
        )
        assets.setdefault(customer.pk, []).append(asset)
    return assets


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _story(n: int) -> Story:
    """The story of the n-th demo ticket (service/demo_texts.py)."""
    return STORIES[n % len(STORIES)]


def _tickets(
    people: dict[str, User],
    owners: list[Any],
    assets: dict[int, list[Asset]],
    categories: dict,
    rng: random.Random,
) -> list[Ticket]:
    agent = people["service1"]
    now = timezone.now()
    made = []
    for n, (path, hours_ago, answered) in enumerate(SCENARIOS):
        story = _story(n)
        customer = owners[n % len(owners)]
        opened = now - timedelta(hours=hours_ago)
        # Without a category the ticket lands in the desk's queue unassigned (service/routing.py): it stays new.
        unassigned = path in ("new", "unassigned")
        ticket = services.ticket_create(
            by=agent,
            customer=customer,
            ticket_type=story.ticket_type,
            channel=rng.choice(
                [Ticket.Channel.HOTLINE] * 3
                + [Ticket.Channel.WECHAT, Ticket.Channel.WEB]
            ),
            priority=story.priority,
            category=None if unassigned else categories[story.category],
            asset=(assets.get(customer.pk) or [None])[0],
            subject=story.subject,
            description=story.description,
            contact_name=customer.name,
            contact_phone=customer.phone,
            now=opened,
        )
        # Rows stamped by auto_now_add are moved back to when they "happened".
        Ticket.objects.filter(pk=ticket.pk).update(created_at=opened)
        TicketTransition.objects.filter(ticket=ticket).update(created_at=opened)
        _said(
            services.ticket_message_add(
                by=agent,
                ticket=ticket,
                kind=TicketMessage.Kind.CUSTOMER,
                body=story.caller,
                now=opened,
            ),
            opened,
        )
        if answered:
            step = opened + timedelta(minutes=rng.randint(5, 25))
            _walk(agent, ticket, story, path, step, now, rng)
        made.append(ticket)
    return made


def _walk(
    agent: User,
    ticket: Ticket,
    story: Story,
    path: str,
    step: Any,
    now: Any,
    rng: random.Random,
) -> None:
    """Answer the ticket, then move it along to `path`, in the words of its story."""
    fill = {"name": ticket.customer.name, "ref": ticket.reference}
    _said(
        services.ticket_message_add(
            by=agent,
            ticket=ticket,
            # A call answers at once; a reply would wait for its SMS (issue 13).
            kind=TicketMessage.Kind.CALL,
            body=story.reply.format(**fill),
            now=step,
        ),
        step,
    )
    ticket = _moved(
        services.ticket_transition(
            by=agent, ticket=ticket, to_status=Ticket.Status.IN_PROGRESS, now=step
        ),
        step,
    )
    later = min(now, step + (now - step) / 2)
    _said(
        services.ticket_message_add(
            by=agent,
            ticket=ticket,
            kind=TicketMessage.Kind.NOTE,
            body=story.note,
            now=step,
        ),
        step + (later - step) / 2,
    )
    if path == "waiting":
        _said(
            services.ticket_message_add(
                by=agent,
                ticket=ticket,
                kind=TicketMessage.Kind.CALL,
                body=FOLLOW_UP_REPLY.format(**fill, waiting=story.waiting),
                now=later,
            ),
            later,
        )
        _moved(
            services.ticket_transition(
                by=agent,
                ticket=ticket,
                to_status=Ticket.Status.WAITING,
                note=story.waiting,
                now=later,
            ),
            later,
        )
    elif path in ("resolved", "closed", "reopened"):
        ticket = _moved(
            services.ticket_transition(
                by=agent,
                ticket=ticket,
                to_status=Ticket.Status.RESOLVED,
                resolution_summary=story.resolution,
                now=later,
            ),
            later,
        )
        Ticket.objects.filter(pk=ticket.pk).update(
            satisfaction=rng.choices([5, 4, 3, 2], weights=[50, 30, 15, 5])[0]
        )
        if path == "closed":
            _moved(
                services.ticket_transition(
                    by=agent, ticket=ticket, to_status=Ticket.Status.CLOSED, now=later
                ),
                later,
            )
        elif path == "reopened":
            _moved(
                services.ticket_transition(
                    by=agent,
                    ticket=ticket,
                    to_status=Ticket.Status.IN_PROGRESS,
                    note=story.reopened,
                    now=now - timedelta(hours=1),
                ),
                now - timedelta(hours=1),
            )


def _said(message: TicketMessage, at: Any) -> None:
    TicketMessage.objects.filter(pk=message.pk).update(created_at=at)


def _moved(ticket: Ticket, at: Any) -> Ticket:
    """Date the transition just recorded (the newest) to `at`."""
    latest = TicketTransition.objects.filter(ticket=ticket).order_by("-id")[:1]
    TicketTransition.objects.filter(pk__in=latest.values("pk")).update(created_at=at)
    return ticket


# Due times of the demo's work orders, for the first open, answered tickets whose story
# needs the back office; the second is overdue a minute after seeding, so the pipeline
# escalates it while `make run` is up.
WORK_ORDER_DUE = [
    timedelta(hours=20),
    timedelta(minutes=2),
    timedelta(days=2),
    timedelta(days=1),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(hours=6),
    timedelta(days=2),
]
# What the engineer has done with 工程部's orders, in turn (None: not started).
ENGINEER_OUTCOMES = [None, "in_progress", "done"]


def _work_orders(
    people: dict[str, User],
    departments: dict[str, Department],
    tickets: list[Ticket],
    rng: random.Random,
) -> None:
    agent, engineer = people["service1"], people["engineer1"]
    now = timezone.now()
    status = dict(
        Ticket.objects.filter(pk__in=[t.pk for t in tickets]).values_list(
            "pk", "status"
        )
    )
    wanting = [
        (ticket, _story(n).work_order)
        for n, ticket in enumerate(tickets)
        if _story(n).work_order is not None
        and status[ticket.pk] in (Ticket.Status.IN_PROGRESS, Ticket.Status.WAITING)
    ]
    engineering = 0
    for (ticket, text), due in zip(wanting, WORK_ORDER_DUE, strict=False):
        order = services.workorder_create(
            by=agent,
            ticket=ticket,
            department=departments[text.department],
            title=text.title,
            description=f"客户：{ticket.customer.name}。{text.description}",
            due_at=now + due,
        )
        if text.department != "工程部":
            continue
        outcome = ENGINEER_OUTCOMES[engineering % len(ENGINEER_OUTCOMES)]
        engineering += 1
        if outcome:
            order = services.workorder_update(
                by=engineer,
                order=order,
                status=outcome,
                result=text.result if outcome == "done" else "",
            )
            if outcome == WorkOrder.Status.DONE:
                services.workorder_rate(by=agent, order=order, rating=rng.randint(4, 5))


# --- Scale data --------------------------------------------------------------------------

OPEN_PER_MILLE = 20  # 2 % of the tickets are open, the rest resolved or closed
# The ticket of the service.ticket scenario: open, in progress, in 客服一组, assigned to
# `service`, with exactly BIG_TICKET_MESSAGES messages; its id is BIG_TICKET at any size.
BIG_TICKET = 4242
BIG_TICKET_MESSAGES = 200
MESSAGES_PER_TICKET = 5  # 1 to 5 per ticket, 3 on average
CALENDAR_DAYS_BEFORE = 3 * 365 + 40  # business-minute map: the customers' three years
CALENDAR_DAYS_AFTER = 180  # ... and far enough ahead for every open ticket's deadline
# Per type: its top-level category and four leaves; leaf j of type t goes to desk team
# (4t + j) mod 5 (SERVICE_TEAMS in crm/core/scale.py), so each team serves four leaves
# across the types, and every ticket is in one team's queue.
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


def forced(value: int, expr: str) -> str:
    """`expr`, except for the BIG_TICKET row, which takes `value`."""
    return f"CASE WHEN i = {BIG_TICKET} THEN {value} ELSE {expr} END"


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
# Business minutes are numbered (bench_minute.ord, see scale_lookups), so a
# deadline is `created + target` and its time one join: the same as
# BusinessCalendar.add_minutes. Each LATERAL step derives from the one before; OFFSET 0
# keeps the planner from inlining them (it would evaluate every draw many times over).
SCALE_TICKETS = Dataset(
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
SCALE_MESSAGES = Dataset(
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
SCALE_TRANSITIONS = Dataset(
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


# The bell's history: each assigned ticket told its agent so when it was assigned
# (about 20,000 notifications per agent at full size, the unread ones the open tickets').
SCALE_NOTIFICATIONS = Dataset(
    name="notifications",
    model="notifications.Notification",
    rows=SIZES,
    unit="tickets",
    source=(
        "service_ticket AS t CROSS JOIN LATERAL (SELECT t.id AS i) AS g "
        "WHERE t.id BETWEEN {start} AND {stop} AND t.assignee_id IS NOT NULL"
    ),
    base={
        "ticket": "t.id",
        "assignee": "t.assignee_id",
        "reference": "t.reference",
        "subject": "t.subject",
        "status": "t.status",
        "opened": "t.created_at",
        "finished": "coalesce(t.resolved_at, t.closed_at)",
    },
    columns={
        "recipient_id": "assignee",
        "title": "'新工单分派给你：' || reference",
        "body": "subject",
        "url": "'/service/t/' || reference || '/'",
        "reason": "'你是该工单的处理人'",
        "group_key": "''",
        "grouped_into_id": "NULL",
        "idempotency_key": "'bench:assigned:' || ticket",
        "emailed_at": "NULL",
        "created_at": "opened + interval '5 seconds'",
        "read_at": "CASE WHEN status IN ('resolved', 'closed') THEN finished END",
    },
)


def scale_prepare(staff: Staff) -> Reference:
    """SLA policies for every type and priority (and key accounts), the working
    calendar, the category tree with its teams and the canned replies. Idempotent.

    The signature holds the categories, the policies and a hash of the calendar; the
    lookup rows are the categories and policies (see scale_lookups).
    """
    today = timezone.localdate()
    calendar_data.calendar_seed(years=list(range(today.year - 4, today.year + 2)))
    calendar = [
        f"{p.weekday} {p.start} {p.end}" for p in WorkingPeriod.objects.all()
    ] + [f"{d} {w}" for d, w in CalendarDay.objects.values_list("date", "is_working")]
    calendar.sort()
    # (ticket_type, priority, for_key_accounts, policy_id, first_response, resolution)
    policies: list[tuple[str, str, bool, int, int, int]] = []
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
                policies.append(
                    (ticket_type, priority, key, policy.pk, first, resolution)
                )
    # (ticket_type, k, category_id, team_id): the four leaves of each type
    categories: list[tuple[str, int, int, int]] = []
    teams = staff.service_teams
    for t, (ticket_type, (top, leaves)) in enumerate(TICKET_CATEGORIES.items()):
        parent, _ = Category.objects.get_or_create(name=top, parent=None)
        for j, leaf in enumerate(leaves):
            team = teams[(4 * t + j) % len(teams)]
            category, _ = Category.objects.update_or_create(
                name=leaf, parent=parent, defaults={"team_id": team}
            )
            categories.append((ticket_type, j, category.pk, team))
    for title, body in CANNED:
        CannedReply.objects.get_or_create(title=title, defaults={"body": body})
    return Reference(
        signature=[
            categories,
            policies,
            hashlib.sha256("\n".join(calendar).encode()).hexdigest(),
        ],
        rows={"category": categories, "policy": policies},
    )


def scale_lookups(cursor: Any, staff: Staff, size: str, reference: Reference) -> None:
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
        "INSERT INTO bench_category VALUES (%s, %s, %s, %s)", reference.rows["category"]
    )
    cursor.execute(
        "CREATE TEMP TABLE bench_policy (ticket_type text, priority text, "
        "for_key boolean, id bigint, first_response_minutes int, "
        "resolution_minutes int, PRIMARY KEY (ticket_type, priority, for_key)) "
        "ON COMMIT DROP"
    )
    cursor.executemany(
        "INSERT INTO bench_policy VALUES (%s, %s, %s, %s, %s, %s)",
        reference.rows["policy"],
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


seeding.register(
    __name__,
    demo=seed_demo,
    scale=seeding.Scale(
        datasets=[
            SCALE_TICKETS,
            SCALE_MESSAGES,
            SCALE_TRANSITIONS,
            SCALE_NOTIFICATIONS,
        ],
        prepare=scale_prepare,
        lookups=scale_lookups,
        lookups_label="service lookup tables (business minutes, teams, SLA policies)",
        also_emptied=["service_ticketevent"],
    ),
)
