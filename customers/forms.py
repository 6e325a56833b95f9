from __future__ import annotations

from datetime import timedelta
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Column, Fieldset, Layout, Row, Submit
from django import forms
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crm.core import bounds
from customers import hooks, identity, phones
from customers.models import ContactLog, Customer, CustomerProfile, FollowUp

# The organisation and parent selects list this many organisations (plus the one
# chosen); the search box under each asks the server for others. Listing them all made
# the customer form cost 200 ms of CPU with 1,200 organisations, and would not load at
# all with a million customers.
ORGANIZATIONS_SHOWN = 50
ORGANIZATION_FIELDS = ("organization", "parent")


def organization_choices(
    organizations: Any, *, query: str = "", keep: Any = None
) -> list[tuple[Any, str]]:
    """The options of an organisation select: the kept (chosen) one first, then up to
    ORGANIZATIONS_SHOWN matching `query` (by name, pinyin or initials) or, without a
    query, the first by name."""
    from customers import search

    keep_id = bounds.as_id(keep)
    kept = list(organizations.filter(pk=keep_id)[:1]) if keep_id else []
    condition = search.condition(query) if query else None
    if condition is not None:
        matches = search.annotate_for(organizations, query).filter(condition)
    else:
        matches = organizations
    matches = matches.order_by("name").only("pk", "name")
    shown = (
        kept
        + [o for o in matches[: ORGANIZATIONS_SHOWN + 1] if o.pk != keep_id][
            :ORGANIZATIONS_SHOWN
        ]
    )
    return [("", "---------")] + [(o.pk, o.name) for o in shown]


def _organization_search(field: str) -> HTML:
    """A search box that refills the select of `field` through htmx. It posts, like
    the customer search, so what is typed never lands in an address or a log."""
    return HTML(
        format_html(
            '<input type="search" class="form-control form-control-sm field-search" '
            'name="{field}_search" placeholder="{placeholder}" aria-label="{placeholder}" '
            'hx-post="{url}?field={field}" hx-trigger="input changed delay:300ms, search" '
            'hx-target="#id_{field}" hx-include="#id_{field}" data-testid="{field}-search">',
            field=field,
            url=reverse("customers:organization_options"),
            placeholder=_("输入单位名称查找"),
        )
    )


# The fields checked for duplicates while typed (htmx, views.duplicate_check).
DUPLICATE_FIELDS = ("phone", "other_phones", "id_number")


def _duplicate_check(field: str, customer_pk: int | None) -> dict[str, str]:
    """Widget attributes that check `field` for a duplicate when it changes: it
    posts (a number never lands in an address) and the answer fills the box below."""
    url = f"{reverse('customers:duplicate_check')}?field={field}"
    if customer_pk:
        url = f"{url}&customer={customer_pk}"
    return {
        "hx-post": url,
        "hx-trigger": "change",
        "hx-target": f"#duplicate-{field}",
        "hx-sync": "this:replace",
        "aria-describedby": f"duplicate-{field}",
    }


def _duplicate_box(field: str) -> HTML:
    return HTML(
        format_html(
            '<div id="duplicate-{}" class="small mb-2" aria-live="polite" '
            'data-testid="duplicate-{}"></div>',
            field,
            field,
        )
    )


def _split_tags(raw: str) -> list[str]:
    parts = raw.replace("，", ",").replace("、", ",").split(",")
    return sorted({p.strip()[:30] for p in parts if p.strip()})


class CustomerForm(forms.ModelForm):
    phone = forms.CharField(label=_("主电话"), required=False, max_length=30)
    other_phones = forms.CharField(
        label=_("其他电话"),
        required=False,
        max_length=200,
        help_text=_("多个号码用逗号分隔。"),
    )
    id_number = forms.CharField(
        label=_("身份证号"),
        required=False,
        max_length=30,
    )
    tags_text = forms.CharField(
        label=_("标签"), required=False, max_length=300, help_text=_("用逗号分隔。")
    )
    version = bounds.version_field(required=False)
    confirm_duplicates = forms.BooleanField(
        required=False,
        widget=forms.HiddenInput,
    )

    class Meta:
        model = Customer
        formfield_callback = bounds.formfield
        fields = [
            "name",
            "is_organization",
            "kind",
            "stage",
            "tier",
            "is_key_account",
            "source",
            "province",
            "city",
            "district",
            "address",
            "wechat_id",
            "email",
            "organization",
            "parent",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, organizations: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for optional in ("source", "kind", "stage", "tier"):
            self.fields[optional].required = False
        # Only organisations the user may see can be chosen (no cross-team references).
        # The queryset validates what is posted; the select shows a bounded list.
        if organizations is None:
            organizations = Customer.objects.filter(is_organization=True)
        for name in ORGANIZATION_FIELDS:
            field = self.fields[name]
            field.queryset = organizations
            chosen = (
                self.data.get(name)
                if self.is_bound
                else getattr(self.instance, f"{name}_id", None)
            )
            field.widget.choices = organization_choices(organizations, keep=chosen)
        if self.instance.pk and self.instance.id_number_cipher:
            # The stored number is never shown back; an empty box keeps it.
            self.fields["id_number"].help_text = _("已登记，留空表示不修改。")
        for name in DUPLICATE_FIELDS:
            self.fields[name].widget.attrs.update(
                _duplicate_check(name, self.instance.pk)
            )
        if self.instance.pk:
            self.fields["tags_text"].initial = ", ".join(self.instance.tags)
            self.fields["other_phones"].initial = ", ".join(
                p.number for p in self.instance.phones.all() if not p.is_primary
            )
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Fieldset(
                _("基本信息"),
                Row(
                    Column("name", css_class="col-md-6"),
                    Column("is_organization", css_class="col-md-3 pt-4"),
                    Column("is_key_account", css_class="col-md-3 pt-4"),
                ),
                Row(Column("kind"), Column("stage"), Column("tier"), Column("source")),
                Row(
                    Column("organization", _organization_search("organization")),
                    Column("parent", _organization_search("parent")),
                ),
            ),
            Fieldset(
                _("联系方式"),
                Row(
                    Column("phone", _duplicate_box("phone")),
                    Column("other_phones", _duplicate_box("other_phones")),
                ),
                Row(Column("wechat_id"), Column("email")),
                Row(Column("province"), Column("city"), Column("district")),
                "address",
            ),
            Fieldset(
                _("其他"),
                Row(Column("id_number", _duplicate_box("id_number"))),
                "tags_text",
                "notes",
            ),
            "version",
            "confirm_duplicates",
        )
        self.helper.add_input(Submit("submit", _("保存")))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("请填写客户名称。"))
        return name

    def clean_phone(self) -> str:
        raw = self.cleaned_data["phone"]
        if not raw.strip():
            return ""
        try:
            return phones.normalise_phone(raw)[0]
        except forms.ValidationError as error:
            raise forms.ValidationError(error.messages) from error

    def clean_other_phones(self) -> list[str]:
        raw = self.cleaned_data["other_phones"].replace("，", ",")
        numbers = []
        for part in raw.split(","):
            if part.strip():
                try:
                    numbers.append(phones.normalise_phone(part)[0])
                except forms.ValidationError as error:
                    raise forms.ValidationError(error.messages) from error
        return numbers

    def clean_id_number(self) -> str:
        raw = self.cleaned_data["id_number"]
        if not raw.strip():
            return ""
        try:
            return identity.normalise_id_number(raw)
        except forms.ValidationError as error:
            raise forms.ValidationError(error.messages) from error

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # Optional in the form, never empty in the database: fall back to the defaults.
        for field in ("source", "kind", "stage", "tier"):
            if data.get(field) in (None, ""):
                data[field] = Customer._meta.get_field(field).get_default()
        return data

    def clean_tags_text(self) -> list[str]:
        return _split_tags(self.cleaned_data["tags_text"])

    def service_arguments(self) -> dict[str, Any]:
        """cleaned_data split into what customer_create/customer_update take."""
        data = dict(self.cleaned_data)
        numbers = [data.pop("phone")] + data.pop("other_phones")
        id_number = data.pop("id_number") or None
        data["tags"] = data.pop("tags_text")
        for key in ("version", "confirm_duplicates"):
            data.pop(key, None)
        return {
            "data": data,
            "phone_numbers": [n for n in numbers if n],
            "id_number": id_number,
        }


class CustomerFilterForm(forms.Form):
    """The list page's filters; only these names reach the selector (no ORM splatting)."""

    q = forms.CharField(required=False, max_length=bounds.SEARCH_MAX)
    kind = forms.ChoiceField(
        label=_("类型"),
        required=False,
        choices=[("", _("全部类型")), *Customer.Kind.choices],
    )
    stage = forms.ChoiceField(
        label=_("阶段"),
        required=False,
        choices=[("", _("全部阶段")), *Customer.Stage.choices],
    )
    tier = forms.ChoiceField(
        label=_("等级"),
        required=False,
        choices=[("", _("全部等级")), *Customer.Tier.choices],
    )
    # Plain choices built once from the visible people and teams: the same list
    # serves validation and rendering without another query each.
    owner = forms.TypedChoiceField(
        label=_("负责人"), required=False, coerce=int, empty_value=None
    )
    team = forms.TypedChoiceField(
        label=_("团队"), required=False, coerce=int, empty_value=None
    )
    tag = forms.CharField(label=_("标签"), required=False, max_length=30)
    province = forms.CharField(label=_("省份"), required=False, max_length=20)
    city = forms.CharField(label=_("城市"), required=False, max_length=30)
    days_since_contact = forms.IntegerField(
        label=_("未联系天数≥"), required=False, min_value=1, max_value=3650
    )
    is_key_account = forms.BooleanField(label=_("仅重点客户"), required=False)
    pool = forms.BooleanField(label=_("仅公海"), required=False)
    unverified = forms.BooleanField(label=_("仅待核实"), required=False)
    # Customers an import kept without an invalid phone, e-mail or ID number.
    needs_review = forms.BooleanField(label=_("仅待核查"), required=False)
    sort = forms.TypedChoiceField(
        label=_("排序"),
        required=False,
        choices=[
            ("recent", _("最近更新")),
            ("name", _("名称")),
            ("created", _("最新创建")),
            ("last_contact", _("最久未联系")),
        ],
    )

    def __init__(
        self, *args: Any, owners: Any, teams: Any, user: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", _("全部负责人"))] + [
            (u.pk, str(u)) for u in owners
        ]
        self.fields["team"].choices = [("", _("全部团队"))] + [
            (t.pk, str(t)) for t in teams
        ]
        # Other apps' filters (customers/hooks.py), e.g. ?segment=<id>.
        self.extra_filters = []
        if user is not None:
            for name, list_filter in hooks.list_filters.items():
                self.fields[name] = list_filter.field(user)
                self.extra_filters.append(name)
        for field in self.fields.values():
            css = (
                "form-check-input"
                if isinstance(field.widget, forms.CheckboxInput)
                else (
                    "form-select"
                    if isinstance(field.widget, forms.Select)
                    else "form-control"
                )
            )
            field.widget.attrs.setdefault("class", css)

    def full_clean(self) -> None:
        # An unknown sort (an old bookmark, a hand-made URL) falls back to the default
        # instead of failing the whole form.
        if self.is_bound and self.data.get("sort") not in (
            None,
            "",
            *dict(self.fields["sort"].choices),
        ):
            self.data = self.data.copy()
            self.data["sort"] = "recent"
        super().full_clean()

    def extra_filter_badges(self) -> list[tuple[Any, str]]:
        """(label, value) of the other apps' filters in use, for the list's badges."""
        if not self.is_bound or not self.is_valid():
            return []
        return [
            (self.fields[name].label, str(self.cleaned_data[name]))
            for name in self.extra_filters
            if self.cleaned_data.get(name) not in (None, "")
        ]

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        data = dict(self.cleaned_data)
        for key in ("q", "sort"):
            data.pop(key)
        return data


# A few minutes' grace: the form was filled in a moment ago, "now" then is fine.
PAST_GRACE = timedelta(minutes=5)


def not_in_past(value: Any) -> Any:
    """A follow-up's due time (or a contact's next step), refused if already past."""
    if value and value < timezone.now() - PAST_GRACE:
        raise forms.ValidationError(
            _("跟进时间 %(when)s 已经过去，请选择现在之后的时间。")
            % {"when": timezone.localtime(value).strftime("%Y-%m-%d %H:%M")}
        )
    return value


class ContactQuickForm(forms.ModelForm):
    """Quick entry: channel and summary are required, everything else optional."""

    class Meta:
        model = ContactLog
        formfield_callback = bounds.formfield
        fields = [
            "channel",
            "summary",
            "direction",
            "outcome",
            "sentiment",
            "next_step",
            "next_step_at",
        ]
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 2}),
            "next_step_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["direction"].required = False
        self.fields["sentiment"].required = False
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_summary(self) -> str:
        summary = self.cleaned_data["summary"].strip()
        if not summary:
            raise forms.ValidationError(_("请填写沟通内容。"))
        return summary

    def clean_next_step_at(self) -> Any:
        return not_in_past(self.cleaned_data.get("next_step_at"))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["direction"] = data.get("direction") or ContactLog.Direction.OUTBOUND
        data["sentiment"] = data.get("sentiment") or ContactLog.Sentiment.NEUTRAL
        if data.get("next_step_at") and not (data.get("next_step") or "").strip():
            data["next_step"] = _("按约回访")
        return data


class FollowUpForm(forms.ModelForm):
    class Meta:
        model = FollowUp
        formfield_callback = bounds.formfield
        fields = ["note", "due_at"]
        widgets = {
            "due_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            )
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", _("保存")))

    def clean_due_at(self) -> Any:
        return not_in_past(self.cleaned_data.get("due_at"))


class ProfileForm(forms.ModelForm):
    # The profile's version when the form was loaded: services.profile_update refuses
    # to save over a newer one (EditConflict), as the customer form does.
    version = bounds.version_field(required=False)

    class Meta:
        model = CustomerProfile
        formfield_callback = bounds.formfield
        fields = list(CustomerProfile.PREFERENCE_FIELDS)
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].initial = self.instance.version
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", _("保存")))

    def differences(self, current: CustomerProfile) -> list[tuple[str, str, str]]:
        """(label, what this form submitted, what is saved now) for each preference
        the two disagree on: what the user must look at after an edit conflict."""
        rows = []
        for name in CustomerProfile.PREFERENCE_FIELDS:
            mine, saved = self.cleaned_data.get(name), getattr(current, name)
            if mine != saved:
                field = self.fields[name]
                rows.append(
                    (str(field.label), _shown(field, mine), _shown(field, saved))
                )
        return rows


def _shown(field: forms.Field, value: Any) -> str:
    if isinstance(value, bool):
        return str(_("是") if value else _("否"))
    choices = dict(getattr(field, "choices", ()))
    return str(choices.get(value, value) or "—")


class ReassignForm(forms.Form):
    """New owner plus the ticked customers (checkboxes named `pick` in the list)."""

    new_owner = forms.ModelChoiceField(label=_("新负责人"), queryset=None)
    # A departing salesperson: every customer they own moves, not only the ticked ones.
    all_of_owner = forms.ModelChoiceField(required=False, queryset=None)

    def __init__(self, *args: Any, owners: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_owner"].queryset = owners
        self.fields["all_of_owner"].queryset = owners

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("all_of_owner"):
            data["customer_ids"] = None
            return data
        try:
            ids = [int(x) for x in self.data.getlist("pick")]
        except (ValueError, AttributeError) as exc:
            raise forms.ValidationError(_("客户选择无效。")) from exc
        if not ids:
            raise forms.ValidationError(_("请至少选择一位客户。"))
        data["customer_ids"] = ids[:5000]
        return data


class ReleaseForm(forms.Form):
    reason = forms.CharField(label=_("放回原因"), max_length=200)


class PoolFilterForm(forms.Form):
    """The pool's search and filters (公海): region, kind and source."""

    q = forms.CharField(required=False, max_length=bounds.SEARCH_MAX)
    kind = forms.ChoiceField(
        label=_("类型"),
        required=False,
        choices=[("", _("全部类型")), *Customer.Kind.choices],
    )
    source = forms.ChoiceField(
        label=_("来源渠道"),
        required=False,
        choices=[("", _("全部来源")), *Customer.Source.choices],
    )
    province = forms.CharField(label=_("省份"), required=False, max_length=20)
    city = forms.CharField(label=_("城市"), required=False, max_length=30)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            css = (
                "form-select"
                if isinstance(field.widget, forms.Select)
                else "form-control"
            )
            field.widget.attrs.setdefault("class", css)

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {}
        return {
            key: self.cleaned_data[key].strip()
            for key in ("kind", "source", "province", "city")
            if self.cleaned_data[key].strip()
        }


class RevealForm(forms.Form):
    reason = forms.CharField(label=_("查看原因"), max_length=200)
