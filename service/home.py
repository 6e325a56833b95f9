"""What the service desk adds to the home pages (crm/core/home.py): the agent's queue."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import Role
from crm.core.home import Action, Panel
from service import selectors

PANELS = [
    (
        Role.SERVICE,
        Panel(
            name="desk",
            template="service/home/desk.html",
            context=selectors.desk_summary,
            actions=(
                Action(_("服务台"), "service:ticket_queue", "inboxes"),
                Action(
                    _("新建工单"),
                    "service:ticket_create",
                    "telephone-plus",
                    primary=True,
                ),
            ),
        ),
    ),
]
