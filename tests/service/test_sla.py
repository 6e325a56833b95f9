"""Business-time arithmetic (service/sla.py) and the seeded working calendar.

The arithmetic is tested on hand-built calendars (no database); the seeding and the
"holidays are data" promise against PostgreSQL. All times are Asia/Shanghai.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from service import calendar_data
from service.models import CalendarDay, WorkingPeriod
from service.sla import BusinessCalendar

SH = ZoneInfo("Asia/Shanghai")
HOURS = [(time(9, 0), time(12, 0)), (time(13, 30), time(18, 0))]
DAY_MINUTES = 450  # 3 h before lunch + 4.5 h after


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SH)


# 2026-03-02 is a Monday with no holiday near it.
MON = date(2026, 3, 2)
TUE = date(2026, 3, 3)
FRI = date(2026, 3, 6)
SAT = date(2026, 3, 7)
NEXT_MON = date(2026, 3, 9)
# National Day 2026: Thu 10-01 to Wed 10-07 off; Sun 09-20 and Sat 10-10 worked (调休).
NATIONAL_DAY = {date(2026, 10, d): False for d in range(1, 8)} | {
    date(2026, 9, 20): True,
    date(2026, 10, 10): True,
}


def china_calendar() -> BusinessCalendar:
    return BusinessCalendar(
        periods={weekday: list(HOURS) for weekday in range(5)},
        overrides=dict(NATIONAL_DAY),
    )


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        pytest.param(at(MON, 9, 30), 60, at(MON, 10, 30), id="within-a-morning"),
        pytest.param(at(MON, 9, 30, 45), 1, at(MON, 9, 31, 45), id="keeps-seconds"),
        pytest.param(at(MON, 11, 0), 60, at(MON, 12, 0), id="ends-at-lunch"),
        pytest.param(at(MON, 11, 30), 60, at(MON, 14, 0), id="across-lunch"),
        pytest.param(at(MON, 9, 0), DAY_MINUTES, at(MON, 18, 0), id="whole-day"),
        pytest.param(at(MON, 9, 0), DAY_MINUTES + 1, at(TUE, 9, 1), id="one-past-day"),
        pytest.param(at(MON, 17, 0), 120, at(TUE, 10, 0), id="across-night"),
        pytest.param(at(FRI, 17, 0), 120, at(NEXT_MON, 10, 0), id="across-weekend"),
        pytest.param(
            at(MON, 9, 0), 5 * DAY_MINUTES + 30, at(NEXT_MON, 9, 30), id="full-week"
        ),
        pytest.param(
            at(date(2026, 9, 30), 17, 0),
            120,
            at(date(2026, 10, 8), 10, 0),
            id="across-national-day",
        ),
        pytest.param(
            at(date(2026, 10, 9), 17, 0),
            120,
            at(date(2026, 10, 10), 10, 0),
            id="into-working-saturday",
        ),
        pytest.param(
            at(date(2026, 9, 19), 10, 0),
            30,
            at(date(2026, 9, 20), 9, 30),
            id="saturday-start-into-working-sunday",
        ),
        pytest.param(at(MON, 7, 0), 30, at(MON, 9, 30), id="before-opening"),
        pytest.param(at(MON, 12, 30), 30, at(MON, 14, 0), id="during-lunch"),
        pytest.param(at(MON, 20, 0), 30, at(TUE, 9, 30), id="in-the-evening"),
        pytest.param(at(SAT, 10, 0), 30, at(NEXT_MON, 9, 30), id="on-a-saturday"),
        pytest.param(
            at(date(2026, 10, 3), 10, 0),
            30,
            at(date(2026, 10, 8), 9, 30),
            id="on-a-holiday",
        ),
        pytest.param(at(MON, 10, 15), 0, at(MON, 10, 15), id="zero-in-hours"),
        pytest.param(at(MON, 20, 0), 0, at(TUE, 9, 0), id="zero-after-hours"),
        pytest.param(at(MON, 12, 0), 0, at(MON, 13, 30), id="zero-at-lunch"),
    ],
)
def test_add_minutes_counts_only_working_time(
    start: datetime, minutes: int, expected: datetime
) -> None:
    assert china_calendar().add_minutes(start, minutes) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(at(MON, 9, 0), at(MON, 18, 0), DAY_MINUTES, id="a-day"),
        pytest.param(at(MON, 11, 0), at(MON, 14, 0), 90, id="lunch-not-counted"),
        pytest.param(at(MON, 0, 0), at(NEXT_MON, 0, 0), 5 * DAY_MINUTES, id="a-week"),
        pytest.param(at(FRI, 17, 0), at(NEXT_MON, 10, 0), 120, id="weekend"),
        pytest.param(at(NEXT_MON, 10, 0), at(FRI, 17, 0), -120, id="backwards"),
        pytest.param(at(MON, 10, 0), at(MON, 10, 0), 0, id="same-instant"),
        pytest.param(at(SAT, 8, 0), at(SAT, 20, 0), 0, id="all-weekend"),
        pytest.param(
            at(date(2026, 9, 30), 17, 0),
            at(date(2026, 10, 8), 10, 0),
            120,
            id="over-national-day",
        ),
        pytest.param(
            at(date(2026, 10, 10), 0, 0),
            at(date(2026, 10, 11), 0, 0),
            DAY_MINUTES,
            id="working-saturday",
        ),
    ],
)
def test_minutes_between_counts_only_working_time(
    start: datetime, end: datetime, expected: int
) -> None:
    assert china_calendar().minutes_between(start, end) == expected


# A grid standing in for a property test (hypothesis is not installed): starts in and
# out of hours, on lunch and period edges, weekends, the holiday and both 调休 days.
GRID_STARTS = [
    at(MON, 9, 0),
    at(MON, 10, 17, 23),
    at(MON, 11, 59),
    at(MON, 12, 0),
    at(MON, 12, 45),
    at(MON, 13, 30),
    at(MON, 17, 59, 59),
    at(MON, 18, 0),
    at(MON, 23, 30),
    at(FRI, 16, 0),
    at(SAT, 11, 0),
    at(date(2026, 9, 18), 17, 0),
    at(date(2026, 9, 20), 10, 0),
    at(date(2026, 9, 30), 11, 0),
    at(date(2026, 10, 4), 9, 0),
    at(date(2026, 10, 9), 17, 45),
    at(date(2026, 10, 10), 12, 10),
]
GRID_MINUTES = [0, 1, 29, 30, 90, 179, 180, 181, 270, 450, 451, 1000, 2250, 6000]


@pytest.mark.parametrize("start", GRID_STARTS, ids=lambda s: f"{s:%m%d-%H%M%S}")
def test_minutes_between_undoes_add_minutes(start: datetime) -> None:
    calendar = china_calendar()
    results = []
    for minutes in GRID_MINUTES:
        end = calendar.add_minutes(start, minutes)
        results.append(end)
        assert calendar.minutes_between(start, end) == minutes, (start, minutes)
        assert calendar.minutes_between(end, start) == -minutes, (start, minutes)
        assert end >= start
        # Adding in two steps lands on the same moment as adding at once.
        for first in (1, 45, 200):
            if first < minutes:
                middle = calendar.add_minutes(start, first)
                assert calendar.add_minutes(middle, minutes - first) == end
    assert results == sorted(results)
    assert len(set(results[1:])) == len(results) - 1  # strictly increasing after 0


def test_a_working_weekend_uses_mondays_hours() -> None:
    calendar = BusinessCalendar(
        periods={0: [(time(8, 0), time(16, 0))], 1: [(time(10, 0), time(11, 0))]},
        overrides={SAT: True},
    )

    assert calendar.day_periods(SAT) == [(time(8, 0), time(16, 0))]
    assert calendar.add_minutes(at(SAT, 7, 0), 60) == at(SAT, 9, 0)


def test_a_calendar_without_working_time_refuses_a_deadline() -> None:
    with pytest.raises(ValueError, match="no working time"):
        BusinessCalendar(periods={}).add_minutes(at(MON, 9, 0), 1)


# --- the seeded calendar: Chinese holidays as editable rows -------------------------------


@pytest.mark.django_db
def test_calendar_seed_loads_hours_holidays_and_working_weekends() -> None:
    added = calendar_data.calendar_seed(years=[2026])

    hours = set(WorkingPeriod.objects.values_list("weekday", "start", "end"))
    assert hours == {(day, start, end) for day in range(5) for start, end in HOURS}
    national_day = dict(
        CalendarDay.objects.filter(
            date__range=(date(2026, 9, 20), date(2026, 10, 10))
        ).values_list("date", "is_working")
    )
    # Weekend holidays need no row; every weekday holiday and 调休 weekend has one.
    assert national_day == {
        date(2026, 9, 20): True,
        date(2026, 9, 25): False,  # Mid-autumn
        date(2026, 10, 1): False,
        date(2026, 10, 2): False,
        date(2026, 10, 5): False,
        date(2026, 10, 6): False,
        date(2026, 10, 7): False,
        date(2026, 10, 10): True,
    }
    assert CalendarDay.objects.get(date=date(2026, 10, 1)).note == "国庆节"
    assert CalendarDay.objects.get(date=date(2026, 10, 10)).note == "国庆节调休"
    assert added == CalendarDay.objects.count()
    assert not CalendarDay.objects.exclude(date__year=2026).exists()


@pytest.mark.django_db
def test_calendar_seed_is_idempotent_and_keeps_edits() -> None:
    calendar_data.calendar_seed(years=[2026])
    hours_before = WorkingPeriod.objects.count()
    days_before = CalendarDay.objects.count()
    CalendarDay.objects.filter(date=date(2026, 10, 10)).update(
        is_working=False, note="公司放假"
    )
    WorkingPeriod.objects.filter(weekday=4, start=time(13, 30)).update(end=time(17, 0))

    assert calendar_data.calendar_seed(years=[2026]) == 0

    assert WorkingPeriod.objects.count() == hours_before
    assert CalendarDay.objects.count() == days_before
    edited = CalendarDay.objects.get(date=date(2026, 10, 10))
    assert (edited.is_working, edited.note) == (False, "公司放假")
    assert WorkingPeriod.objects.get(weekday=4, start=time(13, 30)).end == time(17, 0)


@pytest.mark.django_db
def test_loaded_calendar_follows_the_rows_as_they_are_edited() -> None:
    calendar_data.calendar_seed(years=[2026])
    before_holiday = at(date(2026, 9, 30), 17, 0)

    assert BusinessCalendar.load().add_minutes(before_holiday, 120) == at(
        date(2026, 10, 8), 10, 0
    )
    assert BusinessCalendar.load().add_minutes(at(date(2026, 10, 9), 17, 0), 120) == at(
        date(2026, 10, 10), 10, 0
    )

    # The company adds a day off after the holiday and cancels the working Saturday.
    CalendarDay.objects.create(date=date(2026, 10, 8), is_working=False, note="公司假")
    CalendarDay.objects.filter(date=date(2026, 10, 10)).delete()

    calendar = BusinessCalendar.load()
    assert calendar.add_minutes(before_holiday, 120) == at(date(2026, 10, 9), 10, 0)
    assert calendar.add_minutes(at(date(2026, 10, 9), 17, 0), 120) == at(
        date(2026, 10, 12), 10, 0
    )
    # Shorter Friday afternoons change Friday's arithmetic only.
    WorkingPeriod.objects.filter(weekday=4, start=time(13, 30)).update(end=time(16, 0))
    calendar = BusinessCalendar.load()
    assert calendar.minutes_between(at(FRI, 0, 0), at(SAT, 0, 0)) == 330
    assert calendar.minutes_between(at(MON, 0, 0), at(TUE, 0, 0)) == DAY_MINUTES
