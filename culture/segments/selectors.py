"""Reads for the segment pages, each in a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from culture.segments import rules
from culture.segments.models import Segment, SegmentMember, SegmentMembershipEvent
from customers import masking
from customers.models import Customer

# The live count stops here: "more than 100,000" is all an editor needs to know,
# and counting further costs time on every keystroke.
COUNT_CAP = 1_000_000
MEMBERS_PAGE = 50
HISTORY_ROWS = 50


def live_count(*, user: Any, tree: dict) -> int:
    """How many customers `user` may see match a validated tree (one query)."""
    return (
        Customer.objects.visible_to(user)
        .filter(merged_into__isnull=True)
        .filter(rules.compile_q(tree))
        .count()
    )


def segment_list(*, user: Any) -> QuerySet:
    return (
        Segment.objects.visible_to(user).select_related("owner").order_by("name", "id")
    )


def members_page(
    *, user: Any, segment: Segment, after: int | None = None
) -> dict[str, Any]:
    """One keyset page of the members `user` may see, by customer id, phones masked
    for roles that may not see them (one query; one more row tells if there is more)."""
    members = (
        Customer.objects.visible_to(user)
        .filter(merged_into__isnull=True, segment_memberships__segment=segment)
        .select_related("owner")
        .only(
            "pk",
            "name",
            "kind",
            "tier",
            "stage",
            "phone",
            "province",
            "city",
            "owner__username",
            "owner__display_name",
            "owner__first_name",
            "owner__last_name",
        )
        .order_by("pk")
    )
    if after:
        members = members.filter(pk__gt=after)
    rows = list(members[: MEMBERS_PAGE + 1])
    has_more = len(rows) > MEMBERS_PAGE
    rows = rows[:MEMBERS_PAGE]
    can_see_pii = masking.can_see_pii(user)
    for row in rows:
        row.shown_phone = row.phone if can_see_pii else masking.mask_phone(row.phone)
    return {
        "rows": rows,
        "next_after": rows[-1].pk if has_more else None,
        "after": after,
    }


def visible_member_count(*, user: Any, segment: Segment) -> int:
    return (
        Customer.objects.visible_to(user)
        .filter(merged_into__isnull=True, segment_memberships__segment=segment)
        .count()
    )


def history(*, user: Any, segment: Segment) -> list[SegmentMembershipEvent]:
    """The latest entries and exits of customers `user` may see."""
    visible = Customer.objects.visible_to(user).values("pk")
    return list(
        SegmentMembershipEvent.objects.filter(segment=segment, customer__in=visible)
        .select_related("customer")
        .only("id", "action", "at", "reason", "customer__id", "customer__name")
        .order_by("-at", "-id")[:HISTORY_ROWS]
    )


def search_customers(*, user: Any, query: str) -> QuerySet:
    """Customers `user` may see by name (any part) or phone (digits anywhere)."""
    from customers import search

    customers = Customer.objects.visible_to(user).filter(merged_into__isnull=True)
    condition = search.condition(query, with_members=False)
    if condition is None:
        return customers.none()
    return search.annotate_for(customers, query).filter(condition)


def is_member_ids(*, segment: Segment, ids: list[int]) -> set[int]:
    return set(
        SegmentMember.objects.filter(segment=segment, customer_id__in=ids).values_list(
            "customer_id", flat=True
        )
    )
