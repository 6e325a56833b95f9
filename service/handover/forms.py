from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.handover.models import Appointment, HandoverEvent, TimeSlot

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class EventForm(forms.ModelForm):
    class Meta:
        model = HandoverEvent
        formfield_callback = bounds.formfield
        fields = [
            "name",
            "kind",
            "project",
            "project_name",
            "venue",
            "start_date",
            "end_date",
            "owner_cutoff_hours",
            "walk_in_release_time",
        ]
        widgets = {
            "start_date": DATE,
            "end_date": DATE,
            "walk_in_release_time": TIME,
        }
        help_texts = {
            "project": _("选择楼盘后可把它的房间划入交付范围。"),
            "owner_cutoff_hours": _(
                "业主通过链接改约或取消，须在时段开始前这么多小时。"
            ),
            "walk_in_release_time": _(
                "时段当天到这个时间，为现场到访预留的名额开放给所有人预约。"
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("kind", "owner_cutoff_hours", "walk_in_release_time"):
            self.fields[name].required = False
        self.fields["owner_cutoff_hours"].widget.attrs["max"] = 720
        self.fields["project"].queryset = self.fields["project"].queryset.order_by(
            "code"
        )
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Row(Column("name"), Column("kind")),
            Row(Column("project"), Column("project_name")),
            "venue",
            Row(Column("start_date"), Column("end_date")),
            Row(Column("owner_cutoff_hours"), Column("walk_in_release_time")),
            Submit("save", _("保存")),
        )

    def _or_current(self, name: str) -> Any:
        """Left empty (an older form, a script): the event's value, or the default."""
        value = self.cleaned_data.get(name)
        if value in (None, ""):
            return getattr(self.instance, name)
        return value

    def clean_kind(self) -> str:
        return self._or_current("kind")

    def clean_walk_in_release_time(self) -> Any:
        return self._or_current("walk_in_release_time")

    def clean_owner_cutoff_hours(self) -> int:
        hours = self._or_current("owner_cutoff_hours")
        if hours > 720:
            raise forms.ValidationError(_("截止时间最多提前 720 小时（30 天）。"))
        return hours

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("结束日期不能早于开始日期。"))
        return data


class SlotDayForm(forms.Form):
    """One day's slots in one go: from `start_time` to `end_time`, every N minutes."""

    date = bounds.DateField(label=_("日期"), widget=DATE)
    start_time = forms.TimeField(label=_("开始时间"), widget=TIME)
    end_time = forms.TimeField(label=_("结束时间"), widget=TIME)
    interval_minutes = forms.IntegerField(
        label=_("每个时段（分钟）"), min_value=5, max_value=480, initial=60
    )
    capacity = forms.IntegerField(
        label=_("每个时段容量（户）"), min_value=1, max_value=1000, initial=10
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Row(Column("date"), Column("start_time"), Column("end_time")),
            Row(Column("interval_minutes"), Column("capacity")),
            Submit("save", _("添加时段")),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            self.add_error("end_time", _("结束时间必须晚于开始时间。"))
        return data


def slot_label(slot: TimeSlot) -> str:
    left = _("已满") if slot.is_full else _("余 %(n)s") % {"n": slot.seats_left}
    when = f"{slot.date:%m-%d} {slot.start_time:%H:%M}–{slot.end_time:%H:%M}"
    label = _("%(when)s（%(left)s）") % {"when": when, "left": left}
    # The batch, read from the choice queryset's select_related (open_slots).
    if slot.batch_id:
        label = f"{label} · {slot.batch.name}"
    return label


class SlotChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: TimeSlot) -> str:
        return slot_label(obj)


class _SlotForm(forms.Form):
    """Slot choice among the event's slots; a full one is refused before any write
    (the service refuses it again if it fills up meanwhile)."""

    def __init__(self, *args: Any, slots: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slot"].queryset = slots

    def clean_slot(self) -> TimeSlot:
        slot = self.cleaned_data["slot"]
        if slot.is_full:
            raise forms.ValidationError(_("该时段已满，请选择其他时段。"))
        if slot.is_past:
            raise forms.ValidationError(_("该时段已开始或已过去，不能预约。"))
        return slot


class BookingForm(_SlotForm):
    slot = SlotChoiceField(label=_("时段"), queryset=TimeSlot.objects.none())
    unit = forms.CharField(
        label=_("房号"),
        max_length=50,
        required=False,
        help_text=_("例如 3栋2单元1502"),
    )
    party_size = forms.IntegerField(
        label=_("到场人数"), min_value=1, max_value=20, initial=1
    )
    channel = forms.ChoiceField(
        label=_("预约渠道"),
        # Owners' own bookings come only through their link, never from this form.
        choices=[
            c
            for c in Appointment.Channel.choices
            if c[0] != Appointment.Channel.OWNER_LINK
        ],
        initial=Appointment.Channel.STAFF,
    )
    override_reason = forms.CharField(
        label=_("例外原因"),
        max_length=200,
        required=False,
        help_text=_("房间暂不可交付，或选择了房间所属批次以外的时段时必填。"),
    )

    def __init__(
        self,
        *args: Any,
        event_unit: Any = None,
        needs_reason: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        first_row = [Column("party_size"), Column("channel")]
        if event_unit is None:
            first_row.insert(0, Column("unit"))
        else:
            del self.fields["unit"]  # the unit's label is the booking's unit
        parts: list[Any] = ["slot", Row(*first_row)]
        if needs_reason:
            parts.append("override_reason")
        else:
            self.fields["override_reason"].widget = forms.HiddenInput()
            parts.append("override_reason")
        self.helper.layout = Layout(*parts, Submit("book", _("确认预约")))


class RescheduleForm(_SlotForm):
    slot = SlotChoiceField(label=_("新时段"), queryset=TimeSlot.objects.none())
    version = bounds.version_field()
    override_reason = forms.CharField(
        label=_("例外原因"),
        max_length=200,
        required=False,
        help_text=_("改到房间所属批次以外的时段时必填。"),
    )
    is_walk_in = forms.BooleanField(
        label=_("业主已在现场（可使用现场预留名额）"), required=False
    )

    def __init__(self, *args: Any, has_unit: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        parts = ["slot", "version", "is_walk_in"]
        if has_unit:
            parts.append("override_reason")
        else:
            del self.fields["override_reason"]
        self.helper.layout = Layout(*parts, Submit("move", _("确认改约")))


class VersionForm(forms.Form):
    version = bounds.version_field(required=False)
