"""`{{ form.field|as_bootstrap_field }}`: crispy's Bootstrap 5 field, written in Python.

`as_crispy_field` renders bootstrap5/field.html and three templates it includes for every
field, about 1.2 ms of CPU per field (the service queue's four filters cost 5 ms a
request). For the plain fields (text, number, date and time inputs, selects, textareas)
this filter writes the same markup: the wrapper `div_<id>`, the label with the required
asterisk, the widget with crispy's classes (`form-select`, `form-control`, `is-invalid`),
and the errors (`<id>_error`, `error_<n>_<id>`), with less whitespace, built with
format_html only. Fields with help text (crispy prints it unescaped), checkboxes, radios,
files, multi-widgets and forms whose crispy helper changes the layout (labels hidden,
label or field classes, a field template, inline help text, horizontal forms) go to
`as_crispy_field` itself.
tests/core/test_bootstrap_field.py compares the two.
"""

from __future__ import annotations

from typing import Any

from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django import forms, template
from django.conf import settings
from django.forms import widgets
from django.forms.boundfield import BoundField
from django.utils.html import format_html, format_html_join

register = template.Library()

PLAIN_WIDGETS = (widgets.Input, forms.Select, forms.Textarea)
NOT_PLAIN = (
    forms.CheckboxInput,
    forms.RadioSelect,
    forms.CheckboxSelectMultiple,
    forms.FileInput,
    forms.MultiWidget,
)


LABEL = '<label{} class="form-label">{}</label>'
REQUIRED_LABEL = (
    '<label{} class="form-label requiredField">{}<span class="asteriskField">*</span>'
    "</label>"
)


def _layout(field: BoundField) -> dict[str, Any] | None:
    """crispy's attributes for the field, or None when the layout is not the default."""
    helper = getattr(field.form, "helper", None)
    if helper is None:
        return {"error_text_inline": False, "form_show_errors": True}
    if (
        helper.field_template
        or not helper.form_show_labels
        or helper.label_class
        or helper.field_class
        or helper.help_text_inline
        or "form-horizontal" in (helper.form_class or "")
    ):
        return None
    return {
        "error_text_inline": helper.error_text_inline,
        "form_show_errors": helper.form_show_errors,
    }


def _add_classes(field: BoundField, classes: str) -> None:
    """What crispy's {% crispy_field field 'class' classes %} does to the widget."""
    widget = field.field.widget
    converters = getattr(settings, "CRISPY_CLASS_CONVERTERS", {})
    class_name = widget.__class__.__name__.lower()
    class_name = converters.get(class_name, class_name)
    css_class = widget.attrs.get("class", "")
    if css_class:
        if css_class.find(class_name) == -1:
            css_class += f" {class_name}"
    else:
        css_class = class_name
    for extra in classes.split():
        if extra not in css_class.split():
            css_class += f" {extra}"
    widget.attrs["class"] = css_class


@register.filter
def as_bootstrap_field(field: BoundField) -> str:
    widget = field.field.widget
    layout = _layout(field) if isinstance(field, BoundField) else None
    if (
        layout is None
        or field.is_hidden
        or field.help_text  # crispy prints it unescaped: left to crispy
        or not isinstance(widget, PLAIN_WIDGETS)
        or isinstance(widget, NOT_PLAIN)
        or field.use_fieldset
    ):
        return as_crispy_field(field)
    errors = field.errors
    base = "form-select" if isinstance(widget, forms.Select) else "form-control"
    _add_classes(field, f"{base} is-invalid" if errors else base)
    auto_id = field.auto_id
    label = ""
    if field.label:
        label = format_html(
            REQUIRED_LABEL if field.field.required else LABEL,
            format_html(' for="{}"', field.id_for_label) if field.id_for_label else "",
            field.label,
        )
    error_list = ""
    if layout["form_show_errors"] and errors:
        tag = "span" if layout["error_text_inline"] else "p"
        error_list = format_html(
            '<div id="{}_error" class="invalid-feedback">{}</div>',
            errors.field_id,
            format_html_join(
                "",
                '<{0} id="error_{1}_{2}"><strong>{3}</strong></{0}>',
                ((tag, n, auto_id, error) for n, error in enumerate(errors, 1)),
            ),
        )
    css = field.css_classes()
    return format_html(
        '<div id="div_{}" class="mb-3{}">{}{}{}</div>',
        auto_id,
        f" {css}" if css else "",
        label,
        str(field),  # the widget's own (escaped) HTML
        error_list,
    )
