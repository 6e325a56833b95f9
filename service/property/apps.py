from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class PropertyConfig(AppConfig):
    """楼盘: projects, phases, buildings and units, and who owns each unit."""

    name = "service.property"
    label = "property"
    verbose_name = _("楼盘")

    def ready(self) -> None:
        from crm.accounts.roles import Role, grant
        from crm.core import navigation
        from customers import hooks, imports, panels
        from service.property import imports as unit_imports
        from service.property import services

        models = ("project", "phase", "building", "unit", "unitownership")
        grant(Role.SALES, *(f"property.view_{m}" for m in models))
        grant(Role.SERVICE, *(f"property.view_{m}" for m in models))
        for role in (Role.MANAGER, Role.ADMIN):
            grant(
                role,
                *(
                    f"property.{verb}_{m}"
                    for m in models
                    for verb in ("view", "add", "change")
                ),
                "property.view_proxyauthorisation",
                "property.add_proxyauthorisation",
                "property.change_proxyauthorisation",
            )
        navigation.register(
            navigation.Item(
                pgettext_lazy("navigation", "房产"),
                "property:project_list",
                order=28,
                group=navigation.HANDOVER,
            )
        )
        panels.register(
            panels.Panel("property", "property/_customer_panel.html", _panel, order=15)
        )
        imports.register_kind(unit_imports.UNITS)
        # A merged duplicate's units and proxies go to the customer that is kept.
        hooks.register_merge_hook(
            services.ownerships_follow_customer_merge,
            note=services.customer_merge_notes,
        )


def _panel(user: object, customer: object) -> dict | None:
    from service.property import selectors

    context = selectors.customer_panel(user=user, customer=customer)
    # Most customers own no unit here: no empty card for them.
    return context if context["ownerships"] or context["proxies"] else None
