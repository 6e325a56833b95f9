from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScorecardConfig(AppConfig):
    name = "culture.scorecard"
    label = "scorecard"
    verbose_name = _("文化记分卡")

    def ready(self) -> None:
        from crm.accounts.roles import Role
        from crm.core import crud, home, navigation
        from crm.scheduler import registry
        from culture.scorecard import personal_panels, rollups, weekly_report

        registry.register(rollups.REFRESH_KIND, rollups.refresh_handler)
        registry.register(weekly_report.KIND, weekly_report.handler)
        navigation.register(
            navigation.Item(
                _("记分卡"),
                "scorecard:scorecard",
                (Role.MANAGER, Role.ADMIN),
                order=58,
                group=navigation.ANALYSIS,
            )
        )
        crud.register(
            crud.Section(
                _("文化指标目标"),
                "scorecard_admin:target_list",
                _("文化记分卡上各指标的目标值（未设置的用默认目标）。"),
                icon="bullseye",
                order=62,
            )
        )
        # 个人指标 on the salesperson's and the desk agent's home page.
        for role, panel in personal_panels.PANELS:
            home.register(role, panel)
