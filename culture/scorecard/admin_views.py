"""The scorecard's section of the settings area: the figures' targets (admins only).
Every change goes through crm/core/crud.py: one transaction, pghistory (CultureTarget
is tracked) and a row in the security audit log."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import crud
from culture.scorecard import figures
from culture.scorecard.models import CultureTarget


def _choices() -> list[tuple[str, str]]:
    return [
        (f.key, f"{figures.CULTURES[f.culture]} · {f.label}")
        for f in figures.FIGURES
        if f.direction != figures.NONE
    ]


class CultureTargetForm(crud.ResourceForm):
    figure = forms.ChoiceField(label=_("指标"), choices=_choices)

    class Meta:
        model = CultureTarget
        fields = ["figure", "value"]

    def clean_value(self):  # noqa: ANN201 - Decimal
        value = self.cleaned_data["value"]
        figure = figures.BY_KEY.get(self.cleaned_data.get("figure", ""))
        if value is not None and value < -100:
            raise forms.ValidationError(_("目标值不能小于 -100。"))
        if figure and figure.unit == figures.PERCENT and value is not None:
            if not 0 <= value <= 100:
                raise forms.ValidationError(_("百分比目标应在 0 到 100 之间。"))
        return value


def _label(target: CultureTarget) -> str:
    figure = figures.BY_KEY.get(target.figure)
    return str(figure.label) if figure else target.figure


def _default(target: CultureTarget) -> str:
    figure = figures.BY_KEY.get(target.figure)
    return "—" if figure is None or figure.target is None else f"{figure.target:g}"


def _stamp(by: Any, target: CultureTarget, data: dict[str, Any]) -> None:
    """Who set the target (in the same transaction, so in the same audited context)."""
    CultureTarget.objects.filter(pk=target.pk).update(updated_by=by)


TARGETS = crud.Resource(
    key="target",
    model=CultureTarget,
    form=CultureTargetForm,
    label=_("文化指标目标"),
    item_label=_("指标目标"),
    description=_(
        "文化记分卡上每个指标的目标值。没有设置的指标使用默认目标（见记分卡页面）；"
        "百分比指标填 0–100，评分填 1–5，西格玛水平填 σ 数。删除一条即恢复默认目标。"
    ),
    queryset=lambda: CultureTarget.objects.order_by("figure"),
    columns=(
        crud.Column(_("指标"), _label),
        crud.Column(_("目标值"), lambda t: f"{t.value:g}"),
        crud.Column(_("默认目标"), _default),
        crud.Column(_("修改时间"), lambda t: t.updated_at),
    ),
    delete_note=_("删除后该指标恢复使用默认目标。"),
    after_save=_stamp,
)

RESOURCES = [TARGETS]
