"""The reports' filter forms (GET): a date within the event, the board's filters."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.defects.models import Contractor, Severity
from service.handover.models import HandoverEvent

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ReportDayForm(forms.Form):
    """交楼日报表's day: one of the event's days (default: today, or its nearest)."""

    day = bounds.DateField(label=_("日期"), required=False, widget=DATE)

    def __init__(self, *args: Any, event: HandoverEvent, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["day"]
        field.min_value, field.max_value = event.start_date, event.end_date
        # The picker's bounds come from widget_attrs, read when the field was made.
        field.widget.attrs.update(field.widget_attrs(field.widget))


class BoardFilterForm(forms.Form):
    """整改看板's filters; an unknown choice is a form error, never a 500."""

    event = forms.ModelChoiceField(
        label=_("入伙活动"), queryset=HandoverEvent.objects.none(), required=False
    )
    contractor = forms.ModelChoiceField(
        label=_("责任单位"), queryset=Contractor.objects.all(), required=False
    )
    severity = forms.ChoiceField(
        label=_("严重程度"),
        choices=[("", _("全部")), *Severity.choices],
        required=False,
    )

    def __init__(self, *args: Any, events: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["event"].queryset = events.order_by("-start_date", "-id")
