from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardsConfig(AppConfig):
    name = "culture.dashboards"
    label = "dashboards"
    verbose_name = _("经理看板")

    def ready(self) -> None:
        from crm.accounts.roles import Role
        from crm.core import home, navigation
        from crm.scheduler import registry
        from culture.dashboards import home as dashboard_home
        from culture.dashboards import rollups

        registry.register(rollups.REFRESH_KIND, rollups.refresh_handler)
        # The manager's home is the dashboard: it replaces customers' overview panel.
        for role, panel in dashboard_home.PANELS:
            home.register(role, panel)
        navigation.register(
            navigation.Item(
                _("看板"),
                "dashboards:dashboard",
                (Role.MANAGER, Role.ADMIN, Role.SALES),
                order=45,
                group=navigation.ANALYSIS,
            )
        )
