"""The four staff roles. Each is a Django group of the same name holding its permissions.

Which permissions each role holds is declared by the app that owns them, in its
`AppConfig.ready()` (`roles.grant(Role.SALES, "customers.view_customer", ...)`), so the
platform names no domain permission; `services.roles_sync()` applies the table after every
migrate and in `seed_demo`.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    SALES = "sales", _("销售")
    SERVICE = "service", _("客服")
    MANAGER = "manager", _("经理")
    ADMIN = "admin", _("管理员")


# Model permissions (app_label.codename) granted to each role's group.
_granted: dict[str, set[str]] = {role: set() for role in Role}


def grant(role: str, *permissions: str) -> None:
    """Give `role` these permissions (idempotent)."""
    for name in permissions:
        label, dot, codename = name.partition(".")
        if not (label and dot and codename):
            raise ValueError(f"not app_label.codename: {name!r}")
    _granted[role].update(permissions)


def permissions_of(role: str) -> list[str]:
    return sorted(_granted[role])


# The platform's own: team reports for managers and admins, user and team lists for admins.
grant(Role.MANAGER, "accounts.view_team_report")
grant(
    Role.ADMIN, "accounts.view_team_report", "accounts.view_user", "accounts.view_team"
)
