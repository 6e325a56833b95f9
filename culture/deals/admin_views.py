"""The pipeline's stages in the admins' settings area (/settings/deals/): name, code,
order, win probability, whether reaching it means won, active. A stage with deals is
deactivated, never deleted (the deals keep their history)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds, crud
from culture.deals.models import Deal, DealStage


class DealStageForm(crud.ResourceForm):
    class Meta:
        model = DealStage
        formfield_callback = bounds.formfield
        fields = ["name", "code", "position", "probability", "is_won", "is_active"]
        help_texts = {
            "code": _("英文字母、数字或连字符，导入和接口使用。"),
            "position": _("数字小的排在看板左边。"),
            "is_won": _("商机进入该阶段即视为成交（如签约、回款）。"),
        }

    def clean_probability(self) -> int:
        value = self.cleaned_data["probability"]
        if value > 100:
            raise forms.ValidationError(_("赢单概率须在 0 至 100 之间。"))
        return value


def _delete_blocker(stage: DealStage) -> Any:
    if Deal.objects.filter(stage=stage).exists():
        return _("该阶段下仍有商机，不能删除；可以取消“启用”将其停用。")
    return None


STAGES = crud.Resource(
    key="stages",
    model=DealStage,
    form=DealStageForm,
    label=_("商机阶段"),
    item_label=_("商机阶段"),
    description=_(
        "销售看板的列，从左到右。停用的阶段不再出现在看板上，已有商机保留其阶段。"
    ),
    queryset=lambda: DealStage.objects.order_by("position", "id"),
    columns=(
        crud.Column(_("顺序"), lambda s: s.position),
        crud.Column(_("名称"), lambda s: s.name),
        crud.Column(_("代码"), lambda s: s.code),
        crud.Column(_("赢单概率（%）"), lambda s: s.probability),
        crud.Column(_("视为成交"), lambda s: _("是") if s.is_won else ""),
        crud.Column(_("启用"), lambda s: _("是") if s.is_active else _("已停用")),
    ),
    search=("name", "code"),
    delete_blocker=_delete_blocker,
)

RESOURCES = [STAGES]


def register_sections() -> None:
    crud.register(
        crud.Section(
            STAGES.label,
            "deals_admin:stages_list",
            _("销售看板的阶段、顺序与赢单概率。"),
            "kanban",
            order=30,
        )
    )
