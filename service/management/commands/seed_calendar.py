"""manage.py seed_calendar --year 2027 [--year 2028] [--file days.csv]

Seeds the working calendar: default business hours when there are none, and the
official public holidays and 调休 working weekends of each year, from the
chinese-calendar package. Days already set are kept (an admin's edits win), so it can
run again safely.

The package knows the years up to its release; for a later year (the State Council
publishes each plan in the November before) the command refuses and says so, rather
than guess. Give such a year as a file instead: UTF-8 CSV rows `date,kind,note`,
kind `holiday`/`休` or `workday`/`班`, e.g. `2027-10-01,holiday,国庆节`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from service import calendar_data

FIRST_YEAR, LAST_YEAR = 2000, 2199


class Command(BaseCommand):
    help = "Seed China's public holidays and 调休 days for the given years (or a file)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--year", type=int, action="append", default=[], help="e.g. 2027"
        )
        parser.add_argument(
            "--file", type=Path, help="CSV of date,kind,note for years not known"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        years: list[int] = options["year"]
        path: Path | None = options["file"]
        if not years and path is None:
            raise CommandError("Give --year YEAR (repeatable) or --file days.csv.")
        for year in years:
            if not FIRST_YEAR <= year <= LAST_YEAR:
                raise CommandError(f"--year {year} is out of range.")
        if path is not None:
            try:
                days = calendar_data.read_calendar_file(path)
            except (OSError, ValueError) as exc:
                raise CommandError(f"{path}: {exc}") from exc
            file_years = {day.date.year for day in days}
            if years and not file_years <= set(years):
                raise CommandError(
                    f"{path} has days of {sorted(file_years - set(years))}, "
                    f"not only of --year {years}."
                )
            added = calendar_data.calendar_seed_days(days)
            self.stdout.write(
                f"{path}: {len(days)} days read, {added} added "
                f"(years {sorted(file_years)}); days already set were kept."
            )
            return
        known = calendar_data.known_years()
        unknown = [year for year in years if year not in known]
        if unknown:
            newest = max(known)
            raise CommandError(
                f"No official holiday data for {unknown}: the installed "
                f"chinese-calendar package knows {min(known)}-{newest}. Nothing was "
                "changed. Upgrade the package once the State Council has published "
                "the plan, or give the days as a file: --file days.csv with rows "
                "date,kind,note (kind holiday/休 or workday/班)."
            )
        added = calendar_data.calendar_seed(years=years)
        self.stdout.write(
            f"Years {years}: {added} holidays and 调休 days added; "
            "days already set were kept."
        )
