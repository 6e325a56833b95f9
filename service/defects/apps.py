from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DefectsConfig(AppConfig):
    """问题/整改: one defect model for pre-inspection, open days, handover and warranty
    repairs, with its rectification workflow and the contractors who fix them."""

    name = "service.defects"
    label = "defects"
    verbose_name = _("问题整改")

    def ready(self) -> None:
        from crm.core import navigation
        from crm.scheduler import registry
        from customers import timeline
        from service import panels
        from service.defects import admin_views, selectors, services

        # Overdue rectification: one action per defect and due time; each is carried
        # out on its own, so one failing escalation never holds back the others.
        registry.register(services.DEFECT_OVERDUE, services.defect_overdue)
        admin_views.register_sections()
        timeline.register("defects", selectors.timeline_entries)
        panels.register(
            panels.Panel(
                "defects",
                "defects/_ticket_panel.html",
                selectors.ticket_panel,
                order=40,
            )
        )
        navigation.register(
            navigation.Item(
                _("问题整改"),
                "defects:defect_list",
                order=32,
                group=navigation.HANDOVER,
            )
        )
