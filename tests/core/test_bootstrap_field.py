"""crm/core/templatetags/bootstrap_field.py: `as_bootstrap_field` writes what crispy's
`as_crispy_field` writes (the same elements, attributes and text; whitespace aside)."""

from __future__ import annotations

import re

import pytest
from crispy_forms.helper import FormHelper
from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy

from crm.core.templatetags.bootstrap_field import as_bootstrap_field
from customers.forms import ContactQuickForm
from service import selectors
from service.forms import AttachmentForm, QueueFilterForm, TransitionForm, WorkOrderForm
from service.models import Category

NASTY = "<b>\"'&amp; 王</b>"


class Plain(forms.Form):
    text = forms.CharField(max_length=5, help_text="帮助 <i>safe</i>", label=NASTY)
    optional = forms.CharField(required=False, label=gettext_lazy("名称"))
    number = forms.IntegerField(widget=forms.NumberInput(attrs={"class": "narrow"}))
    when = forms.DateTimeField(required=False)
    choice = forms.ChoiceField(choices=[("", "全部"), ("a", NASTY)])
    many = forms.MultipleChoiceField(choices=[("a", "A")], required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"class": "form-control"}))
    nolabel = forms.CharField(label="", required=False)
    noid = forms.CharField(widget=forms.TextInput(attrs={"id": ""}), required=False)
    # These go to crispy itself.
    flag = forms.BooleanField(required=False)
    radio = forms.ChoiceField(choices=[("a", "A")], widget=forms.RadioSelect)
    upload = forms.FileField(required=False)
    hidden = forms.CharField(widget=forms.HiddenInput, required=False)


class WithHelper(Plain):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()


class ErrorCss(Plain):
    error_css_class = "has-error"
    required_css_class = "is-required"


class HiddenLabels(Plain):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_show_labels = False


DATA = [
    None,
    {"text": NASTY, "number": "3", "choice": "a", "body": NASTY, "radio": "a"},
    {"text": "toolong", "number": "x", "choice": "nope", "many": ["z"], "when": "x"},
]


def _normal(html: str) -> str:
    html = re.sub(r"\s+", " ", str(html))
    return re.sub(r"\s*(<[^>]*>)\s*", r"\1", html).strip()


def _assert_same(make):
    crispy, fast = make(), make()
    for form in (crispy, fast):
        form.is_bound and form.is_valid()
    for name in crispy.fields:
        expected = _normal(as_crispy_field(crispy[name]))
        assert _normal(as_bootstrap_field(fast[name])) == expected, name
        # Rendering again (crispy's classes are on the widget now) changes nothing.
        assert _normal(as_bootstrap_field(fast[name])) == expected, name


@pytest.mark.parametrize("form_class", [Plain, WithHelper, ErrorCss, HiddenLabels])
@pytest.mark.parametrize("data", DATA)
def test_every_field_is_written_as_crispy_writes_it(form_class, data):
    with translation.override("en"):
        _assert_same(lambda: form_class(data))


def test_the_plain_fields_do_not_go_through_crispy(monkeypatch):
    from crm.core.templatetags import bootstrap_field

    def refuse(field):
        raise AssertionError(f"{field.name} went to crispy")

    monkeypatch.setattr(bootstrap_field, "as_crispy_field", refuse)
    form = Plain({"text": "toolong"})
    for name in ("optional", "number", "when", "choice", "many", "body"):
        assert 'class="mb-3"' in as_bootstrap_field(form[name])


def test_the_pages_forms_are_written_as_crispy_writes_them(db):
    Category.objects.create(name="报修 <&>")
    categories = Category.objects.all()
    _assert_same(lambda: QueueFilterForm({"status": "?"}, categories=categories))
    _assert_same(lambda: QueueFilterForm({}, categories=categories))
    _assert_same(lambda: WorkOrderForm(departments=selectors.departments()))
    _assert_same(
        lambda: WorkOrderForm({"title": ""}, departments=selectors.departments())
    )
    _assert_same(lambda: TransitionForm({"to_status": "resolved"}))
    _assert_same(lambda: AttachmentForm())
    _assert_same(lambda: ContactQuickForm())
    _assert_same(lambda: ContactQuickForm({"channel": "x", "next_step_at": "y"}))
