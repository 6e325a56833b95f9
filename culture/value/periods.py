"""The periods a value page may show: a calendar month, quarter or year, from 2000 up
to the current one (bounded: anything else is a 400 via bounds.BadParameter)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext as _

from crm.core import bounds

KINDS = ("month", "quarter", "year")
FIRST_YEAR = 2000


@dataclass(frozen=True)
class Period:
    kind: str
    start: date  # first day
    end: date  # first day after

    @property
    def key(self) -> str:
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year}"

    @property
    def label(self) -> str:
        if self.kind == "month":
            return _("%(y)s年%(m)s月") % {"y": self.start.year, "m": self.start.month}
        if self.kind == "quarter":
            return _("%(y)s年第%(q)s季度") % {
                "y": self.start.year,
                "q": (self.start.month - 1) // 3 + 1,
            }
        return _("%(y)s年") % {"y": self.start.year}

    def previous(self) -> Period:
        months = _length(self.kind)
        return _make(self.kind, add_months(self.start, -months))

    def next(self) -> Period:
        return _make(self.kind, add_months(self.start, _length(self.kind)))


def _length(kind: str) -> int:
    return {"month": 1, "quarter": 3, "year": 12}[kind]


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _make(kind: str, start: date) -> Period:
    return Period(kind, start, add_months(start, _length(kind)))


def containing(kind: str, day: date) -> Period:
    if kind == "month":
        return _make(kind, date(day.year, day.month, 1))
    if kind == "quarter":
        return _make(kind, date(day.year, (day.month - 1) // 3 * 3 + 1, 1))
    return _make(kind, date(day.year, 1, 1))


_PATTERNS = {
    "month": re.compile(r"^(\d{4})-(\d{1,2})$"),
    "quarter": re.compile(r"^(\d{4})-Q([1-4])$"),
    "year": re.compile(r"^(\d{4})$"),
}


def _bad_period() -> bounds.BadParameter:
    return bounds.BadParameter(
        "p", _("期间须为 2000 年以来、不晚于本期的月份、季度或年份。")
    )


def parse(kind: str | None, key: str | None, *, today: date | None = None) -> Period:
    """The period `?kind=&p=` names; none given: the current month (quarter, year).
    A period after the current one or before 2000 is a 400."""
    today = today or bounds.today()
    kind = kind or "month"
    if kind not in KINDS:
        raise bounds.BadParameter("kind", _("参数 kind 须为 month、quarter 或 year。"))
    current = containing(kind, today)
    if not key:
        return current
    match = _PATTERNS[kind].match(key)
    if not match:
        raise _bad_period()
    year = int(match.group(1))
    part = int(match.group(2)) if kind != "year" else 1
    if kind == "month" and not 1 <= part <= 12:
        raise _bad_period()
    month = part if kind == "month" else (part - 1) * 3 + 1 if kind == "quarter" else 1
    if year < FIRST_YEAR:
        raise _bad_period()
    period = _make(kind, date(year, month, 1))
    if period.start > current.start:
        raise _bad_period()
    return period


def recent(kind: str, *, today: date | None = None, count: int = 12) -> list[Period]:
    """The current period and those before it, newest first (the picker's choices)."""
    period = containing(kind, today or bounds.today())
    out = []
    for _i in range(count):
        if period.start.year < FIRST_YEAR:
            break
        out.append(period)
        period = period.previous()
    return out
