"""The recovery task's recording form (服务补救 → 记录回访)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from culture.satisfaction import recovery
from culture.satisfaction.models import NPS_MAX, RecoveryTask


class RecoveryRecordForm(forms.Form):
    version = bounds.version_field(min_value=1)
    called_back_at = bounds.DateTimeField(
        label=_("回访时间"),
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
    )
    outcome = forms.ChoiceField(
        label=_("补救结果"), choices=RecoveryTask.Outcome.choices
    )
    note = forms.CharField(
        label=_("回访记录"),
        max_length=bounds.TEXTAREA_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    second_score = bounds.integer_field(
        label=_("客户再次评分（如询问）"),
        required=False,
        min_value=0,
        max_value=NPS_MAX,
    )

    def __init__(self, *args: Any, task: RecoveryTask, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("version", task.version)
        kwargs["initial"].setdefault(
            "called_back_at", timezone.localtime().replace(second=0, microsecond=0)
        )
        super().__init__(*args, **kwargs)
        self.task = task
        low, high = recovery.score_range(task.survey.kind)
        field = self.fields["second_score"]
        field.widget.attrs.update(min=low, max=high)
        field.help_text = _(
            "%(low)s–%(high)s 分，与原调查相同的量表；未询问请留空。"
        ) % {
            "low": low,
            "high": high,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for field, message in recovery.record_errors(
            self.task,
            called_back_at=data.get("called_back_at"),
            outcome=data.get("outcome", ""),
            note=data.get("note", ""),
            second_score=data.get("second_score"),
            now=timezone.now(),
        ).items():
            if field not in self.errors:
                self.add_error(field, message)
        return data
