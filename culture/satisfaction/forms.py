from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.channels.models import OutboundMessage
from culture.satisfaction.models import SurveyKind
from culture.segments.models import Segment


class CampaignForm(forms.Form):
    name = forms.CharField(label=_("名称"), max_length=100)
    segment = forms.ModelChoiceField(
        label=_("客户分群"), queryset=Segment.objects.none()
    )
    kind = forms.ChoiceField(label=_("题型"), choices=SurveyKind.choices)
    channel = forms.ChoiceField(
        label=_("渠道"),
        choices=[
            (OutboundMessage.Channel.SMS, _("短信（发往主手机号）")),
            (OutboundMessage.Channel.EMAIL, _("邮件")),
        ],
        help_text=_("没有该渠道联系方式的客户将被跳过，并计入“无联系方式”。"),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.visible_to(user).order_by(
            "name"
        )
