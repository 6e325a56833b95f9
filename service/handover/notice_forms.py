"""Forms of the notice pages (notice_views.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.handover import notices
from service.handover.models import HandoverEvent, NoticeRun

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class NoticeRunForm(forms.Form):
    channel = forms.ChoiceField(label=_("通知方式"), choices=NoticeRun.Channel.choices)
    batch = forms.ModelChoiceField(
        label=_("批次"),
        queryset=None,
        required=False,
        empty_label=_("全部房间"),
    )
    round = forms.IntegerField(
        label=_("轮次"), min_value=1, max_value=notices.MAX_ROUND, initial=1
    )

    def __init__(self, *args: Any, event: HandoverEvent, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].queryset = event.batches.order_by("booking_opens_at", "id")
        self.fields["batch"].error_messages["invalid_choice"] = _(
            "请选择本活动的批次。"
        )
        for name in ("channel", "batch"):
            self.fields[name].widget.attrs["class"] = "form-select"
        self.fields["round"].widget.attrs["class"] = "form-control"


def _a_year_ago() -> dt.date:
    return timezone.localdate() - dt.timedelta(days=366)


class LettersDeliveredForm(forms.Form):
    delivered_on = bounds.DateField(
        label=_("送达日期"),
        widget=DATE,
        min_value=_a_year_ago,
        max_value=timezone.localdate,
    )
