from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.handover.readiness import CallOutcome


class CallForm(forms.Form):
    """One call to one owner of a unit on the call list."""

    customer = forms.TypedChoiceField(label=_("业主"), coerce=int)
    outcome = forms.ChoiceField(
        label=_("通话结果"), choices=CallOutcome.CHOICES, widget=forms.RadioSelect
    )
    note = forms.CharField(
        label=_("备注"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    call_back_at = bounds.DateTimeField(
        label=_("约定回电时间"),
        min_value=bounds.today,
        required=False,
        help_text=_("填写后会为您创建一条跟进提醒。"),
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
    )

    def __init__(self, *args: Any, owners: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].choices = [
            (o.customer_id, f"{o.customer.name}（{o.get_role_display()}）")
            for o in owners
        ]
        if len(owners) == 1:
            self.fields["customer"].initial = owners[0].customer_id
