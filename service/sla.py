"""Business-time arithmetic for SLAs: working hours by weekday, holidays and 调休 as data.

`BusinessCalendar.load()` reads the WorkingPeriod rows and the CalendarDay overrides once;
its methods are then pure, so tests can build a calendar by hand and fix the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.utils import timezone

# A deadline more than this far away means the calendar has no working time: refuse.
MAX_DAYS = 400


@dataclass
class BusinessCalendar:
    # weekday (0 = Monday) -> sorted (start, end) periods of an ordinary day
    periods: dict[int, list[tuple[time, time]]]
    # date -> True (working, e.g. a 调休 Saturday) / False (holiday)
    overrides: dict[date, bool] = field(default_factory=dict)

    @classmethod
    def load(cls) -> BusinessCalendar:
        from service.models import CalendarDay, WorkingPeriod

        periods: dict[int, list[tuple[time, time]]] = {}
        for period in WorkingPeriod.objects.order_by("weekday", "start"):
            periods.setdefault(period.weekday, []).append((period.start, period.end))
        overrides = dict(CalendarDay.objects.values_list("date", "is_working"))
        return cls(periods=periods, overrides=overrides)

    def day_periods(self, day: date) -> list[tuple[time, time]]:
        working = self.overrides.get(day)
        if working is False:
            return []
        if working is True and not self.periods.get(day.weekday()):
            # A 调休 weekend is worked with an ordinary weekday's hours (Monday's).
            return self.periods.get(0, [])
        return self.periods.get(day.weekday(), [])

    def _windows(self, start: datetime):  # noqa: ANN202 - generator of (start, end)
        tz = timezone.get_current_timezone()
        day = timezone.localtime(start, tz).date()
        for _ in range(MAX_DAYS):
            for begin, end in self.day_periods(day):
                yield (
                    timezone.make_aware(datetime.combine(day, begin), tz),
                    timezone.make_aware(datetime.combine(day, end), tz),
                )
            day += timedelta(days=1)

    def add_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment `minutes` of business time after `start`."""
        remaining = timedelta(minutes=minutes)
        for begin, end in self._windows(start):
            if end <= start:
                continue
            segment_start = max(begin, start)
            available = end - segment_start
            if remaining <= available:
                return segment_start + remaining
            remaining -= available
        raise ValueError(f"no working time in the calendar within {MAX_DAYS} days")

    def minutes_between(self, start: datetime, end: datetime) -> int:
        """Business minutes in [start, end); negative when end is before start."""
        if end < start:
            return -self.minutes_between(end, start)
        total = timedelta()
        for begin, finish in self._windows(start):
            if begin >= end:
                break
            overlap = min(finish, end) - max(begin, start)
            if overlap > timedelta():
                total += overlap
        return int(total.total_seconds() // 60)


class RoundTheClock:
    """The 24×7 calendar: every minute counts (a trapped lift cannot wait for Monday)."""

    def add_minutes(self, start: datetime, minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    def minutes_between(self, start: datetime, end: datetime) -> int:
        """Whole minutes in [start, end); negative when end is before start."""
        if end < start:
            return -self.minutes_between(end, start)
        return int((end - start).total_seconds() // 60)


ROUND_THE_CLOCK = RoundTheClock()
Calendar = BusinessCalendar | RoundTheClock


def calendar_for(policy: object, business: BusinessCalendar | None = None) -> Calendar:
    """The calendar a policy counts on: 24×7, or business hours (`business`, loaded
    when not given). No policy counts business hours, as before calendars existed."""
    if getattr(policy, "is_round_the_clock", False):
        return ROUND_THE_CLOCK
    return business if business is not None else BusinessCalendar.load()
