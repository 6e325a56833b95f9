"""The four staff roles. Each is a Django group of the same name holding its permissions."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    SALES = "sales", _("销售")
    SERVICE = "service", _("客服")
    MANAGER = "manager", _("经理")
    ADMIN = "admin", _("管理员")


# Model permissions (app_label.codename) granted to each role's group; the data
# migration and `seed_demo` both apply this table, so it is the one place to change.
_CUSTOMER_WORK = [
    "customers.view_customer",
    "customers.add_customer",
    "customers.change_customer",
    "customers.add_contactlog",
    "customers.view_contactlog",
    "customers.add_followup",
    "customers.change_followup",
]
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.SALES: [*_CUSTOMER_WORK, "customers.reveal_customer_pii"],
    Role.SERVICE: [
        "customers.view_customer",
        "customers.add_contactlog",
        "customers.view_contactlog",
    ],
    Role.MANAGER: [
        *_CUSTOMER_WORK,
        "customers.reveal_customer_pii",
        "customers.reassign_customer",
        "customers.export_customer",
        "customers.import_customer",
        "customers.merge_customer",
        "accounts.view_team_report",
    ],
    Role.ADMIN: [
        *_CUSTOMER_WORK,
        "customers.delete_customer",
        "customers.reveal_customer_pii",
        "customers.reassign_customer",
        "customers.export_customer",
        "customers.import_customer",
        "customers.merge_customer",
        "accounts.view_team_report",
        "accounts.view_user",
        "accounts.view_team",
    ],
}
