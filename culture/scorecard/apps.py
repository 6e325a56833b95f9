from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScorecardConfig(AppConfig):
    name = "culture.scorecard"
    label = "scorecard"
    verbose_name = _("文化记分卡")
