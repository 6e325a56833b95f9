"""Forms of the desk's settings pages: categories, SLA policies, the working calendar,
canned replies and assets. Checks a user can fix are form errors in Chinese."""

from __future__ import annotations

from typing import Any

from crispy_forms.layout import Column, Layout, Row
from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from crm.core.crud import ResourceForm
from service import routing
from service.forms import AssetForm
from service.models import (
    CalendarDay,
    CannedReply,
    Category,
    SLAPolicy,
    WorkingPeriod,
)

WEEKDAYS = [
    (0, _("星期一")),
    (1, _("星期二")),
    (2, _("星期三")),
    (3, _("星期四")),
    (4, _("星期五")),
    (5, _("星期六")),
    (6, _("星期日")),
]
# A target of more than 90 days is a typo, not a service level.
MAX_MINUTES = 90 * 24 * 60


class CategoryForm(ResourceForm):
    class Meta:
        model = Category
        formfield_callback = bounds.formfield
        fields = ["name", "parent", "team"]
        help_texts = {
            "parent": _("留空为一级分类。"),
            "team": _("新工单按此团队轮流分派；留空则沿用上级分类的团队。"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = Category.objects.select_related(
            "parent__parent"
        ).order_by("parent__name", "name")

    def clean_parent(self) -> Category | None:
        parent = self.cleaned_data.get("parent")
        if parent is None or self.instance.pk is None:
            return parent
        # Walk up from the new parent: meeting this category would make a cycle.
        node, depth = parent, 0
        while node is not None and depth <= routing.MAX_DEPTH:
            if node.pk == self.instance.pk:
                raise forms.ValidationError(_("上级分类不能是它自己或它的下级分类。"))
            node, depth = node.parent, depth + 1
        if depth > routing.MAX_DEPTH:
            raise forms.ValidationError(_("分类层级太深。"))
        return parent


class SLAPolicyForm(ResourceForm):
    class Meta:
        model = SLAPolicy
        formfield_callback = bounds.formfield
        fields = [
            "name",
            "ticket_type",
            "priority",
            "for_key_accounts",
            "calendar",
            "first_response_minutes",
            "resolution_minutes",
            "warn_before_minutes",
        ]
        widgets = {"calendar": forms.RadioSelect}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, least in (
            ("first_response_minutes", 1),
            ("resolution_minutes", 1),
            ("warn_before_minutes", 0),
        ):
            field = self.fields[name]
            field.validators += [
                MinValueValidator(least),
                MaxValueValidator(MAX_MINUTES),
            ]
            field.widget.attrs.update(min=least, max=MAX_MINUTES)
        self.helper.layout = Layout(
            "name",
            Row(
                Column("ticket_type"),
                Column("priority"),
                Column("for_key_accounts", css_class="col-md-3 pt-md-4"),
            ),
            "calendar",
            Row(
                Column("first_response_minutes"),
                Column("resolution_minutes"),
                Column("warn_before_minutes"),
            ),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        first = data.get("first_response_minutes")
        resolution = data.get("resolution_minutes")
        warn = data.get("warn_before_minutes")
        if first and resolution and first > resolution:
            self.add_error(
                "first_response_minutes", _("首次响应时限不能长于解决时限。")
            )
        if first and warn is not None and warn >= first:
            self.add_error("warn_before_minutes", _("提前预警必须短于首次响应时限。"))
        return data


class WorkingPeriodForm(ResourceForm):
    weekday = forms.TypedChoiceField(label=_("星期"), choices=WEEKDAYS, coerce=int)

    class Meta:
        model = WorkingPeriod
        formfield_callback = bounds.formfield
        fields = ["weekday", "start", "end"]
        widgets = {
            "start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        weekday, start, end = data.get("weekday"), data.get("start"), data.get("end")
        if start is None or end is None or weekday is None:
            return data
        if end <= start:
            self.add_error("end", _("结束时间必须晚于开始时间。"))
            return data
        overlapping = WorkingPeriod.objects.filter(
            weekday=weekday, start__lt=end, end__gt=start
        ).exclude(pk=self.instance.pk)
        if overlapping.exists():
            self.add_error(None, _("与这一天已有的工作时段重叠。"))
        return data


class CalendarDayForm(ResourceForm):
    date = bounds.DateField(
        label=_("日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    is_working = forms.TypedChoiceField(
        label=_("这一天"),
        choices=[("0", _("休息（节假日）")), ("1", _("上班（调休）"))],
        coerce=lambda value: value == "1",
        widget=forms.RadioSelect,
    )

    class Meta:
        model = CalendarDay
        formfield_callback = bounds.formfield
        fields = ["date", "is_working", "note"]
        help_texts = {"note": _("例如：春节、国庆节调休。")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["is_working"] = "1" if self.instance.is_working else "0"

    def clean_date(self) -> Any:
        day = self.cleaned_data["date"]
        taken = CalendarDay.objects.filter(date=day).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(_("这一天已经有设置，请编辑原来那条。"))
        return day


class CannedReplyForm(ResourceForm):
    class Meta:
        model = CannedReply
        formfield_callback = bounds.formfield
        fields = ["title", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 5})}
        help_texts = {
            "body": _("可用占位符：{客户} {工单号} {处理人}，使用时自动填入。")
        }


class AssetSettingsForm(AssetForm):
    """The desk's asset form (service/forms.py, with its checks), on the settings
    page, whose template draws the buttons."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.inputs = []
