"""`{{ form.field|as_bootstrap_field }}`: crispy's Bootstrap 5 field, written in Python.

`as_crispy_field` renders bootstrap5/field.html and three templates it includes for every
field, about 1.2 ms of CPU per field (the service queue's four filters cost 5 ms a
request). For the plain fields (text, number, date and time inputs, selects, textareas)
this filter writes the same markup: the wrapper `div_<id>`, the label with the required
asterisk, the widget with crispy's classes (`form-select`, `form-control`, `is-invalid`),
the errors (`<id>_error`, `error_<n>_<id>`) and the help text (`<id>_helptext`), with
less whitespace. Checkboxes, radios, files, multi-widgets and forms whose crispy helper
changes the layout (labels hidden, label or field classes, a field template, inline help
text, horizontal forms) go to `as_crispy_field` itself.
tests/core/test_bootstrap_field.py compares the two.
"""

from __future__ import annotations

from typing import Any

from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django import forms, template
from django.conf import settings
from django.forms import widgets
from django.forms.boundfield import BoundField
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

PLAIN_WIDGETS = (widgets.Input, forms.Select, forms.Textarea)
NOT_PLAIN = (
    forms.CheckboxInput,
    forms.RadioSelect,
    forms.CheckboxSelectMultiple,
    forms.FileInput,
    forms.MultiWidget,
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
def as_bootstrap_field(field: BoundField) -> SafeString:
    widget = field.field.widget
    layout = _layout(field) if isinstance(field, BoundField) else None
    if (
        layout is None
        or field.is_hidden
        or not isinstance(widget, PLAIN_WIDGETS)
        or isinstance(widget, NOT_PLAIN)
        or field.use_fieldset
    ):
        return as_crispy_field(field)
    errors = field.errors
    base = "form-select" if isinstance(widget, forms.Select) else "form-control"
    _add_classes(field, f"{base} is-invalid" if errors else base)
    auto_id = field.auto_id
    required = field.field.required
    css = field.css_classes()
    parts = [
        format_html(
            '<div id="div_{}" class="mb-3{}">', auto_id, f" {css}" if css else ""
        )
    ]
    if field.label:
        id_for_label = field.id_for_label
        parts.append(
            format_html(
                '<label {}class="form-label{}">{}{}</label>',
                format_html('for="{}" ', id_for_label) if id_for_label else "",
                " requiredField" if required else "",
                field.label,
                mark_safe('<span class="asteriskField">*</span>') if required else "",
            )
        )
    parts.append(str(field))
    if layout["form_show_errors"] and errors:
        tag = "span" if layout["error_text_inline"] else "p"
        parts.append(
            format_html('<div id="{}_error" class="invalid-feedback">', errors.field_id)
        )
        for n, error in enumerate(errors, 1):
            parts.append(
                format_html(
                    '<{} id="error_{}_{}"><strong>{}</strong></{}>',
                    tag,
                    n,
                    auto_id,
                    error,
                    tag,
                )
            )
        parts.append(SafeString("</div>"))
    if field.help_text:
        parts.append(
            format_html(
                '<div {}class="form-text">{}</div>',
                format_html('id="{}_helptext" ', auto_id) if auto_id else "",
                mark_safe(field.help_text),  # noqa: S308 - crispy renders it |safe too
            )
        )
    parts.append(SafeString("</div>"))
    # Every part is format_html's or the widget's escaped output.
    return SafeString("".join(parts))
