from __future__ import annotations

from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from crm.core.crud import ResourceForm
from culture.value.models import TierRule


class TierRuleForm(ResourceForm):
    class Meta:
        model = TierRule
        formfield_callback = bounds.formfield
        fields = ["tier", "months", "min_revenue", "min_rfm_total", "is_active"]
        help_texts = {
            "months": _("统计最近几个自然月（含本月）的回款，1–60。"),
            "min_revenue": _("该期间回款合计不低于此金额（元）。"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["months"].validators += [
            MinValueValidator(1),
            MaxValueValidator(60),
        ]
        self.fields["months"].widget.attrs.update(min=1, max=60)
        self.fields["min_rfm_total"].validators += [MaxValueValidator(15)]
        self.fields["min_rfm_total"].widget.attrs.update(min=0, max=15)
        self.fields["min_revenue"].validators += [
            MinValueValidator(0),
            MaxValueValidator(10**13),
        ]
