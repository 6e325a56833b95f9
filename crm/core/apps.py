from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "crm.core"
    label = "core"
    verbose_name = _("系统")

    def ready(self) -> None:
        from crm.core import append_only, choices, signals  # noqa: F401 - receivers

        choices.install()

        post_migrate.connect(
            append_only.protect_event_tables,
            sender=self,
            dispatch_uid="kehu_append_only",
        )
