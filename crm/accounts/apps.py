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
