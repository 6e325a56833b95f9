"""Scale data for `make bench`, written set-based into the separate bench database.

    python manage.py seed_scale --size small   # 10,000 customers and tickets, for CI
    python manage.py seed_scale --size full    # 1,000,000 customers and tickets

Whatever settings it is started with, it runs under crm.settings.bench, so the rows land
in `kehu_bench` (created on the DATABASE_URL server) and never in the development data.
The data is reused when the bench database already holds it at that size with the same
generator and schema; anything else rebuilds it.

The datasets come from the apps (crm/core/seeding.py, in INSTALLED_APPS order); how a
dataset becomes one INSERT ... SELECT per chunk is crm/core/scale.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from crm.core import scale, seeding
from crm.core.scale import Plan, Reference, Staff


class Command(BaseCommand):
    help = "Fill the bench database (kehu_bench) with scale data, set-based."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", choices=sorted(scale.SIZES), default="full")
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
            scale.drop_database(name)
        if scale.create_database(name):
            self.stdout.write(f"created database {name}")
        self._migrate()
        if not scale.schema_matches():
            # The bench database is disposable: a rewritten migration (one already
            # applied here in an older form) is cured by starting again.
            self.stdout.write("bench schema is out of date with the models; recreating")
            connection.close()
            scale.drop_database(name)
            scale.create_database(name)
            self._migrate()
        staff = scale.ensure_users()
        # Each app's reference rows (e.g. the desk's categories and SLA policies),
        # then its datasets, after those of the apps it builds on.
        prepared = [
            (c, c.scale.prepare(staff) if c.scale.prepare else Reference())
            for c in seeding.contributions()
        ]
        size = options["size"]
        plans = [scale.build_sql(d) for c, _ in prepared for d in c.scale.datasets]
        signature = scale.make_signature(size, staff, [r for _, r in prepared], plans)
        scale.ensure_state_table()
        state = scale.read_state()
        if not options["rebuild"] and all(
            state.get(p.dataset.name, {}).get("signature") == signature for p in plans
        ):
            self.stdout.write(
                self.style.SUCCESS(f"bench data at size {size} reused ({name})")
            )
            return
        self._build(plans, staff, size, signature, prepared)
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
        staff: Staff,
        size: str,
        sig: str,
        prepared: list[tuple[seeding.Contribution, Reference]],
    ) -> None:
        tables = [p.table for p in plans if p.table]
        emptied = list(scale.ALSO_EMPTIED)
        for contribution, _ in prepared:
            emptied += contribution.scale.also_emptied
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
            for contribution, reference in prepared:
                lookups = contribution.scale.lookups
                if lookups is None:
                    continue
                t0 = time.monotonic()
                lookups(cursor, staff, size, reference)
                label = contribution.scale.lookups_label or (
                    f"{contribution.app_label} lookup tables"
                )
                self.stdout.write(f"  {label}: {time.monotonic() - t0:.1f} s")
            if tables:
                # Also what points at the old rows' ids: actions, notifications, audit.
                everything = tables + [t for t in emptied if t not in tables]
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
            scale.write_state(cursor, dataset.name, size, 0, sig, 0.0, plan.missing)
            return
        t0 = time.monotonic()
        indexes = scale.drop_secondary_indexes(cursor, plan.table)
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
        scale.write_state(
            cursor, dataset.name, size, rows, sig, time.monotonic() - t0, ""
        )
