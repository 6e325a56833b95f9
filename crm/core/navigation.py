"""The navbar's items, registered by the apps that own the pages.

The platform adds its own (首页, 系统管理); each domain app adds its entry pages in
`AppConfig.ready()`, so a new app appears in the navbar without the platform knowing it:

    navigation.register(navigation.Item(_("入伙"), "handover:event_list", order=40))

`crm.core.context_processors.navigation` shows the items of the user's role, in order.
Items naming a `group` (one of GROUPS) share one dropdown, placed where the group's
first item would be: thirteen top-level items wrapped onto two lines at 1280 px.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import pgettext_lazy

from crm.accounts.roles import Role

ALL_ROLES = tuple(Role.values)
HANDOVER = "handover"
ANALYSIS = "analysis"
GROUPS = {
    HANDOVER: pgettext_lazy("navigation", "入伙交付"),
    ANALYSIS: pgettext_lazy("navigation", "分析"),
}


@dataclass(frozen=True)
class Item:
    label: Promise | str
    url_name: str
    roles: tuple[str, ...] = ALL_ROLES
    order: int = 100  # smaller is further left
    needs_team: bool = False  # shown only to users in a team
    group: str = ""  # a key of GROUPS: shown in that dropdown


_items: dict[str, Item] = {}


def register(item: Item) -> None:
    """Add `item` (once: a second call with its URL name replaces it)."""
    _items[item.url_name] = item


def items() -> list[Item]:
    return sorted(_items.values(), key=lambda item: (item.order, item.url_name))
