"""What each role may do with customers (crm/accounts/roles.py applies it)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied

from crm.accounts.roles import Role, grant

CUSTOMER_WORK = (
    "customers.view_customer",
    "customers.add_customer",
    "customers.change_customer",
    "customers.add_contactlog",
    "customers.view_contactlog",
    "customers.add_followup",
    "customers.change_followup",
)
# Managers and admins also move, export, import and merge customers.
CUSTOMER_STEWARDSHIP = (
    "customers.reveal_customer_pii",
    "customers.reassign_customer",
    "customers.export_customer",
    "customers.import_customer",
    "customers.merge_customer",
)

# Unverified contacts: the desk registers unknown callers and verifies them.
CALLER_INTAKE = ("customers.register_caller", "customers.verify_customer")


def grant_all() -> None:
    grant(Role.SALES, *CUSTOMER_WORK, "customers.reveal_customer_pii")
    # The service desk finds the caller and logs the call; an unknown caller it
    # registers as an unverified contact (only that, on the new-ticket page), and it
    # verifies such contacts so that they reach sales.
    grant(
        Role.SERVICE,
        "customers.view_customer",
        "customers.add_contactlog",
        "customers.view_contactlog",
        *CALLER_INTAKE,
    )
    grant(Role.MANAGER, *CUSTOMER_WORK, *CUSTOMER_STEWARDSHIP, *CALLER_INTAKE)
    grant(
        Role.ADMIN,
        *CUSTOMER_WORK,
        *CUSTOMER_STEWARDSHIP,
        *CALLER_INTAKE,
        "customers.delete_customer",
    )


# Import and export for sales: off unless KEHU_SALES_IMPORT_EXPORT is set. Read at
# each check (not a grant), so switching the setting needs no roles_sync; approving
# other people's export requests stays with managers and admins (has_perm).
SALES_IMPORT_EXPORT = ("customers.import_customer", "customers.export_customer")


def may(user: Any, perm: str) -> bool:
    """`user.has_perm(perm)`, and for salespeople import and export when the
    organisation allows it (KEHU_SALES_IMPORT_EXPORT)."""
    if user.has_perm(perm):
        return True
    return (
        perm in SALES_IMPORT_EXPORT
        and settings.KEHU_SALES_IMPORT_EXPORT
        and getattr(user, "role", None) == Role.SALES
    )


def require(user: Any, perm: str) -> None:
    if not may(user, perm):
        raise PermissionDenied
