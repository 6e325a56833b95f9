from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceConfig(AppConfig):
    name = "service"
    verbose_name = _("服务台")

    def ready(self) -> None:
        from crm.channels import registry as channel_registry
        from crm.core import home, navigation
        from crm.scheduler import registry
        from customers import hooks, timeline
        from service import admin_views, escalation, permissions, services, warranty
        from service import home as service_home

        permissions.grant_all()
        for kind, handler in escalation.HANDLERS.items():
            registry.register(
                kind, handler, batch_handler=escalation.BATCH_HANDLERS.get(kind)
            )
        channel_registry.on_outcome(
            services.REPLY_PURPOSE, services.reply_delivery_outcome
        )
        registry.register(warranty.WARRANTY_REMINDER, warranty.warranty_remind)
        admin_views.register_sections()
        timeline.register("tickets", services.ticket_timeline_entries)
        hooks.register_merge_hook(services.tickets_follow_customer_merge)
        for role, panel in service_home.PANELS:
            home.register(role, panel)
        navigation.register(
            navigation.Item(_("服务台"), "service:ticket_queue", order=20)
        )
        # Back-office work orders: for users in a team (every team has a department).
        navigation.register(
            navigation.Item(
                _("后台工单"), "service:workorder_list", order=40, needs_team=True
            )
        )
