"""Delete security audit rows older than the retention period (never less than 3 years).

The audit table refuses DELETE (trigger `kehu_append_only`, crm/core/append_only.py).
This command runs as the table's owner and, in one transaction, disables the trigger,
deletes, and enables it again. ALTER TABLE holds an ACCESS EXCLUSIVE lock until the
commit, so no other session can write or delete while the trigger is off, and a failure
anywhere rolls the trigger back on.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from crm.core.append_only import TRIGGER

# PIPL Art. 55-56: processing records (reveals, exports) are kept at least 3 years.
MINIMUM_DAYS = 1095
TABLE = "core_accesslog"


class Command(BaseCommand):
    help = "Delete audit rows older than KEHU_AUDIT_RETENTION_DAYS (>= 1095 days)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001 - Django's parser
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: object, days: int | None, dry_run: bool, **options) -> None:
        days = settings.KEHU_AUDIT_RETENTION_DAYS if days is None else days
        if days < MINIMUM_DAYS:
            raise CommandError(
                f"Audit rows are kept at least {MINIMUM_DAYS} days; {days} refused."
            )
        cutoff = timezone.now() - dt.timedelta(days=days)
        with transaction.atomic(), connection.cursor() as cursor:
            if dry_run:
                cursor.execute(
                    f"SELECT count(*) FROM {TABLE} WHERE created_at < %s",  # noqa: S608  # nosec B608 - constant table name
                    [cutoff],
                )
                count = cursor.fetchone()[0]
            else:
                # Deferred foreign-key checks queued earlier in this transaction would
                # make ALTER TABLE fail; run them now.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE created_at < %s",  # noqa: S608  # nosec B608 - constant table name
                    [cutoff],
                )
                count = cursor.rowcount
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"{verb} {count} audit rows older than {cutoff:%Y-%m-%d}")
