from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "crm.core"
    label = "core"
    verbose_name = _("系统")

    def ready(self) -> None:
        from crm.accounts.roles import Role
        from crm.core import (
            append_only,
            choices,
            home,
            navigation,
            selectors,
            signals,  # noqa: F401 - receivers
        )

        choices.install()
        navigation.register(navigation.Item(_("首页"), "home", order=0))
        navigation.register(
            navigation.Item(_("设置"), "settings:index", (Role.ADMIN,), order=990)
        )
        navigation.register(
            navigation.Item(_("系统管理"), "admin:index", (Role.ADMIN,), order=1000)
        )
        home.register(
            Role.ADMIN,
            home.Panel(
                name="system_figures",
                template="core/home/figures.html",
                context=selectors.admin_figures,
                order=20,
                width=8,
                actions=(
                    home.Action(_("安全审计日志"), "audit_log", "journal-text"),
                    home.Action(
                        _("用户与团队设置"), "admin:index", "gear", primary=True
                    ),
                ),
            ),
        )
        home.register(
            Role.ADMIN,
            home.Panel(
                name="teams",
                template="core/home/teams.html",
                context=selectors.admin_teams,
                order=90,
            ),
        )

        post_migrate.connect(
            append_only.protect_event_tables,
            sender=self,
            dispatch_uid="kehu_append_only",
        )
