"""crm/core/form_renderer.py: widgets written in Python are the bytes Django's widget
templates write, for every kind of value the pages' forms hold."""

from __future__ import annotations

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from crm.core import form_renderer
from customers.forms import ContactQuickForm, CustomerFilterForm, RevealForm
from service import selectors
from service.forms import (
    AttachmentForm,
    QueueFilterForm,
    ReferenceForm,
    ReplyForm,
    TransitionForm,
    WorkOrderForm,
)
from service.models import Category

TEMPLATES = DjangoTemplates()
NASTY = "<b>\"'&amp; 王</b>"


class EveryWidget(forms.Form):
    text = forms.CharField(max_length=10, help_text="帮助", label=gettext_lazy("名称"))
    empty = forms.CharField(required=False)
    number = forms.IntegerField(min_value=1)
    decimal = forms.DecimalField(required=False)
    checked = forms.BooleanField(required=False)
    flag = forms.BooleanField(required=False, disabled=True)
    when = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "x"}))
    day = forms.DateField(required=False, widget=forms.DateInput(attrs={"x": None}))
    hidden = forms.CharField(widget=forms.HiddenInput, required=False)
    email = forms.EmailField(required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "data-x": True}))
    note = forms.CharField(widget=forms.Textarea, required=False)
    files = forms.FileField(required=False)
    choice = forms.ChoiceField(
        choices=[("", "全部"), ("a", NASTY), (1, 2), ("b", gettext_lazy("客户来信"))]
    )
    grouped = forms.ChoiceField(
        choices=[("", "—"), ("组一", [("x", "X"), ("y", mark_safe("<i>Y</i>"))])],
        required=False,
    )
    many = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B"), ("c", "C")])
    radio = forms.ChoiceField(choices=[("a", "A")], widget=forms.RadioSelect)


VALUES = [
    None,
    {
        "text": NASTY,
        "number": "12",
        "decimal": "1234.5",
        "checked": "on",
        "when": "2026-11-27 10:00",
        "hidden": mark_safe("<safe>"),
        "body": f"{NASTY}\n第二行",
        "choice": "a",
        "grouped": "y",
        "many": ["a", "c"],
        "radio": "a",
    },
    {"text": "x" * 20, "number": "zero", "choice": "nope", "many": ["zz"]},
]


def _both(form_class, *args, **kwargs):
    plain = form_class(*args, **kwargs, renderer=TEMPLATES)
    fast = form_class(*args, **kwargs, renderer=form_renderer.WidgetRenderer())
    return plain, fast


def _assert_same_widgets(plain, fast):
    plain.is_bound and plain.is_valid()
    fast.is_bound and fast.is_valid()
    for name in plain.fields:
        assert str(fast[name]) == str(plain[name]), name


@pytest.mark.parametrize("data", VALUES)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_widget_is_written_as_the_templates_write_it(data, language):
    with translation.override(language):
        _assert_same_widgets(*_both(EveryWidget, data, initial={"day": "2026-01-02"}))


def test_the_stock_widgets_take_the_python_path_and_others_the_templates():
    renderer = form_renderer.WidgetRenderer()
    for kind in ("text", "number", "checkbox", "datetime", "hidden", "email"):
        assert renderer._writer(f"django/forms/widgets/{kind}.html") is not None, kind
    assert renderer._writer(form_renderer.SELECT) is form_renderer._select
    assert renderer._writer(form_renderer.TEXTAREA) is form_renderer._textarea
    assert renderer._writer("django/forms/widgets/radio.html") is None
    assert renderer._writer("django/forms/div.html") is None


def test_a_changed_template_goes_back_to_the_templates(monkeypatch):
    monkeypatch.setitem(form_renderer.STOCK, form_renderer.ATTRS, "changed")
    renderer = form_renderer.WidgetRenderer()
    assert renderer._writer(form_renderer.SELECT) is None
    assert renderer._writer("django/forms/widgets/text.html") is None


def test_the_pages_forms_render_the_same(db):
    Category.objects.create(name="报修 <&>")
    cases = [
        (
            CustomerFilterForm,
            ({"kind": "nope", "owner": "1"},),
            {"owners": [], "teams": []},
        ),
        (CustomerFilterForm, (), {"owners": [], "teams": []}),
        (QueueFilterForm, ({"status": "new"},), {"categories": Category.objects.all()}),
        (ContactQuickForm, (), {}),
        (ContactQuickForm, ({"channel": "x"},), {}),
        (RevealForm, (), {}),
        (ReplyForm, ({"body": NASTY, "version": "1"},), {}),
        (AttachmentForm, (), {"initial": {"version": 3}}),
        (TransitionForm, ({"to_status": "?"},), {}),
        (ReferenceForm, (), {}),
        (WorkOrderForm, (), {"departments": selectors.departments()}),
    ]
    for form_class, args, kwargs in cases:
        _assert_same_widgets(*_both(form_class, *args, **kwargs))
