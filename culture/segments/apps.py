from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class SegmentsConfig(AppConfig):
    name = "culture.segments"
    label = "segments"
    verbose_name = _("客户分群")

    def ready(self) -> None:
        from crm.core import navigation
        from crm.scheduler import registry
        from culture.segments import list_filter, services
        from customers import hooks

        # Refreshing is idempotent (a second run finds nothing to change).
        registry.register(services.SEGMENT_REFRESH, services.segment_refresh_action)
        # All or nothing, and a done job is skipped: safe to deliver twice.
        registry.register(services.SEGMENT_FOLLOWUPS, services.segment_followups_run)
        hooks.register_merge_hook(services.merge_memberships)
        hooks.register_list_filter(
            "segment", field=list_filter.field, apply=list_filter.apply
        )
        navigation.register(
            navigation.Item(
                pgettext_lazy("navigation", "客户分群"),
                "segments:segment_list",
                roles=services.USER_ROLES,
                order=55,
                group=navigation.ANALYSIS,
            )
        )
