"""The value app's section of the settings area: the tier rules (admins only)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.core import crud
from culture.value import forms
from culture.value.models import TierRule

TIER_RULES = crud.Resource(
    key="tierrule",
    model=TierRule,
    form=forms.TierRuleForm,
    label=_("价值等级规则"),
    item_label=_("等级规则"),
    description=_(
        "每天凌晨按规则重算客户的价值等级：从 A 到 D 依次判断，满足的第一条规则即为"
        "该客户的等级；有回款或当前为 A/B 的客户若一条都不满足，则为 C。等级变化会通知"
        "客户负责人，并记入客户时间线。"
    ),
    queryset=lambda: TierRule.objects.order_by("tier"),
    columns=(
        crud.Column(_("等级"), lambda r: r.tier),
        crud.Column(_("统计月数"), lambda r: r.months),
        crud.Column(_("最低回款（元）"), lambda r: f"{r.min_revenue:,.0f}"),
        crud.Column(_("最低 RFM 总分"), lambda r: r.min_rfm_total or "—"),
        crud.Column(_("启用"), lambda r: r.is_active),
    ),
    delete_note=_("删除后，下次重算时不再有客户按这条规则得到该等级。"),
)

RESOURCES = [TIER_RULES]
