from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("客户")

    def ready(self) -> None:
        from crm.core import home, navigation
        from crm.scheduler import registry
        from customers import home as customer_home
        from customers import imports, permissions, services, timeline

        permissions.grant_all()
        registry.register(
            services.FOLLOWUP_REMINDER,
            services.followup_remind,
            batch_handler=services.followups_remind,
        )
        # Purging an unconfirmed upload (rows, file) may run twice: it is a no-op then.
        registry.register(imports.IMPORT_EXPIRE, imports.import_job_expire_action)
        timeline.register("contacts", timeline.contact_entries)
        timeline.register("followups", timeline.followup_entries)
        for role, panel in customer_home.PANELS:
            home.register(role, panel)
        navigation.register(
            navigation.Item(
                pgettext_lazy("navigation", "客户"), "customers:customer_list", order=10
            )
        )
