"""manage.py culture_report --week 2026-W49 [--to addr] [--pdf file] [--as username]:
the weekly culture report by hand (culture/scorecard/weekly_report.py).

Without --to or --pdf it sends the week's report to every manager, exactly as the
scheduled action does (once per manager and week: a second run sends nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from culture.scorecard import weekly_report


class Command(BaseCommand):
    help = "Render or send the weekly culture report (每周文化报告) of one ISO week."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--week", help="YYYY-Www, default: last week")
        parser.add_argument("--to", help="send one copy to this address only")
        parser.add_argument("--pdf", help="write the PDF to this file only")
        parser.add_argument(
            "--as",
            dest="as_user",
            help="whose view of the scorecard (default: the first manager)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["week"] or weekly_report.last_week_key()
        try:
            weekly_report.week_days(key)
        except ValueError as exc:
            raise CommandError(f"--week must look like 2026-W49, not {key!r}") from exc
        if options["to"] or options["pdf"]:
            user = self._viewer(options["as_user"])
            if options["pdf"]:
                report = weekly_report.report_data(user=user, key=key)
                Path(options["pdf"]).write_bytes(weekly_report.render_pdf(report))
                self.stdout.write(f"{key}: {options['pdf']}")
            if options["to"]:
                weekly_report.send_address(key, options["to"], as_user=user)
                self.stdout.write(f"{key}: sent to {options['to']}")
            return
        sent = weekly_report.send(key)
        self.stdout.write(f"{key}: {sent} e-mail(s) sent")

    def _viewer(self, username: str | None) -> Any:
        if username:
            try:
                return get_user_model().objects.get(username=username)
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"no user {username!r}") from exc
        managers = weekly_report.recipients()
        if not managers:
            raise CommandError("no manager to view the scorecard as: pass --as")
        return managers[0]
