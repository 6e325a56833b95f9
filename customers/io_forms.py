"""Forms of the import and export pages."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from customers import imports
from customers.models import ExportRequest


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("客户文件"),
        help_text=_("CSV（UTF-8 或 GBK 编码）或 Excel .xlsx，不超过 20 MB。"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )

    def __init__(
        self, *args: Any, kind: str = imports.CUSTOMERS, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["file"].help_text = _(
            "CSV（UTF-8 或 GBK 编码）或 Excel .xlsx，不超过 %(mb)d MB。"
        ) % {"mb": imports.max_upload_bytes() // (1024 * 1024)}
        if kind != imports.CUSTOMERS:
            self.fields["file"].label = _("数据文件")
        self.inspection: imports.Inspection | None = None
        self.helper = FormHelper()
        self.helper.attrs = {"data-testid": "import-upload"}
        self.helper.add_input(Submit("submit", _("上传并校验")))

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        try:
            self.inspection = imports.inspect_upload(upload, self.kind)
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from error
        return upload


class ExportRequestForm(forms.Form):
    """Asking for an export that needs approval: why, and in which format."""

    file_format = forms.ChoiceField(
        label=_("格式"), choices=ExportRequest.Format.choices, initial="csv"
    )
    reason = forms.CharField(
        label=_("导出原因"),
        max_length=300,
        help_text=_("审批人会看到这段说明，例如“季度回访名单，交给呼叫中心”。"),
        error_messages={"required": _("请说明导出原因。")},
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError(_("请说明导出原因。"))
        return reason


class ExportDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", _("批准")), ("reject", _("拒绝"))]
    )
    note = forms.CharField(label=_("审批意见"), max_length=300, required=False)
