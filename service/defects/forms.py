"""The defect forms: recording (phone-sized, cascading categories), transitions, the
contractor's "ready" form, the list filters, and the settings-area forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import Role
from crm.core import bounds
from crm.core.crud import ResourceForm
from service.defects.models import Contractor, Defect, DefectCategory, Severity
from service.forms import MultipleFileField, check_upload

PHOTO_ACCEPT = "image/jpeg,image/png,image/webp"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


def _image(upload: Any) -> Any:
    check_upload(upload)
    if not (upload.name or "").lower().endswith(IMAGE_EXTENSIONS):
        raise forms.ValidationError(_("只能上传 JPG、PNG 或 WebP 格式的照片。"))
    return upload


class PhotoField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget",
            forms.ClearableFileInput(
                attrs={"accept": PHOTO_ACCEPT, "capture": "environment"}
            ),
        )
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        upload = super().clean(data, initial)
        return _image(upload) if upload else upload


class PhotosField(MultipleFileField):
    def clean(self, data: Any, initial: Any = None) -> list:
        return [_image(upload) for upload in super().clean(data, initial)]


class DefectRecordForm(forms.Form):
    room = forms.ChoiceField(label=_("位置"), choices=Defect.Room.choices)
    trade = forms.ModelChoiceField(
        label=_("专业"),
        queryset=DefectCategory.objects.filter(level=1),
        required=False,
    )
    part = forms.ModelChoiceField(
        label=_("部位"),
        queryset=DefectCategory.objects.filter(level=2),
        required=False,
    )
    category = forms.ModelChoiceField(
        label=_("问题"), queryset=DefectCategory.objects.filter(level=3)
    )
    severity = forms.ChoiceField(
        label=_("严重程度"),
        choices=[("", _("按分类默认")), *Severity.choices],
        required=False,
    )
    description = forms.CharField(label=_("问题描述"), max_length=300)
    contractor = forms.ModelChoiceField(
        label=_("责任单位"),
        queryset=Contractor.objects.filter(active=True),
        required=False,
    )
    due_at = bounds.DateTimeField(
        label=_("整改时限"),
        required=False,
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
        help_text=_("不填则按严重程度计算。"),
    )
    photos = PhotosField(label=_("问题照片"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["photos"].widget.attrs.update(
            {"accept": PHOTO_ACCEPT, "capture": "environment"}
        )


class VersionForm(forms.Form):
    version = bounds.version_field(required=False)


class TransitionForm(forms.Form):
    version = bounds.version_field(required=False)
    comment = forms.CharField(label=_("备注"), max_length=300, required=False)
    reason = forms.CharField(label=_("原因"), max_length=300, required=False)
    contractor = forms.ModelChoiceField(
        label=_("责任单位"),
        queryset=Contractor.objects.filter(active=True),
        required=False,
    )
    decision = forms.ChoiceField(
        label=_("处理结果"),
        choices=[
            ("", "—"),
            (Defect.State.ASSIGNED, _("异议不成立，继续整改")),
            (Defect.State.VOID, _("异议成立，作废")),
        ],
        required=False,
    )
    photo = PhotoField(label=_("整改后照片"), required=False)


class DueForm(forms.Form):
    version = bounds.version_field(required=False)
    due_at = bounds.DateTimeField(
        label=_("新的整改时限"),
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
    )


class ReadyForm(forms.Form):
    """The contractor's form on their link page."""

    defect = bounds.integer_field(
        min_value=1, max_value=bounds.INT_MAX, widget=forms.HiddenInput
    )
    photo = PhotoField(label=_("整改后照片"))
    comment = forms.CharField(label=_("说明"), max_length=300, required=False)


class TicketLinkForm(forms.Form):
    reference = forms.CharField(label=_("工单号"), max_length=20)


class ContractorForm(ResourceForm):
    class Meta:
        model = Contractor
        formfield_callback = bounds.formfield
        fields = ["name", "contact_name", "phone", "staff", "active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["staff"].queryset = (
            get_user_model()
            .objects.filter(is_active=True, groups__name__in=list(Role.values))
            .distinct()
            .order_by("username")
        )


class CategoryForm(ResourceForm):
    class Meta:
        model = DefectCategory
        formfield_callback = bounds.formfield
        fields = ["parent", "name", "default_severity", "position"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = DefectCategory.objects.filter(
            level__lt=3
        ).select_related("parent")
        self.fields["parent"].required = False
        self.fields["position"].max_value = 1000

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        parent = data.get("parent")
        level = (parent.level + 1) if parent is not None else 1
        if (
            self.instance.pk
            and self.instance.children.exists()
            and level != self.instance.level
        ):
            raise forms.ValidationError(_("有下级分类的分类不能改变层级。"))
        if parent is not None and self.instance.pk and parent.pk == self.instance.pk:
            raise forms.ValidationError(_("上级不能是自己。"))
        # The level follows the parent; resource_save sets it from the data.
        self.instance.level = level
        data["level"] = level
        return data
