"""The culture scorecard (文化记分卡, docs/scorecard.md): each of the essay's six cultures as
figures with an editable target. Figures are read from rollups (see rollups.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CultureTarget(models.Model):
    """An admin's target for one scorecard figure; a figure without a row uses its
    default from figures.py."""

    figure = models.CharField(_("指标"), max_length=40, unique=True)
    value = models.DecimalField(_("目标值"), max_digits=9, decimal_places=2)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("文化指标目标")
        verbose_name_plural = _("文化指标目标")

    def __str__(self) -> str:
        return f"{self.figure}={self.value}"
