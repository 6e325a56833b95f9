"""Who sees which deals: the owner/team scope of crm/accounts/access.py.

Sales see their own deals and what their scope allows (their team's by default),
managers their department's, admins all. The service desk and accounts without a role
have no deal pages (403). A deal or payment outside the scope is a 404, so its
existence is not revealed.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from crm.accounts import access
from crm.accounts.roles import Role, grant
from culture.deals.models import Deal, Payment

DEAL_WORK = (
    "deals.view_deal",
    "deals.add_deal",
    "deals.change_deal",
    "deals.view_payment",
    "deals.add_payment",
    "deals.delete_payment",
)
STAGE_SETTINGS = (
    "deals.view_dealstage",
    "deals.add_dealstage",
    "deals.change_dealstage",
)


def grant_all() -> None:
    grant(Role.SALES, *DEAL_WORK)
    grant(Role.MANAGER, *DEAL_WORK, "deals.import_deal")
    grant(Role.ADMIN, *DEAL_WORK, "deals.import_deal", *STAGE_SETTINGS)


def can_see_deals(user: Any) -> bool:
    return user.is_authenticated and user.has_perm("deals.view_deal")


def require(user: Any, perm: str) -> None:
    """403 (audited) for a role without `perm`."""
    if not user.has_perm(perm):
        from crm.core import audit

        audit.record_denial(None, audit.DENIED_ROLE)
        raise PermissionDenied


def deals_for(user: Any) -> Any:
    return Deal.objects.visible_to(user)


def get_deal_for(user: Any, pk: Any, *, write: bool = False) -> Deal:
    """The deal if `user` may see it (403 for a role without deals, 404 outside the
    scope); `write` also needs the right to change deals."""
    require(user, "deals.change_deal" if write else "deals.view_deal")
    return access.get_object_for(
        deals_for(user).select_related("customer", "channel", "stage", "owner", "team"),
        pk,
    )


def get_payment_for(user: Any, pk: Any, *, deal: Deal) -> Payment:
    require(user, "deals.delete_payment")
    return access.get_object_for(
        Payment.objects.visible_to(user).filter(deal=deal).select_related("deal"), pk
    )
