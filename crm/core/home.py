"""Each role's home page, drawn by the platform from panels that the apps register.

The platform owns the page (its title, the buttons beside the title, the order of the
panels) and knows no domain; an app adds to a role's home page in its
`AppConfig.ready()`:

    home.register(Role.SALES, home.Panel(
        name="my_day",
        template="customers/home/my_day.html",
        context=selectors.my_day,            # (user=...) -> dict, a fixed number of queries
        actions=(home.Action(_("新建客户"), "customers:customer_create", "plus-lg", primary=True),),
    ))

The view asks every panel for its data before it renders, so the page's queries are the
panels' queries, and a panel's template sees only its own data (plus the request's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import Role

TITLES: dict[str, Promise] = {
    Role.SALES: _("我的一天"),
    Role.SERVICE: _("客服工作台"),
    Role.MANAGER: _("部门概览"),
    Role.ADMIN: _("系统管理"),
}


@dataclass(frozen=True)
class Action:
    """A button beside the page title."""

    label: Promise | str
    url_name: str
    icon: str
    primary: bool = False
    testid: str = ""


@dataclass(frozen=True)
class Panel:
    name: str
    template: str
    context: Callable[..., dict[str, Any]]
    order: int = 100  # smaller comes first
    width: int = 12  # of the page's 12 columns on a wide screen: panels flow in rows
    actions: tuple[Action, ...] = field(default=())
    # (user=...) -> bool: whether this user gets the panel (and its buttons); None: all
    # of the role. One role can hold people of different work: a service-role engineer
    # in 工程部 gets the department's work orders instead of the desk's queue.
    show: Callable[..., bool] | None = None
    # Whether `context` also takes `params=` (the page's query string, e.g. a period the
    # panel lets the user choose: `?days=7`); read it through crm/core/bounds.Params.
    takes_params: bool = False


_panels: dict[str, list[Panel]] = {}


def register(role: str, panel: Panel) -> None:
    """Add `panel` to `role`'s home page (once: a second call with its name replaces it)."""
    panels = [p for p in _panels.get(role, []) if p.name != panel.name]
    panels.append(panel)
    panels.sort(key=lambda p: (p.order, p.name))
    _panels[role] = panels


def panels_for(role: str) -> list[Panel]:
    return list(_panels.get(role, []))


def page(*, role: str, user: Any, params: Any = None) -> dict[str, Any] | None:
    """The title, the actions and each panel with its data; None for a user without a role.
    `params` (the request's GET) goes to the panels that take it."""
    if role not in TITLES:
        return None
    panels = [p for p in panels_for(role) if p.show is None or p.show(user=user)]
    return {
        "title": TITLES[role],
        "actions": [action for panel in panels for action in panel.actions],
        "panels": [(panel, _data(panel, user, params)) for panel in panels],
    }


def _data(panel: Panel, user: Any, params: Any) -> dict[str, Any]:
    if panel.takes_params:
        return panel.context(user=user, params=params if params is not None else {})
    return panel.context(user=user)
