"""Reads for customer pages; each returns everything its page needs in a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from customers.models import Customer

SORTS = {
    "recent": ("-updated_at", "-id"),
    "name": ("name", "id"),
    "created": ("-created_at", "-id"),
}


def customer_list(*, user: Any, query: str = "", sort: str = "recent") -> QuerySet:
    customers = Customer.objects.visible_to(user).select_related("owner", "team")
    query = query.strip()
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        condition = Q(name__icontains=query)
        if digits and len(digits) >= 3:
            condition |= Q(phone__contains=digits)
        customers = customers.filter(condition)
    return customers.order_by(*SORTS.get(sort, SORTS["recent"]))


def customer_history(*, customer: Customer, limit: int = 50) -> list:
    """The audit trail of one customer, newest first, with the acting user's name."""
    import pghistory.models

    events = pghistory.models.Events.objects.tracks(customer).order_by(
        "-pgh_created_at"
    )[:limit]
    rows = list(events)
    user_ids = {
        (row.pgh_context or {}).get("user") for row in rows if row.pgh_context
    } - {None}
    from django.contrib.auth import get_user_model

    names = {u.pk: str(u) for u in get_user_model().objects.filter(pk__in=user_ids)}
    for row in rows:
        context = row.pgh_context or {}
        row.actor = names.get(context.get("user"), "")
    return rows
