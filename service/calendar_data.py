"""Seeds the working calendar: Mon-Fri business hours and China's public holidays and
adjusted working days (调休) from the chinese-calendar package. After seeding they are
ordinary rows an admin edits (e.g. when the State Council publishes next year's plan)."""

from __future__ import annotations

from datetime import time

from django.db import transaction

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
