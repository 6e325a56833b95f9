from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.accounts.roles import Role

# (label, url name, roles that see it); the same table drives the role-aware navbar.
NAVIGATION = [
    (_("首页"), "home", tuple(Role.values)),
    (
        pgettext_lazy("navigation", "客户"),
        "customers:customer_list",
        tuple(Role.values),
    ),
    (
        _("服务台"),
        "service:ticket_queue",
        (Role.SERVICE, Role.MANAGER, Role.ADMIN, Role.SALES),
    ),
    (_("入伙"), "handover:event_list", tuple(Role.values)),
    # Shown only to users in a team (every team belongs to a department).
    (_("后台工单"), "service:workorder_list", tuple(Role.values)),
    (_("系统管理"), "admin:index", (Role.ADMIN,)),
]
NEEDS_DEPARTMENT = {"service:workorder_list"}


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    role = user.role
    items = [
        {
            "label": label,
            "url": reverse(name),
            "active": request.path == reverse(name)
            or (name != "home" and request.path.startswith(reverse(name))),
        }
        for label, name, roles in NAVIGATION
        if role in roles and (name not in NEEDS_DEPARTMENT or user.team_id)
    ]
    # Nested URLs (/service/workorders/ under /service/): only the closest item is active.
    active = [item for item in items if item["active"]]
    for item in active:
        item["active"] = not any(
            other["url"] != item["url"] and other["url"].startswith(item["url"])
            for other in active
        )
    return {"nav_items": items}
