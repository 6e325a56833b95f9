from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DealsConfig(AppConfig):
    name = "culture.deals"
    label = "deals"
    verbose_name = _("商机与成交")

    def ready(self) -> None:
        from culture.deals import access, services
        from customers import hooks

        access.grant_all()
        hooks.register_merge_hook(services.merge_deals, note=services.merge_note)
