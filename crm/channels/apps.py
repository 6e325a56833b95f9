from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    name = "crm.channels"
    label = "channels"
    verbose_name = _("消息渠道")

    def ready(self) -> None:
        from crm.channels import services
        from crm.scheduler import registry

        # It texts or e-mails a customer: a delivery that may have gone out is
        # parked for review, never repeated.
        registry.register(services.DELIVER, services.message_deliver, at_most_once=True)
