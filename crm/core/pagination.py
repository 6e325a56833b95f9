"""Bounded pagination: lists of a million rows never pay for an exact COUNT(*)."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.utils.functional import cached_property

MAX_COUNT = 1_000


class BoundedPaginator(Paginator):
    """Counts at most MAX_COUNT rows (one LIMITed query); pages past that are refused.

    The count drops the ORDER BY: sorted, PostgreSQL would walk the sort index and
    fetch every row to test the filters; unsorted, it can use the filters' own indexes.
    `is_capped` tells the template to show "1,000+" instead of an exact total.
    """

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: MAX_COUNT + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > MAX_COUNT

    @property
    def max_count(self) -> int:
        return MAX_COUNT


def paginate(queryset: object, page_number: str | None, per_page: int = 25) -> Page:
    return BoundedPaginator(queryset, per_page).get_page(page_number)
