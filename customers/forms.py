from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from customers.models import Customer


class CustomerForm(forms.ModelForm):
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Customer
        fields = [
            "name",
            "kind",
            "stage",
            "tier",
            "is_key_account",
            "phone",
            "email",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", _("保存")))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("请填写客户名称。"))
        return name

    def clean_phone(self) -> str:
        # Full-width digits (１３８…) are common in Chinese input methods.
        raw = self.cleaned_data["phone"].translate(
            {0xFF10 + i: ord("0") + i for i in range(10)}
        )
        digits = "".join(ch for ch in raw if ch.isdigit() or ch == "+")
        if raw.strip() and not 7 <= len(digits.lstrip("+")) <= 15:
            raise forms.ValidationError(_("电话号码格式不正确。"))
        return digits
