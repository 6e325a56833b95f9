"""Demo data: users for every role and their teams, then each app's demo data.

The apps' data (customers, the service desk, 入伙 ...) comes from the registry in
crm/core/seeding.py, in INSTALLED_APPS order. Idempotent: users and teams are matched by
name, and each app adds only what is missing, so running it twice changes nothing.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction

from crm.accounts import services as account_services
from crm.accounts.models import Department, Team, User
from crm.accounts.roles import Role
from crm.core import seeding

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
            run = seeding.DemoRun(
                users=users, customers=options["customers"], seed=options["seed"]
            )
            # Each app adds its rows after those of the apps it builds on.
            said = []
            for contribution in seeding.contributions():
                if contribution.demo is None:
                    continue
                started = time.monotonic()
                said.append(contribution.demo(run))
                # Statistics for what this app added: the whole seed is one
                # transaction, and without them the planner takes the new tables
                # for empty (each foreign-key check of the next app's bulk inserts
                # then scans a table, 2-3 ms a row).
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
                if options["verbosity"] >= 2:
                    self.stdout.write(
                        f"{contribution.app_label}: {time.monotonic() - started:.1f} s"
                    )
        summary = "; ".join(["demo users ready", *filter(None, said)])
        self.stdout.write(self.style.SUCCESS(summary))

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
