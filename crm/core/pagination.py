"""Bounded pagination: lists of a million rows never pay for an exact COUNT(*).

What it says is what it knows. A list counts at most MAX_COUNT + 1 rows: up to
MAX_COUNT the total and the number of pages are exact; past it the list shows its
first MAX_COUNT rows and says "1,000+" (at least that many), never a page count it
cannot know. A page number past the last page is not quietly answered with the last
page: `paginate` raises PageOutOfRange and `PageOutOfRangeMiddleware` redirects to the
last page with a message saying so (one place for every list).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext

MAX_COUNT = 1_000


class RowsInIdOrder:
    """A list whose first MAX_COUNT + 1 ids are already known, in list order.

    What a two-step list (ids first, then rows) hands to `paginate`: the count is the
    ids', and a page reads only its own slice of rows, by primary key, in the ids'
    order. Sorting the rows of all MAX_COUNT + 1 ids again (joined to what each row
    shows) to take 25 of them was the last statement of such a list, and its slowest.
    """

    def __init__(self, ids: list[int], rows: QuerySet) -> None:
        self.ids = ids[: MAX_COUNT + 1]
        self.rows = rows

    def __len__(self) -> int:
        return len(self.ids)

    def count(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: slice) -> list:
        wanted = self.ids[index]
        found = {row.pk: row for row in self.rows.filter(pk__in=wanted)}
        # A row deleted between the two statements is simply not shown.
        return [found[pk] for pk in wanted if pk in found]


class PageOutOfRange(Exception):  # noqa: N818 - reads as what it is, like Http404
    """A page number past the last page of a list."""

    def __init__(self, asked: int, last: int, *, capped: bool, max_count: int) -> None:
        super().__init__(f"page {asked} > {last}")
        self.asked = asked
        self.last = last
        self.capped = capped
        self.max_count = max_count


class BoundedPaginator(Paginator):
    """Counts at most MAX_COUNT + 1 rows (one LIMITed query) and pages through at most
    MAX_COUNT of them.

    The count drops the ORDER BY: sorted, PostgreSQL would walk the sort index and
    fetch every row to test the filters; unsorted, it can use the filters' own indexes.
    `count` is the number of rows the pages show (at most MAX_COUNT); `is_capped`
    tells the templates that there are more, so that they show "1,000+" instead of an
    exact total and no "of N pages".
    """

    @cached_property
    def bounded_count(self) -> int:
        """The matching rows, counted up to MAX_COUNT + 1."""
        if isinstance(self.object_list, RowsInIdOrder):
            return self.object_list.count()
        return self.object_list.order_by()[: MAX_COUNT + 1].count()

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return min(self.bounded_count, MAX_COUNT)

    @property
    def is_capped(self) -> bool:
        return self.bounded_count > MAX_COUNT

    @property
    def max_count(self) -> int:
        return MAX_COUNT

    @cached_property
    def num_pages(self) -> int:  # type: ignore[override]
        if self.count == 0 and not self.allow_empty_first_page:
            return 0
        return max(1, math.ceil(max(1, self.count - self.orphans) / self.per_page))


def paginate(
    queryset: object, page_number: str | int | None, per_page: int = 25
) -> Page:
    """The page asked for; the first for a number that does not read as one, and
    PageOutOfRange (a redirect to the last page, with a message) past the end."""
    paginator = BoundedPaginator(queryset, per_page)
    try:
        number = int(page_number or 1)
    except (TypeError, ValueError):
        number = 1
    number = max(number, 1)
    if number > 1 and number > paginator.num_pages:
        raise PageOutOfRange(
            number,
            paginator.num_pages,
            capped=paginator.is_capped,
            max_count=MAX_COUNT,
        )
    return paginator.page(number)


def out_of_range_message(error: PageOutOfRange) -> str:
    if error.capped:
        return gettext(
            "第 %(asked)s 页超出可显示的范围：列表至少有 %(max)s 条，只显示前 %(max)s 条"
            "（%(last)s 页），已转到最后一页。请缩小筛选范围。"
        ) % {
            "asked": error.asked,
            "max": number_format(error.max_count, force_grouping=True),
            "last": error.last,
        }
    return gettext("没有第 %(asked)s 页：共 %(last)s 页，已转到最后一页。") % {
        "asked": error.asked,
        "last": error.last,
    }


def last_page_url(request: HttpRequest, last: int, name: str = "page") -> str:
    query = request.GET.copy()
    query[name] = str(last)
    return f"{request.path}?{urlencode(list(query.lists()), doseq=True)}"


class PageOutOfRangeMiddleware:
    """Turns PageOutOfRange into a redirect to the list's last page (the other query
    parameters kept) with a message saying the page asked for does not exist. An htmx
    request is sent to the whole page (HX-Redirect), where the message is shown."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not isinstance(exception, PageOutOfRange):
            return None
        messages.warning(request, out_of_range_message(exception))
        url = last_page_url(request, exception.last)
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return HttpResponseRedirect(url)
