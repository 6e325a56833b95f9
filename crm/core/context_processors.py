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
        items.append(
            {"label": item.label, "url": url, "active": active, "group": item.group}
        )
    # Nested URLs (/service/workorders/ under /service/): only the closest item is active.
    active = [item for item in items if item["active"]]
    for item in active:
        item["active"] = not any(
            other["url"] != item["url"] and other["url"].startswith(item["url"])
            for other in active
        )
    return {"nav_items": _grouped(items)}


def _grouped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items of one group become one dropdown entry where the first of them stood;
    a group the role sees only one item of stays a plain item."""
    sizes: dict[str, int] = {}
    for item in items:
        if item["group"]:
            sizes[item["group"]] = sizes.get(item["group"], 0) + 1
    entries: list[dict[str, Any]] = []
    dropdowns: dict[str, dict[str, Any]] = {}
    for item in items:
        key = item["group"]
        if not key or sizes[key] < 2:
            entries.append(item)
            continue
        if key not in dropdowns:
            dropdowns[key] = {
                "label": registry.GROUPS[key],
                "group": key,
                "children": [],
                "active": False,
            }
            entries.append(dropdowns[key])
        dropdowns[key]["children"].append(item)
        dropdowns[key]["active"] |= item["active"]
    return entries
