from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from customers import phones
from service import services
from service.models import Asset, Priority, Ticket, TicketMessage, TicketType, WorkOrder

MAX_FILES = 5


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; each is checked like services.attachment_add does,
    so that a bad file stops the form before anything is saved."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget",
            MultipleFileInput(
                attrs={"accept": ",".join(sorted(_extensions()))},
            ),
        )
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        if len(files) > MAX_FILES:
            raise forms.ValidationError(
                _("一次最多上传 %(n)d 个文件。") % {"n": MAX_FILES}
            )
        return [check_upload(super(MultipleFileField, self).clean(f)) for f in files]


def _extensions() -> set[str]:
    return {ext for exts in services.UPLOAD_TYPES.values() for ext in exts}


def check_upload(upload: Any) -> Any:
    """The same checks as services.attachment_add, before anything is written."""
    name = upload.name or ""
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    content_type = next(
        (t for t, exts in services.UPLOAD_TYPES.items() if extension in exts), None
    )
    if upload.size == 0:
        raise forms.ValidationError(_("文件“%(name)s”是空的。") % {"name": name})
    if upload.size > services.MAX_UPLOAD_BYTES:
        raise forms.ValidationError(_("文件“%(name)s”超过 10 MB。") % {"name": name})
    if content_type is None:
        raise forms.ValidationError(
            _("只能上传图片（JPG、PNG、WebP）、PDF、Word 或 Excel 文件。")
        )
    head = upload.read(16)
    upload.seek(0)
    if not any(head.startswith(magic) for magic in services.MAGIC[content_type]):
        raise forms.ValidationError(
            _("文件“%(name)s”的内容与扩展名不符。") % {"name": name}
        )
    return upload


def _clean_phone(raw: str) -> str:
    if not raw.strip():
        return ""
    try:
        return phones.normalise_phone(raw)[0]
    except forms.ValidationError as error:
        raise forms.ValidationError(error.messages) from error


class QueueFilterForm(forms.Form):
    """The queue's filters; only these names reach the selector."""

    q = forms.CharField(required=False, max_length=bounds.SEARCH_MAX)
    status = forms.ChoiceField(
        label=_("状态"),
        required=False,
        choices=[("", _("未结束的")), *Ticket.Status.choices],
    )
    ticket_type = forms.ChoiceField(
        label=_("类型"),
        required=False,
        choices=[("", _("全部类型")), *TicketType.choices],
    )
    priority = forms.ChoiceField(
        label=_("优先级"),
        required=False,
        choices=[("", _("全部优先级")), *Priority.choices],
    )
    category = forms.ModelChoiceField(
        label=_("分类"), required=False, queryset=None, empty_label=_("全部分类")
    )

    def __init__(self, *args: Any, categories: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = categories

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        return {
            key: self.cleaned_data[key]
            for key in ("status", "ticket_type", "priority", "category")
        }


class TicketForm(forms.ModelForm):
    """What an agent types while the customer is on the phone."""

    attachments = MultipleFileField(
        label=_("附件"),
        required=False,
        help_text=_("图片、PDF、Word 或 Excel，每个不超过 10 MB。"),
    )

    class Meta:
        model = Ticket
        formfield_callback = bounds.formfield
        fields = [
            "ticket_type",
            "channel",
            "priority",
            "category",
            "subject",
            "description",
            "asset",
            "contact_name",
            "contact_phone",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def __init__(
        self,
        *args: Any,
        assets: Any,
        categories: Any,
        can_attach: bool = True,
        new_caller: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("channel", Ticket.Channel.HOTLINE)
        kwargs["initial"].setdefault("priority", Priority.NORMAL)
        super().__init__(*args, **kwargs)
        self.fields["asset"].queryset = assets
        self.fields["category"].queryset = categories
        self.fields["category"].help_text = _(
            "选了分类，工单会自动轮流分派给负责团队。"
        )
        self.fields["subject"].widget.attrs["autofocus"] = True
        if not can_attach:
            del self.fields["attachments"]
        if new_caller:
            # A new caller has no assets yet: CallerForm asks for one.
            del self.fields["asset"]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Row(
                Column("ticket_type", css_class="col-md-3"),
                Column("channel", css_class="col-md-3"),
                Column("priority", css_class="col-md-2"),
                Column("category", css_class="col-md-4"),
            ),
            "subject",
            "description",
            Row(
                *([] if new_caller else [Column("asset", css_class="col-md-4")]),
                Column("contact_name", css_class="col-md-4"),
                Column("contact_phone", css_class="col-md-4"),
            ),
            *(["attachments"] if can_attach else []),
        )

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"].strip()
        if not subject:
            raise forms.ValidationError(_("请填写主题。"))
        return subject

    def clean_description(self) -> str:
        description = self.cleaned_data["description"].strip()
        if not description:
            raise forms.ValidationError(_("请填写问题描述。"))
        return description

    def clean_contact_phone(self) -> str:
        return _clean_phone(self.cleaned_data["contact_phone"])


class CallerForm(forms.Form):
    """An unknown caller, registered with the ticket (an unverified contact)."""

    name = forms.CharField(label=_("来电人姓名"), max_length=100)
    phone = forms.CharField(label=_("来电号码"), max_length=30)
    asset_kind = forms.ChoiceField(
        label=_("资产类型"), choices=Asset.Kind.choices, initial=Asset.Kind.UNIT
    )
    asset_name = forms.CharField(
        label=_("房号或资产（可选）"),
        max_length=100,
        required=False,
        help_text=_("例如：3栋2单元1801、客厅空调。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Row(
                Column("name", css_class="col-md-6"),
                Column("phone", css_class="col-md-6"),
            ),
            Row(
                Column("asset_kind", css_class="col-md-4"),
                Column("asset_name", css_class="col-md-8"),
            ),
        )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("请填写来电人姓名。"))
        return name

    def clean_phone(self) -> str:
        number = _clean_phone(self.cleaned_data["phone"])
        if not number:
            raise forms.ValidationError(_("请填写来电号码。"))
        return number

    def asset(self) -> dict[str, str] | None:
        name = self.cleaned_data.get("asset_name", "").strip()
        return {"kind": self.cleaned_data["asset_kind"], "name": name} if name else None


class VersionedForm(forms.Form):
    """Every change to a ticket carries the version the page showed (EditConflict)."""

    version = bounds.version_field(min_value=1)


class ReplyForm(VersionedForm):
    kind = forms.ChoiceField(
        label=_("类型"),
        choices=[
            (TicketMessage.Kind.REPLY, _("回复客户")),
            (TicketMessage.Kind.CALL, _("电话记录")),
            (TicketMessage.Kind.NOTE, _("内部备注")),
        ],
        initial=TicketMessage.Kind.REPLY,
        widget=forms.RadioSelect,
    )
    # Only for a reply: the service refuses a channel the customer has not got.
    channel = forms.ChoiceField(
        label=_("发送方式"),
        required=False,
        choices=[("email", _("邮件")), ("sms", _("短信"))],
        widget=forms.RadioSelect,
    )
    body = forms.CharField(
        label=_("内容"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4, "id": "reply-body"}),
    )

    def clean_body(self) -> str:
        body = self.cleaned_data["body"].strip()
        if not body:
            raise forms.ValidationError(_("请填写内容。"))
        return body


class AttachmentForm(VersionedForm):
    files = MultipleFileField(label=_("上传附件"))

    def clean_files(self) -> list:
        files = self.cleaned_data["files"]
        if not files:
            raise forms.ValidationError(_("请选择文件。"))
        return files


class AssignForm(VersionedForm):
    assignee = forms.ModelChoiceField(label=_("处理人"), queryset=None)

    def __init__(self, *args: Any, people: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = people


class TransitionForm(VersionedForm):
    to_status = forms.ChoiceField(choices=Ticket.Status.choices)
    note = forms.CharField(label=_("说明"), required=False, max_length=300)
    resolution_summary = forms.CharField(
        label=_("解决说明"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (
            data.get("to_status") == Ticket.Status.RESOLVED
            and not (data.get("resolution_summary") or "").strip()
        ):
            self.add_error("resolution_summary", _("解决工单需要填写解决说明。"))
        return data


class ReferenceForm(VersionedForm):
    reference = forms.CharField(label=_("工单号"), max_length=20)

    def clean_reference(self) -> str:
        return self.cleaned_data["reference"].replace(" ", "").strip()


class WorkOrderForm(VersionedForm):
    department = forms.ModelChoiceField(label=_("后台部门"), queryset=None)
    title = forms.CharField(label=_("事项"), max_length=200)
    due_at = bounds.DateTimeField(
        label=_("完成时限"),
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
    )
    description = forms.CharField(
        label=_("说明"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, departments: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault(
            "due_at",
            (timezone.localtime() + timezone.timedelta(days=1)).replace(
                second=0, microsecond=0
            ),
        )
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = departments

    def clean_title(self) -> str:
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError(_("请填写事项。"))
        return title


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=_("评分"),
        coerce=int,
        choices=[(n, str(n)) for n in range(1, 6)],
        widget=forms.RadioSelect,
    )


class WorkOrderUpdateForm(forms.Form):
    status = forms.ChoiceField(
        label=_("状态"),
        choices=[
            (WorkOrder.Status.IN_PROGRESS, _("处理中")),
            (WorkOrder.Status.DONE, _("已完成")),
            (WorkOrder.Status.REJECTED, _("退回")),
        ],
        widget=forms.RadioSelect,
    )
    result = forms.CharField(
        label=_("处理结果"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", _("保存")))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (
            data.get("status")
            in (
                WorkOrder.Status.DONE,
                WorkOrder.Status.REJECTED,
            )
            and not (data.get("result") or "").strip()
        ):
            self.add_error("result", _("完成或退回时请填写处理结果。"))
        return data


class AssetForm(forms.ModelForm):
    class Meta:
        model = Asset
        formfield_callback = bounds.formfield
        fields = [
            "kind",
            "name",
            "serial",
            "delivered_on",
            "warranty_until",
            "dealer",
            "notes",
        ]
        widgets = {
            "delivered_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "warranty_until": forms.DateInput(
                attrs={"type": "date"}, format="%Y-%m-%d"
            ),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, dealers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dealer"].queryset = dealers
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Row(Column("kind", css_class="col-md-4"), Column("name")),
            Row(Column("serial"), Column("delivered_on"), Column("warranty_until")),
            "dealer",
            "notes",
        )
        self.helper.add_input(Submit("submit", _("保存")))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("请填写名称。"))
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        delivered, warranty = data.get("delivered_on"), data.get("warranty_until")
        if delivered and warranty and warranty < delivered:
            self.add_error("warranty_until", _("保修截止不能早于交付日期。"))
        return data


class IntakeForm(forms.Form):
    """The public form: a customer reports a complaint or a repair."""

    name = forms.CharField(label=_("您的姓名"), max_length=50)
    phone = forms.CharField(label=_("手机号码"), max_length=30)
    ticket_type = forms.ChoiceField(
        label=_("类型"),
        choices=[(TicketType.REPAIR, _("报修")), (TicketType.COMPLAINT, _("投诉"))],
        initial=TicketType.REPAIR,
        widget=forms.RadioSelect,
    )
    description = forms.CharField(
        label=_("问题描述"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("请写明地址（楼栋、房号）和具体情况。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", _("提交")))

    def clean_phone(self) -> str:
        return _clean_phone(self.cleaned_data["phone"])

    def clean_description(self) -> str:
        description = self.cleaned_data["description"].strip()
        if not description:
            raise forms.ValidationError(_("请描述您遇到的问题。"))
        return description


class DealerReportForm(forms.Form):
    days = forms.TypedChoiceField(
        label=_("时间范围"),
        coerce=int,
        required=False,
        empty_value=0,
        choices=[
            (30, _("最近 30 天")),
            (90, _("最近 90 天")),
            (365, _("最近一年")),
            (0, _("全部")),
        ],
    )


class FollowMessageForm(forms.Form):
    """The customer's message or photo on their personal page (no login)."""

    body = forms.CharField(
        label=_("补充说明"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    photo = forms.FileField(
        label=_("照片"),
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp"}
        ),
        help_text=_("JPG、PNG 或 WebP，不超过 10 MB。"),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["body"] = (data.get("body") or "").strip()
        if not data["body"] and not data.get("photo") and not self.errors:
            raise forms.ValidationError(_("请填写留言或选择照片。"))
        return data
