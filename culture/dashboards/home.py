"""The manager's home is the dashboard (replaces customers' department overview)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import Role
from crm.core.home import Action, Panel
from culture.dashboards import selectors

PANELS = [
    (
        Role.MANAGER,
        Panel(
            name="department_overview",
            template="dashboards/home/dashboard.html",
            context=selectors.home_dashboard,
            actions=(Action(_("客户列表"), "customers:customer_list", "people"),),
        ),
    ),
]
