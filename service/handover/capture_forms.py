"""The forms of the station captures and the case's outcomes (every number and date
bounded; crm/core/bounds.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.forms import check_upload
from service.handover.captures import (
    FEE_VOID_REASON_MAX,
    KEY_ITEM_MAX,
    KEY_ITEMS,
    SIGNATURE_MAX_BYTES,
)
from service.handover.models import (
    FeePayment,
    MeterReading,
    RefusalRecord,
    UnitHandover,
)
from service.handover.outcomes import MAX_EVIDENCE

AMOUNT_MAX = Decimal("10000000")
PRICE_MAX = Decimal("1000000")
READING_MAX = Decimal("9999999")
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _money(label: Any, *, low: Decimal, high: Decimal, **kwargs: Any) -> Any:
    return forms.DecimalField(
        label=label,
        min_value=low,
        max_value=high,
        max_digits=12,
        decimal_places=2,
        **kwargs,
    )


class SettlementForm(forms.Form):
    price_per_m2 = _money(
        _("单价（元/㎡）"), low=Decimal("0"), high=PRICE_MAX, required=False
    )
    amount = _money(
        _("面积补差金额（元）"),
        low=-AMOUNT_MAX,
        high=AMOUNT_MAX,
        required=False,
        help_text=_("正数为业主补缴，负数为退还业主。"),
    )


class FeeForm(forms.ModelForm):
    class Meta:
        model = FeePayment
        formfield_callback = bounds.formfield
        fields = ["item", "amount", "method", "receipt_number"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"].widget.attrs.update(min="0.01", max=str(AMOUNT_MAX))

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount <= 0:
            raise forms.ValidationError(_("金额应大于 0。"))
        return amount


class FeeVoidForm(forms.Form):
    """作废 one fee line: why (captures.fee_void)."""

    reason = forms.CharField(label=_("作废原因"), max_length=FEE_VOID_REASON_MAX)


class MetersForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind, label in MeterReading.Kind.choices:
            self.fields[f"number_{kind}"] = forms.CharField(
                label=_("%(meter)s表号") % {"meter": label},
                max_length=40,
                required=False,
            )
            self.fields[f"reading_{kind}"] = _money(
                _("%(meter)s读数") % {"meter": label},
                low=Decimal("0"),
                high=READING_MAX,
                required=False,
            )

    def readings(self) -> dict[str, tuple[str, Decimal | None]]:
        data = self.cleaned_data
        return {
            kind: (data.get(f"number_{kind}") or "", data.get(f"reading_{kind}"))
            for kind in MeterReading.Kind.values
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not any(
            data.get(f"reading_{kind}") is not None for kind in MeterReading.Kind.values
        ):
            raise forms.ValidationError(_("请至少填写一个表的读数。"))
        return data


class KeysForm(forms.Form):
    action = forms.ChoiceField(
        label=_("钥匙去向"),
        choices=UnitHandover.KeyAction.choices,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for item, label in KEY_ITEMS.items():
            self.fields[f"item_{item}"] = bounds.integer_field(
                label=label, min_value=0, max_value=KEY_ITEM_MAX, required=False
            )

    def items(self) -> dict[str, int]:
        return {item: self.cleaned_data.get(f"item_{item}") or 0 for item in KEY_ITEMS}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not any(data.get(f"item_{item}") for item in KEY_ITEMS):
            raise forms.ValidationError(_("请填写交接的钥匙数量。"))
        return data


class SignatureForm(forms.Form):
    # A PNG data URL; the service checks what it holds (captures.signature_png).
    # Longer than the service's limit, so that an oversized drawing gets its message.
    signature = forms.CharField(
        max_length=SIGNATURE_MAX_BYTES * 2,
        widget=forms.HiddenInput,
        error_messages={
            "required": _("请先签名。"),
            "max_length": _("签名图片过大（上限 300 KB）。"),
        },
    )


class SurveyForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=_("满意度"),
        choices=[(n, str(n)) for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=_("评价"), max_length=200, required=False, widget=forms.TextInput
    )


# --- outcomes ------------------------------------------------------------------------------


class OutcomeForm(forms.Form):
    version = bounds.version_field()


class AcceptForm(OutcomeForm):
    with_defects = forms.BooleanField(required=False, widget=forms.HiddenInput)


class NotAcceptedForm(OutcomeForm):
    reason = forms.CharField(label=_("不签收原因"), max_length=300)
    reinspection_on = bounds.DateField(
        label=_("复验日期"), min_value=bounds.today, widget=DATE
    )


class RefusalForm(OutcomeForm):
    reason = forms.ChoiceField(
        label=_("拒收原因"), choices=RefusalRecord.Reason.choices
    )
    details = forms.CharField(
        label=_("详细说明"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    owner_statement = forms.CharField(
        label=_("业主陈述"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    notice_deadline = bounds.DateField(
        label=_("通知书交付期限（视为交付日）"), widget=DATE
    )

    def __init__(self, *args: Any, files: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, files=files, **kwargs)
        self.uploads = list(files.getlist("evidence")) if files is not None else []

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.uploads:
            self.add_error(None, _("请上传至少一份拒收证据照片。"))
        elif len(self.uploads) > MAX_EVIDENCE:
            self.add_error(
                None, _("证据最多上传 %(count)s 份。") % {"count": MAX_EVIDENCE}
            )
        else:
            for upload in self.uploads:
                try:
                    check_upload(upload)
                except forms.ValidationError as error:
                    self.add_error(None, error)
        return data


class NoShowNextForm(OutcomeForm):
    next_step = forms.ChoiceField(
        label=_("后续安排"),
        choices=UnitHandover.NoShowNext.choices,
        widget=forms.RadioSelect,
    )


def refusal_initial(case: UnitHandover) -> dict[str, Any]:
    return {"version": case.version, "notice_deadline": case.event.end_date}


class ReinspectionForm(forms.Form):
    """预约复验: a slot the case page offers (reinspection.slot_choices); the service
    checks the slot itself, so a tampered id gets the rule's own message."""

    slot = bounds.integer_field(
        label=_("复验时段"),
        min_value=bounds.ID_MIN,
        max_value=bounds.ID_MAX,
        widget=forms.Select,
        error_messages={"required": _("请选择复验时段。")},
    )
    override_reason = forms.CharField(
        label=_("例外原因"),
        max_length=200,
        required=False,
        help_text=_("时段不属于房间所在批次时必填。"),
    )

    def __init__(self, *args: Any, choices: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slot"].widget.choices = [("", _("请选择时段")), *choices]
