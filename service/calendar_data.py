"""Seeds the working calendar: Mon-Fri business hours and China's public holidays and
adjusted working days (调休) from the chinese-calendar package. After seeding they are
ordinary rows an admin edits (e.g. when the State Council publishes next year's plan)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path

from django.db import transaction

from crm.core import bounds
from service.models import CalendarDay, WorkingPeriod

HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}
DEFAULT_HOURS = [(time(9, 0), time(12, 0)), (time(13, 30), time(18, 0))]


@transaction.atomic
def calendar_seed(*, years: list[int] | None = None) -> int:
    """Create default hours (if none) and the holiday rows for `years`; returns days added."""
    import chinese_calendar

    if not WorkingPeriod.objects.exists():
        WorkingPeriod.objects.bulk_create(
            WorkingPeriod(weekday=day, start=start, end=end)
            for day in range(5)
            for start, end in DEFAULT_HOURS
        )
    added = 0
    for day, name in chinese_calendar.holidays.items():
        if (years is None or day.year in years) and day.weekday() < 5:
            _, created = CalendarDay.objects.get_or_create(
                date=day,
                defaults={
                    "is_working": False,
                    "note": HOLIDAY_NAMES.get(name, name or ""),
                },
            )
            added += created
    for day, name in chinese_calendar.workdays.items():
        if (years is None or day.year in years) and day.weekday() >= 5:
            _, created = CalendarDay.objects.get_or_create(
                date=day,
                defaults={
                    "is_working": True,
                    "note": f"{HOLIDAY_NAMES.get(name, name or '')}调休",
                },
            )
            added += created
    return added


def known_years() -> set[int]:
    """Years whose official holidays and 调休 the chinese-calendar package knows (the
    State Council publishes each year's plan in the November before)."""
    import chinese_calendar

    return {day.year for day in chinese_calendar.holidays}


@dataclass(frozen=True)
class FileDay:
    date: date
    is_working: bool
    note: str


FILE_KINDS = {"holiday": False, "休": False, "workday": True, "班": True}


def read_calendar_file(path: Path) -> list[FileDay]:
    """Rows `date,kind,note` (UTF-8 CSV; kind is holiday/休 or workday/班; a header
    row and blank lines are skipped). Raises ValueError naming the bad line."""
    days: list[FileDay] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip() or row[0].strip() == "date":
                continue
            if len(row) < 2:
                raise ValueError(f"line {number}: expected date,kind[,note]")
            try:
                day = date.fromisoformat(row[0].strip())
            except ValueError as exc:
                raise ValueError(f"line {number}: bad date {row[0]!r}") from exc
            kind = row[1].strip().lower()
            if kind not in FILE_KINDS:
                raise ValueError(
                    f"line {number}: kind must be holiday/休 or workday/班, "
                    f"not {row[1]!r}"
                )
            if not bounds.BUSINESS_DATE_MIN <= day <= bounds.BUSINESS_DATE_MAX:
                raise ValueError(f"line {number}: date out of range {day}")
            note = (row[2].strip() if len(row) > 2 else "")[:50]
            days.append(FileDay(day, FILE_KINDS[kind], note))
    return days


@transaction.atomic
def calendar_seed_days(days: list[FileDay]) -> int:
    """Add the file's days that are not set yet (an admin's edits are kept)."""
    added = 0
    for day in days:
        _, created = CalendarDay.objects.get_or_create(
            date=day.date, defaults={"is_working": day.is_working, "note": day.note}
        )
        added += created
    return added
