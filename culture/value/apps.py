from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ValueConfig(AppConfig):
    name = "culture.value"
    label = "value"
    verbose_name = _("客户价值")

    def ready(self) -> None:
        from crm.accounts.roles import Role
        from crm.core import crud, navigation
        from crm.scheduler import registry
        from culture.value import services
        from customers import timeline

        registry.register(services.REVENUE_REFRESH, services.revenue_refresh_action)
        registry.register(services.VALUE_DAILY, services.value_daily_action)
        registry.register(services.SEGMENT_SNAPSHOTS, services.segment_snapshots_action)
        timeline.register("tier_changes", services.tier_change_entries)
        navigation.register(
            navigation.Item(
                _("客户价值"),
                "value:overview",
                (Role.MANAGER, Role.ADMIN, Role.SALES),
                order=56,
                group=navigation.ANALYSIS,
            )
        )
        crud.register(
            crud.Section(
                _("价值等级规则"),
                "value_admin:tierrule_list",
                _("按近 N 个月回款和 RFM 得分自动划分 A/B/C/D 等级。"),
                icon="award",
                order=60,
            )
        )
