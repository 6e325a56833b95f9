"""Delete the rows and files of imports that finished more than the retention period
ago (KEHU_IMPORT_RETENTION_DAYS); each import's summary (the job and its counts) stays.

The daily customers job runs the same purge (customers/tasks.py); this command is for
running it at once, or with a shorter period (`--days`).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from customers import imports


class Command(BaseCommand):
    help = "Purge import rows and files older than KEHU_IMPORT_RETENTION_DAYS."

    def add_arguments(self, parser) -> None:  # noqa: ANN001 - Django's parser
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args: object, days: int | None, **options: object) -> None:
        if days is not None and days < 0:
            raise CommandError("--days must be 0 or more.")
        result = imports.import_jobs_purge_retained(days=days)
        self.stdout.write(f"imports purged: {result['imports_purged']}")
