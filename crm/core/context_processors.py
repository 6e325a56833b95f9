from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from crm.core import navigation as registry


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    role = user.role
    items = []
    for item in registry.items():
        if role not in item.roles or (item.needs_team and not user.team_id):
            continue
        url = reverse(item.url_name)
        active = request.path == url or (
            item.url_name != "home" and request.path.startswith(url)
        )
        items.append({"label": item.label, "url": url, "active": active})
    # Nested URLs (/service/workorders/ under /service/): only the closest item is active.
    active = [item for item in items if item["active"]]
    for item in active:
        item["active"] = not any(
            other["url"] != item["url"] and other["url"].startswith(item["url"])
            for other in active
        )
    return {"nav_items": items}
