"""Deal forms: fields, labels and conversions; the services do the saving."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crispy_forms.helper import FormHelper
from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from culture.deals import builder, selectors
from culture.deals.models import Deal, DealStage
from culture.deals.widgets import SearchChoiceField
from customers.models import Customer


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


STATUS_CHOICES = [("", _("全部状态")), *Deal.Status.choices]
SORT_CHOICES = [
    ("recent", _("最近更新")),
    ("amount", _("金额从高到低")),
    ("amount_asc", _("金额从低到高")),
    ("expected", _("预计成交日期")),
    ("created", _("创建时间")),
]


def _amount_field(label: Any, *, required: bool = True) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=0,
        max_value=builder.MAX_AMOUNT,
        max_digits=12,
        decimal_places=2,
    )


class DealFilterForm(forms.Form):
    q = forms.CharField(label=_("搜索"), required=False, max_length=bounds.SEARCH_MAX)
    stage = forms.ModelChoiceField(
        label=_("阶段"), queryset=DealStage.objects.none(), required=False
    )
    status = forms.ChoiceField(label=_("状态"), choices=STATUS_CHOICES, required=False)
    owner = forms.ModelChoiceField(label=_("负责人"), queryset=None, required=False)
    team = forms.ModelChoiceField(label=_("团队"), queryset=None, required=False)
    channel = SearchChoiceField(label=_("渠道"), queryset=None, required=False)
    amount_min = _amount_field(_("最低金额"), required=False)
    amount_max = _amount_field(_("最高金额"), required=False)
    expected_from = bounds.DateField(
        label=_("预计成交自"), required=False, widget=_date_widget()
    )
    expected_to = bounds.DateField(
        label=_("预计成交至"), required=False, widget=_date_widget()
    )
    sort = forms.ChoiceField(label=_("排序"), choices=SORT_CHOICES, required=False)
    # From the customer page's "查看全部": that customer's deals.
    customer = forms.ModelChoiceField(
        queryset=None, required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = Customer.objects.visible_to(user)
        self.fields["stage"].queryset = DealStage.objects.order_by("position", "id")
        self.fields["owner"].queryset = selectors.owner_choices(user=user)
        self.fields["team"].queryset = selectors.team_choices(user=user)
        self.fields["channel"].queryset = selectors.channel_choices(user=user)
        for name in ("stage", "owner", "team"):
            self.fields[name].empty_label = _("全部")
        for name, field in self.fields.items():
            is_choice = isinstance(field, forms.ChoiceField)
            css = (
                "form-select form-select-sm"
                if is_choice
                else "form-control form-control-sm"
            )
            field.widget.attrs.setdefault("class", css)
            if name == "q":
                field.widget.attrs["placeholder"] = _("商机名称或客户姓名")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", _("最高金额不能低于最低金额。"))
        start, end = data.get("expected_from"), data.get("expected_to")
        if start and end and start > end:
            self.add_error("expected_to", _("结束日期不能早于开始日期。"))
        return data


class BoardFilterForm(forms.Form):
    owner = forms.ModelChoiceField(label=_("负责人"), queryset=None, required=False)
    team = forms.ModelChoiceField(label=_("团队"), queryset=None, required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = selectors.owner_choices(user=user)
        self.fields["team"].queryset = selectors.team_choices(user=user)
        for field in self.fields.values():
            field.empty_label = _("全部")
            field.widget.attrs["class"] = "form-select form-select-sm"


class DealForm(forms.Form):
    """Create and edit. The customer is picked by search (a select filled by htmx);
    on edit it is fixed."""

    customer = SearchChoiceField(label=_("客户"), queryset=None)
    title = forms.CharField(label=_("商机名称"), max_length=100)
    product = forms.CharField(label=_("产品/房号"), max_length=100, required=False)
    amount = _amount_field(_("金额（元）"))
    stage = forms.ModelChoiceField(label=_("阶段"), queryset=DealStage.objects.none())
    channel = SearchChoiceField(
        label=_("渠道（经销/分销/代理）"), queryset=None, required=False
    )
    owner = forms.ModelChoiceField(label=_("负责人"), queryset=None)
    expected_close_on = bounds.DateField(
        label=_("预计成交日期"), required=False, widget=_date_widget()
    )
    version = bounds.version_field(required=False)

    def __init__(
        self,
        *args: Any,
        user: Any,
        deal: Deal | None = None,
        customers: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.deal = deal
        visible = Customer.objects.visible_to(user).filter(merged_into__isnull=True)
        self.fields["customer"].queryset = (
            customers if customers is not None else visible
        )
        self.fields["stage"].queryset = DealStage.objects.filter(
            is_active=True
        ).order_by("position", "id")
        self.fields["channel"].queryset = selectors.channel_choices(user=user)
        self.fields["owner"].queryset = selectors.owner_choices(user=user)
        if deal is not None:
            del self.fields["customer"]
            del self.fields["stage"]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True

    def clean_title(self) -> str:
        return self.cleaned_data["title"].strip()

    def clean_amount(self) -> Decimal:
        return builder.check_amount(self.cleaned_data["amount"])


class PaymentForm(forms.Form):
    amount = _amount_field(_("回款金额（元）"))
    received_on = bounds.DateField(
        label=_("回款日期"), max_value=bounds.today, widget=_date_widget()
    )
    note = forms.CharField(label=_("备注"), max_length=200, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-control form-control-sm"


class LoseForm(forms.Form):
    lost_reason = forms.CharField(label=_("输单原因"), max_length=200)
    version = bounds.version_field()


class MoveForm(forms.Form):
    stage = forms.ModelChoiceField(queryset=DealStage.objects.filter(is_active=True))
    version = bounds.version_field()
