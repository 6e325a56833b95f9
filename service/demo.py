"""Service-desk demo data for `seed_demo`: categories, SLAs, the working calendar, canned
replies, assets sold by dealers, and about forty tickets in every state.

Everything goes through the services with `now=` in the past where a ticket should
look old, so its SLA deadlines, escalations and work orders are real: with `make run`
the worker escalates the tickets whose first response is already overdue.
Idempotent: does nothing once any ticket exists.
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.utils import timezone

from crm.accounts.models import Department, Team, User
from crm.accounts.roles import Role
from service import calendar_data, services
from service.models import (
    Asset,
    CannedReply,
    Category,
    Priority,
    SLAPolicy,
    Ticket,
    TicketMessage,
    TicketTransition,
    TicketType,
    WorkOrder,
)

CATEGORIES = {
    "报修": ["水电", "门窗", "电梯", "空调"],
    "投诉": ["物业服务", "工程质量", "销售承诺"],
    "咨询": ["交房入伙", "产权办证"],
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
TICKETS = [
    # type, priority, category (parent, child), subject, description
    (
        "repair",
        "high",
        ("报修", "水电"),
        "卫生间漏水",
        "楼下邻居反映天花板渗水，疑似卫生间防水问题。",
    ),
    (
        "repair",
        "urgent",
        ("报修", "电梯"),
        "电梯困人",
        "3号楼电梯停在8楼与9楼之间，有人被困。",
    ),
    (
        "repair",
        "normal",
        ("报修", "门窗"),
        "窗户关不严",
        "主卧推拉窗关不严，下雨进水。",
    ),
    ("repair", "normal", ("报修", "空调"), "空调不制冷", "客厅中央空调开机后不制冷。"),
    (
        "complaint",
        "high",
        ("投诉", "物业服务"),
        "保安态度差",
        "业主反映夜间进门时保安态度恶劣。",
    ),
    (
        "complaint",
        "normal",
        ("投诉", "工程质量"),
        "墙面开裂",
        "交房半年，客厅墙面出现多条裂缝。",
    ),
    (
        "complaint",
        "urgent",
        ("投诉", "销售承诺"),
        "赠送车位未兑现",
        "购房时承诺赠送车位，至今未办理。",
    ),
    (
        "inquiry",
        "low",
        ("咨询", "交房入伙"),
        "入伙需要带什么资料",
        "询问入伙办理需要携带的证件和费用。",
    ),
    (
        "inquiry",
        "normal",
        ("咨询", "产权办证"),
        "房产证办理进度",
        "询问房产证何时可以领取。",
    ),
    ("suggestion", "low", ("建议", None), "增加快递柜", "建议在小区东门增加快递柜。"),
    ("praise", "low", ("表扬", None), "表扬维修师傅", "感谢张师傅上门及时、态度好。"),
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
    services.ticket_link(by=agent, ticket=tickets[5], other=tickets[12])
    original = tickets[10]
    duplicate = services.ticket_create(
        by=None,
        customer=original.customer,
        ticket_type=original.ticket_type,
        channel=Ticket.Channel.WEB,
        category=categories[("报修", "水电")],
        subject=original.subject,
        description="网上又报了一次：" + original.description,
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
        ticket_type, priority, (parent, child), subject, description = TICKETS[
            n % len(TICKETS)
        ]
        customer = owners[n % len(owners)]
        opened = now - timedelta(hours=hours_ago)
        # Without a category the ticket lands in the desk's queue unassigned (service/routing.py): it stays new.
        unassigned = path in ("new", "unassigned")
        ticket = services.ticket_create(
            by=agent,
            customer=customer,
            ticket_type=ticket_type,
            channel=rng.choice(
                [Ticket.Channel.HOTLINE] * 3
                + [Ticket.Channel.WECHAT, Ticket.Channel.WEB]
            ),
            priority=priority,
            category=None if unassigned else categories[(parent, child)],
            asset=(assets.get(customer.pk) or [None])[0],
            subject=subject,
            description=description,
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
                body=f"客户来电：{description}",
                now=opened,
            ),
            opened,
        )
        if answered:
            step = opened + timedelta(minutes=rng.randint(5, 25))
            _walk(agent, ticket, path, step, now, rng)
        made.append(ticket)
    return made


def _walk(
    agent: User,
    ticket: Ticket,
    path: str,
    step: Any,
    now: Any,
    rng: random.Random,
) -> None:
    """Answer the ticket, then move it along to `path`."""
    _said(
        services.ticket_message_add(
            by=agent,
            ticket=ticket,
            body=f"{ticket.customer.name}您好，您的问题已受理，工单号 {ticket.reference}。",
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
            body="已联系工程部确认维修时间。",
            now=step,
        ),
        step + (later - step) / 2,
    )
    if path == "waiting":
        _moved(
            services.ticket_transition(
                by=agent,
                ticket=ticket,
                to_status=Ticket.Status.WAITING,
                note="等待客户确认上门时间",
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
                resolution_summary="已上门处理完毕，客户确认问题解决。",
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
                    note="客户反映问题复发",
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


def _work_orders(
    people: dict[str, User],
    departments: dict[str, Department],
    tickets: list[Ticket],
    rng: random.Random,
) -> None:
    agent, engineer = people["service1"], people["engineer1"]
    now = timezone.now()
    plans = [
        (tickets[11], "工程部", "安排水电师傅上门检修", timedelta(hours=20), None),
        (tickets[12], "工程部", "墙面裂缝鉴定", timedelta(minutes=2), None),
        (tickets[13], "财务部", "核实维修费用退款", timedelta(days=2), None),
        (tickets[14], "工程部", "更换窗户密封条", timedelta(days=1), "in_progress"),
        (tickets[15], "工程部", "空调系统排查", timedelta(days=1), "done"),
        (tickets[16], "法务部", "车位赠送条款核实", timedelta(days=3), None),
    ]
    for ticket, department, title, due, outcome in plans:
        order = services.workorder_create(
            by=agent,
            ticket=ticket,
            department=departments[department],
            title=title,
            description=f"客户：{ticket.customer.name}。{ticket.description}",
            due_at=now + due,
        )
        if outcome and department == "工程部":
            order = services.workorder_update(
                by=engineer,
                order=order,
                status=outcome,
                result="已派师傅处理，问题解决。" if outcome == "done" else "",
            )
            if outcome == WorkOrder.Status.DONE:
                services.workorder_rate(by=agent, order=order, rating=rng.randint(4, 5))
