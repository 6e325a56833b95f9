from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DefectsConfig(AppConfig):
    """问题/整改: one defect model for pre-inspection, open days, handover and warranty
    repairs, with its rectification workflow and the contractors who fix them."""

    name = "service.defects"
    label = "defects"
    verbose_name = _("问题整改")
