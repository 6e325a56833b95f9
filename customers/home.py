"""What the customers app adds to the home pages (crm/core/home.py): the salesperson's
day, the manager's department overview and the customer total on the admin's page."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import Role
from crm.core.home import Action, Panel
from customers import selectors

PANELS = [
    (
        Role.SALES,
        Panel(
            name="my_day",
            template="customers/home/my_day.html",
            context=selectors.my_day,
            actions=(
                Action(_("公海"), "customers:pool_list", "water"),
                Action(
                    _("新建客户"), "customers:customer_create", "plus-lg", primary=True
                ),
            ),
        ),
    ),
    (
        Role.MANAGER,
        Panel(
            name="department_overview",
            template="customers/home/overview.html",
            context=selectors.department_overview,
        ),
    ),
    (
        Role.ADMIN,
        Panel(
            name="customer_total",
            template="customers/home/total.html",
            context=selectors.customer_total,
            order=10,
            width=4,
        ),
    ),
]
