"""Demo data: users for every role, two sales teams and realistic Chinese customers.

Idempotent: users and teams are matched by name, and customers are only added up to the
requested count, so running it twice changes nothing.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone
from faker import Faker

from crm.accounts import services as account_services
from crm.accounts.models import Department, Team, User
from crm.accounts.roles import Role
from customers import search
from customers import services as customer_services
from customers.models import ContactLog, Customer, CustomerPhone, CustomerProfile
from service import demo as service_demo
from service.handover import demo as handover_demo

# username, display name, role, team
DEMO_USERS = [
    ("admin", "系统管理员", Role.ADMIN, None),
    ("manager1", "王经理", Role.MANAGER, "销售一组"),
    ("sales1", "李销售", Role.SALES, "销售一组"),
    ("sales2", "赵销售", Role.SALES, "销售二组"),
    ("service1", "陈客服", Role.SERVICE, "客服组"),
]
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
FOLLOWUP_NOTES = [
    "回访购房意向",
    "发送最新户型资料",
    "确认入伙时间",
    "邀请参加业主活动",
]
TEAMS = [("销售一组", "销售部"), ("销售二组", "销售部"), ("客服组", "客户服务部")]


# Allocated mainland mobile prefixes: every 8-digit serial behind them is a valid number.
MOBILE_PREFIXES = ("130", "135", "138", "139", "150", "158", "186", "188", "189", "199")


class Command(BaseCommand):
    help = "Create the demo users, teams and customers (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=120)
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the demo admin already exists (used by make run).",
        )
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and User.objects.filter(username="admin").exists():
            self.stdout.write("demo data already present")
            return
        password = os.environ.get("CRM_DEMO_PASSWORD", "kehu-demo")
        with transaction.atomic():
            account_services.roles_sync()
            users = self._users(password)
            added = self._customers(options["customers"], users, options["seed"])
            # Skipped once any ticket exists, like the customers above.
            tickets = service_demo.seed_service_demo(
                users,
                list(
                    Customer.objects.filter(merged_into__isnull=True).order_by("pk")[
                        :200
                    ]
                ),
                random.Random(options["seed"]),  # noqa: S311 - demo data
            )
            handover_demo.seed_handover_demo(
                users,
                list(
                    Customer.objects.filter(merged_into__isnull=True).order_by("pk")[
                        :60
                    ]
                ),
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"demo users ready; {added} customers added; {tickets} tickets added"
            )
        )

    def _users(self, password: str) -> dict[str, User]:
        teams = {}
        for team_name, department_name in TEAMS:
            department, _ = Department.objects.get_or_create(name=department_name)
            teams[team_name], _ = Team.objects.get_or_create(
                name=team_name, defaults={"department": department}
            )
        users = {}
        for username, display_name, role, team_name in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "display_name": display_name,
                    "team": teams.get(team_name),
                    "is_staff": role == Role.ADMIN,
                    "is_superuser": role == Role.ADMIN,
                    "email": f"{username}@example.com",
                },
            )
            if created:
                user.set_password(password)
                user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=role.value))
            users[username] = user
        for team_name, lead in (("销售一组", "manager1"), ("销售二组", "manager1")):
            Team.objects.filter(name=team_name, lead__isnull=True).update(
                lead=users[lead]
            )
        return users

    def _customers(self, wanted: int, users: dict[str, User], seed: int) -> int:
        existing = Customer.objects.count()
        missing = wanted - existing
        if missing <= 0:
            return 0
        fake = Faker("zh_CN")
        fake.seed_instance(seed + existing)
        rng = random.Random(seed + existing)  # noqa: S311 - demo data, not security
        owners = [users["sales1"], users["sales2"], users["manager1"], None]
        kinds = Customer.Kind.values
        customers, numbers = [], []
        for offset in range(missing):
            owner = rng.choice(owners)
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
                    lifetime_value=rng.choice([0, 0, 50_000, 1_200_000, 3_500_000]),
                    notes=fake.sentence() if rng.random() < 0.3 else "",
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
        self._activity(customers[:60], users, rng, fake)
        return missing

    def _activity(
        self, customers: list[Customer], users: dict, rng: random.Random, fake: Faker
    ) -> None:
        """Contacts and follow-ups through the real services, so reminders are scheduled."""
        now = timezone.now()
        channels = ContactLog.Channel.values
        for customer in customers:
            author = customer.owner or users["service1"]
            for days_ago in sorted(
                rng.sample(range(1, 90), k=rng.randint(1, 4)), reverse=True
            ):
                customer_services.contact_log_create(
                    by=author,
                    customer=customer,
                    channel=rng.choice(channels),
                    summary=fake.sentence(),
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
                    note=rng.choice(FOLLOWUP_NOTES),
                )
