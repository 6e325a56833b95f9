from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class DealsConfig(AppConfig):
    name = "culture.deals"
    label = "deals"
    verbose_name = _("商机与成交")

    def ready(self) -> None:
        from crm.accounts.roles import Role
        from crm.core import navigation
        from culture.deals import access, admin_views, services
        from culture.deals import imports as deal_imports
        from culture.deals import timeline as deal_timeline
        from customers import hooks, imports, panels, timeline

        access.grant_all()
        hooks.register_merge_hook(services.merge_deals, note=services.merge_note)
        timeline.register("deal_stages", deal_timeline.stage_entries)
        timeline.register("payments", deal_timeline.payment_entries)
        panels.register(
            panels.Panel("deals", "deals/_customer_panel.html", _panel, order=20)
        )
        navigation.register(
            navigation.Item(
                pgettext_lazy("navigation", "商机"),
                "deals:deal_list",
                roles=(Role.SALES, Role.MANAGER, Role.ADMIN),
                order=15,
            )
        )
        admin_views.register_sections()
        imports.register_kind(deal_imports.DEALS)


def _panel(user: object, customer: object) -> dict | None:
    from culture.deals import access, selectors

    if not access.can_see_deals(user):
        return None
    return selectors.customer_panel(user=user, customer=customer)
