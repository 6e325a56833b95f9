"""What each role's home page shows, each in a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from crm.accounts.models import Team, User
from customers.models import Customer


def sales_home(*, user: Any) -> dict[str, Any]:
    from customers import selectors as customer_selectors

    return customer_selectors.my_day(user=user)


def service_home(*, user: Any) -> dict[str, Any]:
    """The agent's queue summary: my open tickets by deadline, breaching, unassigned."""
    from service import selectors as service_selectors

    return service_selectors.desk_summary(user=user)


def manager_home(*, user: Any) -> dict[str, Any]:
    visible = Customer.objects.visible_to(user)
    by_owner = list(
        visible.values("owner__username", "owner__display_name")
        .annotate(
            total=Count("id"),
            key_accounts=Count("id", filter=Q(is_key_account=True)),
            customers=Count("id", filter=Q(stage=Customer.Stage.CUSTOMER)),
        )
        .order_by("-total")[:20]
    )
    by_stage = dict(
        visible.values_list("stage").annotate(n=Count("id")).values_list("stage", "n")
    )
    stages = [
        (label, by_stage.get(value, 0)) for value, label in Customer.Stage.choices
    ]
    return {"by_owner": by_owner, "stages": stages}


def admin_home(*, user: Any) -> dict[str, Any]:
    teams = list(
        Team.objects.select_related("department", "lead")
        .annotate(member_count=Count("members"))
        .order_by("department__name", "name")
    )
    return {
        "teams": teams,
        "user_count": User.objects.filter(is_active=True).count(),
        "customer_count": Customer.objects.count(),
    }
