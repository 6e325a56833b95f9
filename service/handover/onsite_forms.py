"""The station setup's forms (issue 17): adding a station to an event's sequence.
Every number and text bounded (crm/core/bounds.py); the sequence's own rules (unique
kind, name and order, prerequisites earlier in the order) are onsite.station_add's."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.handover.models import StationDefinition


class StationAddForm(forms.Form):
    code = forms.ChoiceField(label=_("站点类型"))
    name = forms.CharField(label=_("名称"), max_length=40)
    position = bounds.integer_field(
        label=_("顺序"),
        min_value=1,
        max_value=999,
        help_text=_("数字越小越靠前；前置站点必须排在本站之前。"),
    )
    required = forms.BooleanField(label=_("必经"), required=False, initial=True)
    prerequisites = forms.TypedMultipleChoiceField(
        label=_("前置站点"), coerce=int, required=False
    )
    counters = bounds.integer_field(
        label=_("窗口数"), min_value=1, max_value=50, initial=1
    )
    target_minutes = bounds.integer_field(
        label=_("目标办理时长（分钟）"), min_value=1, max_value=240, initial=10
    )

    def __init__(
        self,
        *args: Any,
        stations: list[StationDefinition],
        free_codes: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].choices = free_codes
        # Only this event's stations can be chosen: another id is an invalid choice.
        self.fields["prerequisites"].choices = [(s.pk, s.name) for s in stations]
        self.fields["prerequisites"].widget.attrs["size"] = min(
            max(len(stations), 2), 8
        )
        if not self.is_bound:
            last = max((s.position for s in stations), default=0)
            self.initial.setdefault("position", min(last + 10, 999))
            if free_codes:
                self.initial.setdefault("name", str(free_codes[0][1]))
