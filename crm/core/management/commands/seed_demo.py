"""Demo data: users for every role, two sales teams and realistic Chinese customers.

Idempotent: users and teams are matched by name, and customers are only added up to the
requested count, so running it twice changes nothing.
"""

from __future__ import annotations

import os
import random
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from faker import Faker

from crm.accounts import services as account_services
from crm.accounts.models import Department, Team, User
from crm.accounts.roles import Role
from customers.models import Customer

# username, display name, role, team
DEMO_USERS = [
    ("admin", "系统管理员", Role.ADMIN, None),
    ("manager1", "王经理", Role.MANAGER, "销售一组"),
    ("sales1", "李销售", Role.SALES, "销售一组"),
    ("sales2", "赵销售", Role.SALES, "销售二组"),
    ("service1", "陈客服", Role.SERVICE, "客服组"),
]
TEAMS = [("销售一组", "销售部"), ("销售二组", "销售部"), ("客服组", "客户服务部")]


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
        self.stdout.write(
            self.style.SUCCESS(f"demo users ready; {added} customers added")
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
        missing = wanted - Customer.objects.count()
        if missing <= 0:
            return 0
        fake = Faker("zh_CN")
        fake.seed_instance(seed + Customer.objects.count())
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        owners = [users["sales1"], users["sales2"], users["manager1"], None]
        kinds = Customer.Kind.values
        batch = []
        for _ in range(missing):
            owner = rng.choice(owners)
            kind = rng.choices(kinds, weights=[60, 15, 5, 8, 4, 5, 3])[0]
            name = fake.name() if kind == Customer.Kind.OWNER else fake.company()
            batch.append(
                Customer(
                    name=name,
                    kind=kind,
                    stage=rng.choice(Customer.Stage.values),
                    tier=rng.choices("ABCD", weights=[10, 25, 40, 25])[0],
                    is_key_account=rng.random() < 0.1,
                    phone=fake.phone_number(),
                    email=fake.email() if rng.random() < 0.5 else "",
                    owner=owner,
                    team=owner.team if owner else None,
                    notes=fake.sentence() if rng.random() < 0.3 else "",
                )
            )
        Customer.objects.bulk_create(batch, batch_size=2000)
        return missing
