"""What the personal figures add to the home pages (crm/core/home.py): a salesperson's
and a service desk agent's own figures beside their team's (个人指标). Managers have
the scorecard; a back-office engineer's home shows the department's work orders."""

from __future__ import annotations

from typing import Any

from crm.accounts.roles import Role
from crm.core.home import Panel
from culture.scorecard import personal


def _is_desk(*, user: Any) -> bool:
    from service import selectors

    return selectors.is_desk(user)


PANELS = [
    (
        Role.SALES,
        Panel(
            name="personal_figures",
            template="scorecard/personal_panel.html",
            context=personal.home_panel,
            takes_params=True,
            order=5,
        ),
    ),
    (
        Role.SERVICE,
        Panel(
            name="personal_figures",
            template="scorecard/personal_panel.html",
            context=personal.home_panel,
            takes_params=True,
            show=_is_desk,
            order=5,
        ),
    ),
]
