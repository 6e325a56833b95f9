"""Forms of the scope and batch pages: they convert and bound input, never save."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.handover.forms import SlotDayForm
from service.handover.models import Batch, EventUnit
from service.handover.scope import MAX_BULK

DATETIME = forms.DateTimeInput(
    attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
)
FLOOR = {"min_value": -10, "max_value": 200, "required": False}


class BuildingChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.phase.name} · {obj.name}"


class _FloorsForm(forms.Form):
    floor_from = bounds.integer_field(label=_("起始楼层"), **FLOOR)
    floor_to = bounds.integer_field(label=_("结束楼层"), **FLOOR)

    def __init__(self, *args: Any, buildings: list, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["buildings"].queryset = (
            self.fields["buildings"]
            .queryset.model.objects.filter(pk__in=[b.pk for b in buildings])
            .select_related("phase")
            .order_by("phase__code", "code")
        )
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("floor_from"), data.get("floor_to")
        if low is not None and high is not None and high < low:
            self.add_error("floor_to", _("结束楼层不能低于起始楼层。"))
        return data


def _buildings_field(*, required: bool) -> BuildingChoiceField:
    from service.property.models import Building

    return BuildingChoiceField(
        label=_("楼栋"),
        queryset=Building.objects.none(),
        required=required,
        widget=forms.CheckboxSelectMultiple,
        help_text=None if required else _("不选则为楼盘的全部楼栋。"),
    )


class ScopeAddForm(_FloorsForm):
    buildings = _buildings_field(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper.layout = Layout(
            "buildings",
            Row(Column("floor_from"), Column("floor_to")),
            Submit("add", _("加入交付范围")),
        )


class BatchAssignForm(_FloorsForm):
    buildings = _buildings_field(required=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["buildings"].error_messages["required"] = _("请至少选择一栋楼。")
        self.helper.layout = Layout(
            "buildings",
            Row(Column("floor_from"), Column("floor_to")),
            Submit("assign", _("分配到本批次")),
        )


class UnitIdsField(forms.Field):
    """The ticked units: ids, at least one, at most MAX_BULK."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if len(values) > MAX_BULK:
            raise forms.ValidationError(
                _("一次最多处理 %(max)s 个房间。") % {"max": MAX_BULK}
            )
        ids = [bounds.as_id(v) for v in values]
        if any(i is None for i in ids):
            raise forms.ValidationError(_("勾选的房间无效，请刷新页面后重试。"))
        return ids

    def validate(self, value: list[int]) -> None:
        """Empty is checked by the form: "all matching the filters" needs no ticks."""


class BulkForm(forms.Form):
    """The scope page's action bar: what to do with the ticked units."""

    ELIGIBILITY = "eligibility"
    BATCH = "batch"
    REMOVE = "remove"
    ACTIONS = [
        (ELIGIBILITY, _("设置交付资格")),
        (BATCH, _("分配批次")),
        (REMOVE, _("移出交付范围")),
    ]

    units = UnitIdsField(required=False)
    # Every unit the page's filters match (all pages), not only the ticked ones.
    all_matching = forms.BooleanField(required=False)
    action = forms.ChoiceField(label=_("操作"), choices=ACTIONS)
    eligibility = forms.ChoiceField(
        label=_("交付资格"), choices=EventUnit.Eligibility.choices, required=False
    )
    note = forms.CharField(label=_("说明"), max_length=200, required=False)
    batch = forms.ModelChoiceField(
        label=_("批次"),
        queryset=Batch.objects.none(),
        required=False,
        empty_label=_("（不分批次）"),
    )

    def __init__(self, *args: Any, batches: list[Batch], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].queryset = Batch.objects.filter(
            pk__in=[b.pk for b in batches]
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("units") and not data.get("all_matching"):
            self.add_error("units", _("请先勾选房间。"))
        if data.get("action") == self.ELIGIBILITY and not data.get("eligibility"):
            self.add_error("eligibility", _("请选择交付资格。"))
        return data


class BatchForm(forms.ModelForm):
    class Meta:
        model = Batch
        formfield_callback = bounds.formfield
        fields = ["name", "booking_opens_at", "booking_closes_at", "description"]
        widgets = {"booking_opens_at": DATETIME, "booking_closes_at": DATETIME}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            "name",
            Row(Column("booking_opens_at"), Column("booking_closes_at")),
            "description",
            Submit("save", _("保存")),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        opens, closes = data.get("booking_opens_at"), data.get("booking_closes_at")
        if opens and closes and closes <= opens:
            self.add_error("booking_closes_at", _("截止预约时间必须晚于开放预约时间。"))
        return data

    def validate_unique(self) -> None:
        """The service checks (event, name) with the event it is given."""


class BatchSlotDayForm(SlotDayForm):
    walk_in_percent = bounds.integer_field(
        label=_("现场预留比例（%）"),
        min_value=0,
        max_value=100,
        initial=0,
        help_text=_("每个时段按此比例（向下取整）为无预约到场的业主预留名额。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper.layout = Layout(
            Row(Column("date"), Column("start_time"), Column("end_time")),
            Row(
                Column("interval_minutes"),
                Column("capacity"),
                Column("walk_in_percent"),
            ),
            Submit("save", _("添加时段")),
        )
