"""What each role may do at the service desk (crm/accounts/roles.py applies it)."""

from __future__ import annotations

from crm.accounts.roles import Role, grant

SERVICE_WORK = (
    "service.view_ticket",
    "service.add_ticket",
    "service.change_ticket",
    "service.add_workorder",
    "service.view_asset",
    "service.add_asset",
)


def grant_all() -> None:
    # Sales log a customer's complaint and see its progress, and see the assets.
    grant(Role.SALES, "service.view_ticket", "service.add_ticket", "service.view_asset")
    for role in (Role.SERVICE, Role.MANAGER, Role.ADMIN):
        grant(role, *SERVICE_WORK)
