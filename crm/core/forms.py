from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import audit, bounds


class AuditFilterForm(forms.Form):
    """The audit page's filters; each maps to one indexed column."""

    actor = forms.CharField(
        label=_("用户名"),
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}),
    )
    action = forms.ChoiceField(
        label=_("操作"),
        required=False,
        choices=[("", _("全部操作")), *audit.ACTION_LABELS.items()],
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    outcome = forms.ChoiceField(
        label=_("结果"),
        required=False,
        choices=[("", _("全部结果")), *audit.OUTCOME_LABELS.items()],
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    date_from = bounds.DateField(
        label=_("起始日期"),
        required=False,
        widget=forms.DateInput(
            attrs={"type": "date", "class": "form-control form-control-sm"}
        ),
    )
    date_to = bounds.DateField(
        label=_("截止日期"),
        required=False,
        widget=forms.DateInput(
            attrs={"type": "date", "class": "form-control form-control-sm"}
        ),
    )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("起始日期不能晚于截止日期。"))
        return data
