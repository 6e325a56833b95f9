"""The reads behind the deal pages, the pipeline board and the customer page's panel.

Every page runs a fixed number of queries whatever the number of deals: the list is
bounded (crm/core/pagination.py), the board shows the newest BOARD_CARDS cards per
column in one UNION ALL query and its totals in one GROUP BY query.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Upper
from django.utils import timezone

from crm.core.pagination import MAX_COUNT, RowsInIdOrder
from culture.deals.models import (
    Deal,
    DealStage,
    DealStageChange,
    OpenDealTotal,
    Payment,
    WonDealDay,
    scope_branches,
    scoped_to,
)
from customers import search
from customers import selectors as customer_selectors
from customers.models import Customer

# About one screen's height; the column's link lists the rest. Each card costs ~0.6 ms
# of CPU (its row, its template), measured at full size: 20 a column made the page
# 84 ms of CPU, 10 make it 57 ms.
BOARD_CARDS = 10
CARD_FIELDS = (
    "title",
    "amount",
    "version",
    "stage_id",
    "updated_at",
    "customer__name",
    "owner__display_name",
    "owner__first_name",
    "owner__last_name",
    "owner__username",
)
# Won deals stay on the board's won columns this long after closing.
BOARD_WON_DAYS = 30
# Customers matched by a name search of the deal list (the newest first).
SEARCH_CUSTOMERS = 500
# A search's matches are first gathered by its own indexes, scope aside, up to this
# many: fewer are put in list order by primary key; more are dense enough for the
# sort's index to find a page of them after a few rows.
SEARCH_MATCHES = 2_000
# At most this many one-value scope branches (a manager's department: its teams and
# people) are walked one by one (_one_value_branches).
MAX_BRANCHES = 100
# A title search PostgreSQL expects to match this many deals or more goes straight
# to the sort's index (_dense_by_title): ten times SEARCH_MATCHES, as the estimate
# comes from a sample.
DENSE_ESTIMATE = 20_000
SORTS = {
    "recent": ("-updated_at", "-id"),
    "amount": ("-amount", "-id"),
    "amount_asc": ("amount", "id"),
    "expected": ("expected_close_on", "id"),
    "created": ("-created_at", "-id"),
}


def stages(*, active_only: bool = True) -> list[DealStage]:
    rows = DealStage.objects.order_by("position", "id")
    return list(rows.filter(is_active=True) if active_only else rows)


def owner_choices(*, user: Any) -> QuerySet:
    """People whose deals `user` may filter by: the same scope as customers."""
    return customer_selectors.owner_choices(user=user)


def team_choices(*, user: Any) -> QuerySet:
    return customer_selectors.team_choices(user=user)


def channel_choices(*, user: Any) -> QuerySet:
    from culture.deals.builder import CHANNEL_KINDS

    return (
        Customer.objects.visible_to(user)
        .filter(kind__in=CHANNEL_KINDS, merged_into__isnull=True)
        .order_by("name")
    )


def _title_condition(query: str, *, dense: bool = False) -> Q:
    """The title part of a search: its pieces (index deal_title_grams) and, for three
    characters or more, the query itself in the title (its pieces in this order).

    `dense`: the search matches more than SEARCH_MATCHES deals and the statement is
    to walk the sort's index, testing rows. The title is then tested by its text
    alone: deal_recent holds it (no row fetched), and statistics object
    deal_title_upper estimates it as it is. PostgreSQL multiplies the pieces' shares
    as if they were independent (翠湖 and 湖湾, 12 % of the deals each, 1.4 %
    together; really 12 %), and at 1.4 % it sorted a bitmap of the scope's 37,215
    matches (2 s) instead of walking 2,000 rows (4 ms)."""
    in_order = Q(title_upper__contains=query.upper())
    if dense:
        return in_order
    pieces = Q(title_grams__contains=search.name_grams(query))
    return pieces & in_order if len(query) > 2 else pieces


def _search(deals: QuerySet, query: str, *, dense: bool = False) -> QuerySet:
    """Title (_title_condition) or the customer's (or channel's) name, pinyin or
    initials. Not phones: the list's address carries the search, and phone numbers
    stay out of addresses (customers/search.py)."""
    condition = _title_condition(query, dense=dense)
    is_phone = search.PHONE_QUERY.match(search.normalise(query))
    by_customer = None if is_phone else search.condition(query)
    if by_customer is not None:
        ids = list(
            search.annotate_for(Customer.objects.all(), query)
            .filter(by_customer)
            .order_by("-id")
            .values_list("pk", flat=True)[:SEARCH_CUSTOMERS]
        )
        condition |= Q(customer_id__in=ids) | Q(channel_id__in=ids)
    return deals.annotate(title_upper=Upper("title")).filter(condition)


def deal_list(
    *, user: Any, filters: dict[str, Any], sort: str = "recent"
) -> QuerySet | RowsInIdOrder:
    """The visible deals matching `filters` (cleaned by forms.DealFilterForm).

    A range filter (expected date, amount) under a sort on another column is answered
    in two steps (see _ranged_ids); every other combination walks the index of its
    sort (or of its filter) directly."""
    order = SORTS.get(sort, SORTS["recent"])
    shown = ("customer", "channel", "stage", "owner")
    if filters.get("q"):
        matched = (
            None
            if _dense_by_title(filters)
            else _few_matches(_filtered(Deal.objects.all(), filters))
        )
        if matched is not None:
            ids = (
                Deal.objects.visible_to(user)
                .filter(pk__in=matched)
                .order_by(*order)
                .values_list("pk", flat=True)[: MAX_COUNT + 1]
            )
            return RowsInIdOrder(list(ids), Deal.objects.select_related(*shown))
    # Past the gathering, a search is dense: the sort's index is walked.
    deals = _filtered(Deal.objects.all(), filters, dense=bool(filters.get("q")))
    branches = scope_branches(user) or []
    if _range_off_the_sort(filters, order):
        branches = _one_value_branches(branches)
    elif not (_by_status(filters) and _one_value_each(branches)):
        branches = []
    if branches:
        # The ids in list order, then only the page's rows by primary key: sorted
        # again by the sort's columns, PostgreSQL would walk the sort's index testing
        # each row against the ids (the same skew).
        ids = _ranged_ids(deals, branches, order)
        return RowsInIdOrder(ids, Deal.objects.select_related(*shown))
    return deals.visible_to(user).select_related(*shown).order_by(*order)


def _dense_by_title(filters: dict[str, Any]) -> bool:
    """Whether PostgreSQL expects the search's title alone, under the other filters
    (scope aside), to match DENSE_ESTIMATE deals or more: then the matches are not
    gathered (_few_matches), which for 翠湖湾 (374,557 deals) read both pieces' whole
    lists of the GIN index (89 ms) to learn that there are more than 2,000. The
    estimate is a plan's, no row is read; the customer-name part is left out because
    its estimate (500 ids against the skewed channel column) runs high."""
    others = {name: value for name, value in filters.items() if name != "q"}
    deals = _filtered(Deal.objects.all(), others).annotate(title_upper=Upper("title"))
    condition = _title_condition(filters["q"], dense=True)
    plan = json.loads(deals.filter(condition).order_by().explain(format="json"))
    return plan[0]["Plan"]["Plan Rows"] >= DENSE_ESTIMATE


def _few_matches(deals: QuerySet) -> list[int] | None:
    """The ids of a search's matches (every filter but the scope) when there are at
    most SEARCH_MATCHES, else None.

    Unsorted and bounded, PostgreSQL finds few matches by the search's own indexes
    and many by a read that stops early. Sorted and scoped in one statement, a rare
    name (a customer's, "王伟") walked the whole sort index testing every deal: 23 s at
    3,000,000 deals, and its bounded count read every row (4 s)."""
    ids = list(deals.order_by().values_list("pk", flat=True)[: SEARCH_MATCHES + 1])
    return ids if len(ids) <= SEARCH_MATCHES else None


def _filtered(
    deals: QuerySet, filters: dict[str, Any], *, dense: bool = False
) -> QuerySet:
    simple = {
        "stage": "stage",
        "status": "status",
        "owner": "owner",
        "team": "team",
        "channel": "channel",
        "customer": "customer",
    }
    for name, lookup in simple.items():
        if filters.get(name):
            deals = deals.filter(**{lookup: filters[name]})
    if filters.get("amount_min") is not None:
        deals = deals.filter(amount__gte=filters["amount_min"])
    if filters.get("amount_max") is not None:
        deals = deals.filter(amount__lte=filters["amount_max"])
    if filters.get("expected_from"):
        deals = deals.filter(expected_close_on__gte=filters["expected_from"])
    if filters.get("expected_to"):
        deals = deals.filter(expected_close_on__lte=filters["expected_to"])
    if filters.get("q"):
        deals = _search(deals, filters["q"], dense=dense)
    return deals


# The range filters and the sort column each is served by (deal_*_expected,
# deal_*_amount: the scope's column, then the range's, covering the sort keys).
RANGES = {
    "expected_close_on": ("expected_from", "expected_to"),
    "amount": ("amount_min", "amount_max"),
}


def _by_status(filters: dict[str, Any]) -> bool:
    """A status filter, without a stage or a search. Counted in one unsorted
    statement, PostgreSQL read the table in its physical order until 1,001 matches:
    the open deals are the newest, at the table's end, so `status=open` read 882,084
    rows first (290 ms from disk, the list's p95 359 ms). The scope's branch indexes
    include the status and stop at 1,001 matches in the sort's order (10 ms). Not
    with a stage: open deals of the won stages are few, and the branches read far
    (89 ms against 34 ms by the stage's partial index)."""
    return (
        bool(filters.get("status"))
        and not filters.get("stage")
        and not filters.get("q")
    )


def _one_value_branches(branches: list[Q]) -> list[Q]:
    """The branches as one column equal to one value each: a list branch (a
    manager's: the department's teams, its people) is read, one query, and split into
    a branch per value. Empty when that would make more than MAX_BRANCHES, or for a
    branch of another shape (the list is then one statement).

    Walked whole, a list branch sorted its matches; one branch per value walks its
    own index in order. A manager's "expected in 2026": 356 ms through the list
    branches, 439 ms in one statement (the skew), 87 ms through 31 one-value
    branches, at full size."""
    split: dict[tuple[str, Any], Q] = {}
    for branch in branches:
        if len(branch.children) != 1 or not isinstance(branch.children[0], tuple):
            return []
        lookup, value = branch.children[0]
        column, _, operator = lookup.partition("__")
        if column not in ("owner", "team") or operator not in ("", "in"):
            return []
        if not operator:
            split[(column, getattr(value, "pk", value))] = branch
            continue
        if hasattr(value, "values_list"):
            value = value.values_list("pk", flat=True)[: MAX_BRANCHES + 1]
        for one in list(value)[: MAX_BRANCHES + 1]:
            split[(column, getattr(one, "pk", one))] = Q(**{column: one})
        if len(split) > MAX_BRANCHES:
            return []
    return list(split.values())


def _one_value_each(branches: list[Q]) -> bool:
    """Every branch is one column equal to one value (owner = me, team = my team), so
    its index walks in the sort's order. A manager's branches (the department's teams,
    its people) are lists: each branch sorted its matches, 0.5-0.9 s at full size
    where the one statement took 10 ms (status=open)."""
    return all(
        len(branch.children) == 1
        and isinstance(branch.children[0], tuple)
        and "__" not in branch.children[0][0]
        for branch in branches
    )


def _range_off_the_sort(filters: dict[str, Any], order: tuple[str, ...]) -> bool:
    """A range filter on a column the list is not sorted by. Walking the sort's index
    and testing the range row by row reads until enough rows match, which PostgreSQL
    cannot foresee when the two columns are correlated (the newest deals all expect
    to close next year: 98,798 rows read for a page of 2026 at full size)."""
    sorted_by = order[0].lstrip("-")
    return not filters.get("q") and any(
        column != sorted_by
        and any(filters.get(name) not in (None, "") for name in names)
        for column, names in RANGES.items()
    )


def _ranged_ids(
    deals: QuerySet, branches: list[Q], order: tuple[str, ...]
) -> list[int]:
    """The first MAX_COUNT + 1 ids in list order (all a bounded list can show and
    count): each branch of the scope (owner = me, team = my team, …) walks its own
    index in the sort's order (`deal_<owner|team>_recent`, `_amount`, `_expected`),
    testing the range in the index (the indexes include the range columns: no row
    is fetched to be rejected), takes its first MAX_COUNT + 1, and the branches are
    united (UNION: a deal in two branches once) and sorted. The OR of the branches
    walked the company-wide `deal_recent` and fetched every row it tested."""
    keys = list(dict.fromkeys(["id", *(key.lstrip("-") for key in order)]))
    parts = [
        deals.filter(branch).order_by(*order).values_list(*keys)[: MAX_COUNT + 1]
        for branch in branches
    ]
    united = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    return [row[0] for row in united.order_by(*order)[: MAX_COUNT + 1]]


@dataclass
class Column:
    stage: DealStage
    count: int = 0
    total: Decimal = Decimal(0)
    cards: list[Deal] = field(default_factory=list)
    previous: DealStage | None = None
    next: DealStage | None = None

    @property
    def has_more(self) -> bool:
        return self.count > len(self.cards)


def _board_deals(user: Any, filters: dict[str, Any]) -> QuerySet:
    """The deals the board may show: the user's scope and the owner/team filters
    (each column adds its own status condition)."""
    deals = Deal.objects.visible_to(user)
    if filters.get("owner"):
        deals = deals.filter(owner=filters["owner"])
    if filters.get("team"):
        deals = deals.filter(team=filters["team"])
    return deals


def _column_totals(
    user: Any, filters: dict[str, Any], stage_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """Count and ¥ total per column: the open deals from OpenDealTotal and the deals
    won in the last BOARD_WON_DAYS days from WonDealDay (both kept by triggers on
    deals_deal: a few rows per owner, per day for the wins). One query."""
    since = timezone.localdate() - dt.timedelta(days=BOARD_WON_DAYS)
    open_totals = scoped_to(OpenDealTotal.objects.all(), user).filter(
        stage__in=stage_ids
    )
    won = scoped_to(WonDealDay.objects.all(), user).filter(
        stage__in=stage_ids, closed_on__gte=since
    )
    if filters.get("owner"):
        open_totals = open_totals.filter(owner=filters["owner"])
        won = won.filter(owner=filters["owner"])
    if filters.get("team"):
        open_totals = open_totals.filter(team=filters["team"])
        won = won.filter(team=filters["team"])
    rows = (
        open_totals.order_by()
        .values("stage")
        .annotate(n=Sum("deals"), t=Sum("amount"))
        .union(
            won.order_by().values("stage").annotate(n=Sum("deals"), t=Sum("amount")),
            all=True,
        )
    )
    totals: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = totals.setdefault(row["stage"], {"n": 0, "t": Decimal(0)})
        entry["n"] += row["n"] or 0
        entry["t"] += row["t"] or Decimal(0)
    return totals


def board(
    *, user: Any, filters: dict[str, Any], only: list[int] | None = None
) -> list[Column]:
    """The pipeline board: one column per active stage with its count, ¥ total and
    newest BOARD_CARDS cards. `only` limits it to some stages' columns (a move
    re-renders the two columns it touched). Three queries whatever the data size."""
    all_stages = stages()
    columns = [Column(stage=s) for s in all_stages]
    for i, column in enumerate(columns):
        column.previous = all_stages[i - 1] if i > 0 else None
        column.next = all_stages[i + 1] if i + 1 < len(all_stages) else None
    if only is not None:
        columns = [c for c in columns if c.stage.pk in only]
    if not columns:
        return []
    ids = [c.stage.pk for c in columns]
    totals = _column_totals(user, filters, ids)
    since = timezone.localdate() - dt.timedelta(days=BOARD_WON_DAYS)
    scoped = _board_deals(user, filters)
    # Per column, one status condition that an index answers in order: an open
    # stage walks deal_open_stage (stage, -updated_at) and stops after BOARD_CARDS
    # rows; a won stage walks deal_won_stage_closed (newest closing first) and stops
    # at `since`, even when the stage holds a million older wins.
    # The combined OR of the two read and sorted every open deal (seconds at 1M).
    parts = [
        (
            scoped.filter(
                stage=c.stage.pk, status=Deal.Status.WON, closed_on__gte=since
            ).order_by("-closed_on", "-id")
            if c.stage.is_won
            else scoped.filter(stage=c.stage.pk, status=Deal.Status.OPEN).order_by(
                "-updated_at", "-id"
            )
        ).values_list("pk", flat=True)[:BOARD_CARDS]
        for c in columns
    ]
    card_ids = list(parts[0].union(*parts[1:], all=True)) if parts else []
    cards = (
        Deal.objects.filter(pk__in=card_ids)
        .select_related("customer", "owner")
        # What a card shows (deals/_deal_card.html): the customer and user rows are
        # wide, and ~100 cards' unused columns were a fifth of the page's CPU.
        .only(*CARD_FIELDS)
        .order_by("-updated_at", "-id")
    )
    by_stage: dict[int, list[Deal]] = {}
    for deal in cards:
        by_stage.setdefault(deal.stage_id, []).append(deal)
    for column in columns:
        row = totals.get(column.stage.pk)
        if row:
            column.count, column.total = row["n"], row["t"] or Decimal(0)
        column.cards = by_stage.get(column.stage.pk, [])
    return columns


def deal_page(*, deal: Deal) -> dict[str, Any]:
    """The detail page: stage history and payments (bounded, newest first)."""
    return {
        "deal": deal,
        "history": list(
            DealStageChange.objects.filter(deal=deal)
            .select_related("from_stage", "to_stage", "by")
            .order_by("-at", "-id")[:50]
        ),
        "payments": list(
            Payment.objects.filter(deal=deal)
            .select_related("created_by")
            .order_by("-received_on", "-id")[:100]
        ),
        "stages": stages(),
    }


def channel_revenue(customer: Customer) -> Decimal:
    """Payments on deals that flowed through `customer` as channel: the channel's own
    figure, shown beside and never added to its 累计成交额."""
    total = Payment.objects.filter(channel=customer).aggregate(t=Sum("amount"))
    return total["t"] or Decimal(0)


def customer_panel(*, user: Any, customer: Customer) -> dict[str, Any]:
    """The customer page's deals panel: the newest deals (as customer or channel)
    that `user` may see, and the channel revenue for a channel customer."""
    from culture.deals.builder import CHANNEL_KINDS

    visible = Deal.objects.visible_to(user)
    deals = list(
        visible.filter(customer=customer)
        .select_related("stage")
        .order_by("-updated_at", "-id")[:5]
    )
    is_channel = customer.kind in CHANNEL_KINDS
    return {
        "customer": customer,
        "deals": deals,
        "is_channel": is_channel,
        "channel_revenue": channel_revenue(customer) if is_channel else None,
        "can_add": user.has_perm("deals.add_deal") and not customer.merged_into_id,
    }
