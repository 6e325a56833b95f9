"""Forms of the owner's booking pages: a slot among those the page offered, the party
size, and the version the page was read at."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.handover.owner_selectors import SlotChoice

PARTY_MAX = 10


class _SlotPick(forms.Form):
    slot = forms.CharField(
        max_length=20,
        error_messages={"required": _("请选择一个时段。")},
    )

    def __init__(self, *args: Any, choices: list[SlotChoice], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = {choice.slot.pk: choice for choice in choices}

    def clean_slot(self) -> Any:
        pk = bounds.as_id(self.cleaned_data["slot"])
        choice = self.choices.get(pk) if pk else None
        if choice is None:
            raise forms.ValidationError(_("所选时段不可预约，请重新选择。"))
        if choice.is_current:
            raise forms.ValidationError(_("新时段与原时段相同，请选择其他时段。"))
        if choice.seats_left <= 0:
            raise forms.ValidationError(_("该时段已满，请选择其他时段。"))
        if not choice.is_bookable:
            raise forms.ValidationError(
                _("该时段已过网上预约截止时间，请选择其他时段。")
            )
        return choice.slot


class OwnerBookForm(_SlotPick):
    party_size = bounds.integer_field(
        label=_("到场人数"),
        min_value=1,
        max_value=PARTY_MAX,
        initial=1,
        error_messages={
            "min_value": _("到场人数至少 1 人。"),
            "max_value": _("到场人数最多 %(limit_value)s 人。"),
            "invalid": _("请填写到场人数。"),
        },
    )


class OwnerChangeForm(_SlotPick):
    version = bounds.version_field()


class OwnerCancelForm(forms.Form):
    version = bounds.version_field()
