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
_SERVICE_WORK = [
    "service.view_ticket",
    "service.add_ticket",
    "service.change_ticket",
    "service.add_workorder",
    "service.view_asset",
    "service.add_asset",
]
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.SALES: [
        *_CUSTOMER_WORK,
        "customers.reveal_customer_pii",
        "service.view_ticket",
        "service.add_ticket",
        "service.view_asset",
    ],
    Role.SERVICE: [
        "customers.view_customer",
        "customers.add_contactlog",
        "customers.view_contactlog",
        *_SERVICE_WORK,
    ],
    Role.MANAGER: [
        *_CUSTOMER_WORK,
        "customers.reveal_customer_pii",
        "customers.reassign_customer",
        "customers.export_customer",
        "customers.import_customer",
        "customers.merge_customer",
        "accounts.view_team_report",
        *_SERVICE_WORK,
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
        *_SERVICE_WORK,
    ],
}
