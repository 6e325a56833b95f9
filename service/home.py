"""What the service desk adds to the home pages (crm/core/home.py): the agent's queue,
or, for a back-office member (工程部's engineers), the department's work orders."""

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
            show=selectors.is_desk,
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
    (
        Role.SERVICE,
        Panel(
            name="department_workorders",
            template="service/home/department_workorders.html",
            context=selectors.department_workorders,
            show=selectors.is_back_office,
            order=10,
            actions=(
                Action(
                    _("本部门后台工单"),
                    "service:workorder_list",
                    "clipboard-check",
                    primary=True,
                ),
            ),
        ),
    ),
]
