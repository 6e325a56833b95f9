from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "crm.accounts"
    label = "accounts"
    verbose_name = _("账号与团队")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from crm.accounts import signals  # noqa: F401 - connects the receivers
        from crm.accounts.signals import sync_roles_after_migrate

        # Sender = the last app in INSTALLED_APPS, so every permission exists by then.
        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="kehu-roles")
        _settings_sections()


def _settings_sections() -> None:
    from crm.core import crud

    for order, (label, name, icon, description) in enumerate(
        [
            (_("部门"), "settings:departments_list", "diagram-3", _("部门与其团队。")),
            (
                _("团队"),
                "settings:teams_list",
                "people",
                _("成员、组长：轮流分派与超时升级。"),
            ),
            (
                _("用户与暂离"),
                "settings:users_list",
                "person-dash",
                _("休假、外出的人不参与轮流分派。"),
            ),
        ]
    ):
        crud.register(crud.Section(label, name, description, icon, order=60 + order))
