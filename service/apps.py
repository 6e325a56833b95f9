from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceConfig(AppConfig):
    name = "service"
    verbose_name = _("服务台")

    def ready(self) -> None:
        from crm.scheduler import registry
        from customers import hooks, timeline
        from service import escalation, services

        for kind, handler in escalation.HANDLERS.items():
            registry.register(
                kind, handler, batch_handler=escalation.BATCH_HANDLERS.get(kind)
            )
        timeline.register("tickets", services.ticket_timeline_entries)
        hooks.register_merge_hook(services.tickets_follow_customer_merge)
