"""Forms of the property pages: fields and labels only; services save."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from service.property.models import (
    Building,
    Phase,
    Project,
    ProxyAuthorisation,
    Unit,
    UnitOwnership,
)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _helper(*layout: Any) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    helper.layout = Layout(*layout, Submit("save", _("保存")))
    return helper


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        formfield_callback = bounds.formfield
        fields = ["code", "name", "city", "developer", "property_company"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Row(Column("code"), Column("name"), Column("city")),
            Row(Column("developer"), Column("property_company")),
        )

    def validate_unique(self) -> None:
        """The service checks (with the code upper-cased)."""


class PhaseForm(forms.ModelForm):
    class Meta:
        model = Phase
        formfield_callback = bounds.formfield
        fields = ["code", "name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(Row(Column("code"), Column("name")))

    def validate_unique(self) -> None:
        """The service checks (the project is not a field here)."""


class BuildingForm(forms.ModelForm):
    class Meta:
        model = Building
        formfield_callback = bounds.formfield
        fields = ["code", "name", "product_type", "contract_delivery_date"]
        widgets = {"contract_delivery_date": DATE}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Row(Column("code"), Column("name")),
            Row(Column("product_type"), Column("contract_delivery_date")),
        )

    def validate_unique(self) -> None:
        """The service checks (the phase is not a field here)."""


class UnitForm(forms.ModelForm):
    class Meta:
        model = Unit
        formfield_callback = bounds.formfield
        fields = [
            "entrance",
            "floor",
            "room",
            "code",
            "layout",
            "fit_out",
            "contract_area",
            "measured_area",
            "contract_delivery_date",
        ]
        widgets = {"contract_delivery_date": DATE}
        help_texts = {"code": _("留空则按 项目-分期-楼栋-单元-房号 自动生成。")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].required = False
        self.fields["floor"].min_value = -10
        self.fields["floor"].max_value = 200
        for name in ("contract_area", "measured_area"):
            self.fields[name].max_value = 100000
        self.helper = _helper(
            Row(Column("entrance"), Column("floor"), Column("room")),
            Row(Column("code"), Column("layout"), Column("fit_out")),
            Row(
                Column("contract_area"),
                Column("measured_area"),
                Column("contract_delivery_date"),
            ),
        )

    def validate_unique(self) -> None:
        """The service checks (the building is not a field here)."""


class PersonFields(forms.Form):
    """A person named by phone and ID number: an existing customer is matched."""

    name = forms.CharField(label=_("姓名"), max_length=100)
    phone = forms.CharField(label=_("电话"), max_length=40)
    id_number = forms.CharField(
        label=_("证件号（身份证）"), max_length=40, required=False
    )


class OwnerForm(PersonFields):
    role = forms.ChoiceField(
        label=_("身份"), choices=UnitOwnership.Role.choices, initial="primary"
    )
    contract_no = forms.CharField(label=_("购房合同号"), max_length=60, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phone"].help_text = _(
            "按电话或证件号匹配现有客户；找不到则新建为业主。"
        )
        self.helper = _helper(
            Row(Column("role"), Column("name")),
            Row(Column("phone"), Column("id_number")),
            "contract_no",
        )


class ProxyForm(PersonFields):
    owner = forms.ModelChoiceField(label=_("委托业主"), queryset=None, empty_label=None)
    scope = forms.ChoiceField(
        label=_("委托事项"), choices=ProxyAuthorisation.Scope.choices
    )
    valid_until = bounds.DateField(label=_("有效期至"), required=False, widget=DATE)
    document = forms.FileField(
        label=_("授权委托书"),
        help_text=_("PDF、JPG 或 PNG，不超过 5 MB。"),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
    )

    def __init__(self, *args: Any, owners: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners
        self.fields["owner"].label_from_instance = lambda c: c.name
        self.fields["name"].label = _("受托人姓名")
        self.fields["phone"].label = _("受托人电话")
        self.fields["id_number"].label = _("受托人证件号")
        self.helper = _helper(
            Row(Column("owner"), Column("scope"), Column("valid_until")),
            Row(Column("name"), Column("phone"), Column("id_number")),
            "document",
        )
