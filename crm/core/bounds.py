"""Bounded values: the sane domain range of every date, datetime, number, id and text
that a request may carry, checked in one place.

Three layers use it:
- form fields (`DateField`, `DateTimeField`, and `formfield` as every ModelForm's
  `Meta.formfield_callback`, which also gives integer fields their column's range):
  out of range is a form error in Chinese;
- `Params`, the reader of `request.GET` that every view uses: a value out of range is
  a 400 page saying which parameter (`BadParameter`, answered by
  `BadParameterMiddleware` without a traceback in the log), an unknown id a 404, and a
  page number is clamped, as the paginator would;
- database check constraints (`date_in_range`, `datetime_in_range`) on every business
  date and datetime column a user can set: the backstop when some path forgets.

Why bother: PostgreSQL stores dates from 4713 BC, Python reads only years 1-9999, so
a stored `0001-01-01` (0001-12-31 BC once moved to UTC) made every page that showed
it answer 500; a `9999-12-31` overflowed the first `+ timedelta`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# --- the domain ranges --------------------------------------------------------------------

# Appointments, follow-ups, deadlines, deliveries, audit filters.
BUSINESS_DATE_MIN = dt.date(2000, 1, 1)
BUSINESS_DATE_MAX = dt.date(2199, 12, 31)
# A person's birth date (from an ID number): 1900 up to today.
BIRTH_DATE_MIN = dt.date(1900, 1, 1)
# Row ids are bigint (PostgreSQL's bigserial).
ID_MIN, ID_MAX = 1, 2**63 - 1
# A list never shows more than crm.core.pagination.MAX_COUNT rows; 10,000 pages is
# far beyond any list and far inside any integer.
PAGE_MAX = 10_000
# A GET parameter that is free text (a search, a body carried over) is at most this
# long unless the caller says otherwise; searches are 100 characters everywhere.
TEXT_MAX = 200
SEARCH_MAX = 100
# A text area without a column limit (notes, descriptions) takes at most this much:
# pages of notes, not megabytes.
TEXTAREA_MAX = 20_000
INT_MAX = 2**31 - 1
# The database constraints allow one day more on each side than the forms, so that a
# form value in any time zone always fits the UTC column.
_SLACK = dt.timedelta(days=1)
DB_DATETIME_MIN = dt.datetime.combine(BUSINESS_DATE_MIN - _SLACK, dt.time.min, dt.UTC)
DB_DATETIME_MAX = dt.datetime.combine(BUSINESS_DATE_MAX + _SLACK, dt.time.max, dt.UTC)

DATE_MESSAGE = _("日期须在 %(min)s 至 %(max)s 之间。")
DATETIME_MESSAGE = _("时间须在 %(min)s 至 %(max)s 之间。")
# The constraints' message: a literal, as a model's Meta is built before translations.
RANGE_MESSAGE = _("日期须在 2000-01-01 至 2199-12-31 之间。")


def today() -> dt.date:
    return timezone.localdate()


def _resolve(value: dt.date | Callable[[], dt.date]) -> dt.date:
    return value() if callable(value) else value


def local_bounds(
    min_date: dt.date, max_date: dt.date
) -> tuple[dt.datetime, dt.datetime]:
    """The first and last moment of a date range, in the current time zone."""
    zone = timezone.get_current_timezone()
    return (
        dt.datetime.combine(min_date, dt.time.min, zone),
        dt.datetime.combine(max_date, dt.time(23, 59, 59, 999999), zone),
    )


# --- form fields --------------------------------------------------------------------------


class _InRange:
    """A date or datetime field bounded by `min_value` and `max_value` (dates, or
    callables giving one), business dates by default; the browser's picker gets the
    same bounds. Subclasses say how the bounds are computed, written and explained."""

    picker_type: str
    picker_format: str
    shown_format: str
    message: Any

    def __init__(
        self,
        *,
        min_value: dt.date | Callable[[], dt.date] = BUSINESS_DATE_MIN,
        max_value: dt.date | Callable[[], dt.date] = BUSINESS_DATE_MAX,
        **kwargs: Any,
    ) -> None:
        self.min_value, self.max_value = min_value, max_value
        super().__init__(**kwargs)

    def bounds(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        if getattr(widget, "input_type", "") == self.picker_type:
            low, high = self.bounds()
            attrs.update(
                min=low.strftime(self.picker_format),
                max=high.strftime(self.picker_format),
            )
        return attrs

    def validate(self, value: Any) -> None:
        super().validate(value)
        low, high = self.bounds()
        if value is not None and not low <= value <= high:
            raise ValidationError(
                self.message,
                code="out_of_range",
                params={
                    "min": low.strftime(self.shown_format),
                    "max": high.strftime(self.shown_format),
                },
            )


class DateField(_InRange, forms.DateField):
    """A date between `min_value` and `max_value`."""

    picker_type = "date"
    picker_format = shown_format = "%Y-%m-%d"
    message = DATE_MESSAGE

    def bounds(self) -> tuple[dt.date, dt.date]:
        return _resolve(self.min_value), _resolve(self.max_value)


class DateTimeField(_InRange, forms.DateTimeField):
    """A moment between the first minute of `min_value` and the last of `max_value`
    (dates, in the current time zone)."""

    picker_type = "datetime-local"
    picker_format = "%Y-%m-%dT%H:%M"
    shown_format = "%Y-%m-%d %H:%M"
    message = DATETIME_MESSAGE

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        return local_bounds(_resolve(self.min_value), _resolve(self.max_value))


def integer_range(db_field: models.Field) -> tuple[int, int]:
    """The range PostgreSQL accepts in an integer column of this kind."""
    low, high = connection.ops.integer_field_range(db_field.get_internal_type())
    return (0 if low is None else low), (ID_MAX if high is None else high)


def formfield(db_field: models.Field, **kwargs: Any) -> forms.Field | None:
    """`Meta.formfield_callback` of every ModelForm: dates and datetimes get the
    business range, integers their column's range (a 20-digit number is a form error,
    not a DataError)."""
    if isinstance(db_field, models.DateTimeField):
        kwargs.setdefault("form_class", DateTimeField)
    elif isinstance(db_field, models.DateField):
        kwargs.setdefault("form_class", DateField)
    elif isinstance(db_field, models.IntegerField) and not db_field.choices:
        low, high = integer_range(db_field)
        kwargs.setdefault("min_value", low)
        kwargs.setdefault("max_value", high)
    elif isinstance(db_field, models.TextField) and not db_field.max_length:
        kwargs.setdefault("max_length", TEXTAREA_MAX)
    return db_field.formfield(**kwargs)


def integer_field(
    *, min_value: int, max_value: int, **kwargs: Any
) -> forms.IntegerField:
    """An IntegerField that must say its range (the field inventory test checks)."""
    return forms.IntegerField(min_value=min_value, max_value=max_value, **kwargs)


def version_field(*, min_value: int = 0, **kwargs: Any) -> forms.IntegerField:
    """The hidden row version of an optimistic-lock form (a PositiveIntegerField)."""
    kwargs.setdefault("widget", forms.HiddenInput)
    return forms.IntegerField(min_value=min_value, max_value=INT_MAX, **kwargs)


# --- database check constraints -----------------------------------------------------------


def date_in_range(*fields: str, name: str) -> models.CheckConstraint:
    """Every named date column is null or a business date."""
    return _in_range(fields, name, BUSINESS_DATE_MIN, BUSINESS_DATE_MAX)


def datetime_in_range(*fields: str, name: str) -> models.CheckConstraint:
    """Every named datetime column is null or within a business date (a day of slack
    on each side for the time zone)."""
    return _in_range(fields, name, DB_DATETIME_MIN, DB_DATETIME_MAX)


def _in_range(
    fields: Iterable[str], name: str, low: Any, high: Any
) -> models.CheckConstraint:
    condition = models.Q()
    for field in fields:
        condition &= models.Q(**{f"{field}__isnull": True}) | models.Q(
            **{f"{field}__gte": low, f"{field}__lte": high}
        )
    return models.CheckConstraint(
        condition=condition,
        name=name,
        violation_error_message=RANGE_MESSAGE,
    )


# --- GET parameters -----------------------------------------------------------------------


def as_id(raw: Any) -> int | None:
    """`raw` as a row id, or None: ASCII digits only ("¹".isdigit() is true, and
    int("¹") raises), within 1 .. 2^63-1."""
    text = str(raw or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if ID_MIN <= value <= ID_MAX else None


class BadParameter(Exception):  # noqa: N818 - reads as what it is, like Http404
    """A GET parameter outside its domain: answered 400 with `message`, not a 500."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class BadParameterMiddleware:
    """Turns BadParameter into a 400 page naming the problem. Django would log a raised
    BadRequest with its traceback; a returned 400 is one warning line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not isinstance(exception, BadParameter):
            return None
        return render(request, "400.html", {"message": exception.message}, status=400)


def _clean_text(name: str, raw: str, max_length: int) -> str:
    if "\x00" in raw:
        raise BadParameter(
            name, gettext("参数 %(name)s 含有非法字符。") % {"name": name}
        )
    if len(raw) > max_length:
        raise BadParameter(
            name,
            gettext("参数 %(name)s 不能超过 %(n)s 个字。")
            % {"name": name, "n": max_length},
        )
    return raw


class Params:
    """`request.GET` read through the domain ranges: each reader returns a clean
    value or the default for a missing one, and raises BadParameter (400) for a value
    out of range, Http404 for an id that cannot name a row."""

    def __init__(self, data: QueryDict | dict) -> None:
        self.data = data

    def _raw(self, name: str) -> str:
        value = self.data.get(name, "")
        return value if isinstance(value, str) else str(value)

    def text(self, name: str, *, max_length: int = TEXT_MAX, default: str = "") -> str:
        raw = self._raw(name)
        return _clean_text(name, raw, max_length) if raw else default

    def search(self, name: str = "q") -> str:
        """A search box's text, stripped, NUL dropped (searches always ignored it),
        at most 100 characters like every search form."""
        raw = self._raw(name).replace("\x00", "")
        return _clean_text(name, raw, SEARCH_MAX).strip()

    def choice(self, name: str, choices: Iterable[str], *, default: str = "") -> str:
        """One of `choices`; anything else (an old bookmark) falls back to `default`."""
        raw = self._raw(name)
        return raw if raw in set(choices) else default

    def flag(self, name: str, value: str = "1") -> bool:
        return self._raw(name) == value

    def integer(
        self, name: str, *, min_value: int, max_value: int, default: int | None = None
    ) -> int | None:
        raw = self._raw(name).strip()
        if not raw:
            return default
        if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 20:
            raise BadParameter(
                name, gettext("参数 %(name)s 必须是整数。") % {"name": name}
            )
        value = int(raw)
        if not min_value <= value <= max_value:
            raise BadParameter(
                name,
                gettext("参数 %(name)s 须在 %(min)s 至 %(max)s 之间。")
                % {"name": name, "min": min_value, "max": max_value},
            )
        return value

    def id(self, name: str) -> int | None:
        """A row id, or None if absent; a value that cannot be an id is a 404, like
        an id in the path that names no row."""
        raw = self._raw(name).strip()
        if not raw:
            return None
        value = as_id(raw)
        if value is None:
            raise Http404
        return value

    def page(self, name: str = "page") -> int:
        """A page number: anything unreadable is the first page, never an error; one
        past the end is the paginator's to answer (a redirect to the last page)."""
        raw = self._raw(name).strip()
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
            return 1
        return min(max(int(raw), 1), PAGE_MAX)

    def date(
        self,
        name: str,
        *,
        min_value: dt.date = BUSINESS_DATE_MIN,
        max_value: dt.date = BUSINESS_DATE_MAX,
    ) -> dt.date | None:
        raw = self._raw(name).strip()
        if not raw:
            return None
        return parse_date(raw, name=name, min_value=min_value, max_value=max_value)

    def datetime(self, name: str) -> dt.datetime | None:
        raw = self._raw(name).strip()
        if not raw:
            return None
        return parse_datetime(raw, name=name)


def parse_date(
    raw: str,
    *,
    name: str,
    min_value: dt.date = BUSINESS_DATE_MIN,
    max_value: dt.date = BUSINESS_DATE_MAX,
) -> dt.date:
    try:
        value = dt.date.fromisoformat(_clean_text(name, raw, 40))
    except ValueError as error:
        raise BadParameter(
            name, gettext("参数 %(name)s 不是有效的日期。") % {"name": name}
        ) from error
    if not min_value <= value <= max_value:
        raise BadParameter(
            name,
            DATE_MESSAGE % {"min": min_value.isoformat(), "max": max_value.isoformat()},
        )
    return value


def parse_datetime(raw: str, *, name: str) -> dt.datetime:
    """An ISO datetime within the business dates; a naive one is local time."""
    try:
        value = dt.datetime.fromisoformat(_clean_text(name, raw, 40))
    except ValueError as error:
        raise BadParameter(
            name, gettext("参数 %(name)s 不是有效的时间。") % {"name": name}
        ) from error
    low, high = local_bounds(BUSINESS_DATE_MIN, BUSINESS_DATE_MAX)
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        in_range = low <= value <= high
    except (OverflowError, ValueError):
        in_range = False
    if not in_range:
        raise BadParameter(
            name,
            DATETIME_MESSAGE
            % {
                "min": low.strftime("%Y-%m-%d %H:%M"),
                "max": high.strftime("%Y-%m-%d %H:%M"),
            },
        )
    return value


def params(request: HttpRequest) -> Params:
    return Params(request.GET)
