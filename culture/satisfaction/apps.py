from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SatisfactionConfig(AppConfig):
    name = "culture.satisfaction"
    label = "satisfaction"
    verbose_name = _("满意度与服务补救")

    def ready(self) -> None:
        from culture.satisfaction import recovery_setup

        recovery_setup.register()
