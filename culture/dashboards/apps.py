from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardsConfig(AppConfig):
    name = "culture.dashboards"
    label = "dashboards"
    verbose_name = _("经理看板")

    def ready(self) -> None:
        from crm.scheduler import registry
        from culture.dashboards import rollups

        registry.register(rollups.REFRESH_KIND, rollups.refresh_handler)
