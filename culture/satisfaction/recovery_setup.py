"""What the service recovery registers with the platform (called from the app's ready()):
its scheduled-action kinds, the navbar item, the home panel and the timeline sources."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import Role
from crm.core import home, navigation
from crm.scheduler import registry
from culture.satisfaction import recovery, recovery_selectors
from customers import timeline

PANEL = home.Panel(
    name="recovery",
    template="satisfaction/home/recovery_panel.html",
    context=recovery_selectors.home_panel,
    show=recovery_selectors.leads_or_recovers,
    order=5,
    width=6,
    actions=(home.Action(_("服务补救"), "recovery:task_list", "life-preserver"),),
)


def register() -> None:
    registry.register(recovery.RECOVERY_OPENED, recovery.recovery_announce)
    registry.register(recovery.RECOVERY_ESCALATE, recovery.recovery_escalate)
    navigation.register(navigation.Item(_("服务补救"), "recovery:task_list", order=42))
    for role in Role.values:
        home.register(role, PANEL)
    timeline.register("recovery", recovery_selectors.timeline_entries)
