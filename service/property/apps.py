from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PropertyConfig(AppConfig):
    """楼盘: projects, phases, buildings and units, and who owns each unit."""

    name = "service.property"
    label = "property"
    verbose_name = _("楼盘")
