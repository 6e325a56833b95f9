"""A form renderer that writes Django's plain widgets in Python instead of templates.

Django renders every widget through templates: a <select> of ten options is eleven
template renders (select.html, select_option.html each including attrs.html), about
0.4 ms of CPU apiece; the customer list's filter form alone spent about 3 ms a request
on them. `WidgetRenderer` produces the same bytes from the same widget context in a
fraction of that, for the stock templates of <input> (text, number, checkbox, ...),
<select> with its options and <textarea>. Any other template, and any of these when its
source is not the stock one (an app or a Django upgrade overriding it), goes through the
templates as before; tests/core/test_form_renderer.py checks that the output is equal.

Use it per form: `SomeForm(..., renderer=form_renderer.FAST)`. Crispy fields go through
it too (crispy renders the widget with `str(bound_field)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.forms.renderers import DjangoTemplates
from django.template.base import render_value_in_context
from django.template.context import Context
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeData

# The context a widget template is rendered with (the renderer's engine: autoescape on,
# use_l10n and use_tz from the settings).
_CONTEXT = Context(autoescape=True)

ATTRS = "django/forms/widgets/attrs.html"
INPUT = "django/forms/widgets/input.html"
SELECT = "django/forms/widgets/select.html"
OPTION = "django/forms/widgets/select_option.html"
TEXTAREA = "django/forms/widgets/textarea.html"
INCLUDE_INPUT = '{% include "django/forms/widgets/input.html" %}\n'

# The stock sources (Django 5.2) the Python versions below reproduce.
STOCK = {
    ATTRS: (
        "{% for name, value in widget.attrs.items %}{% if value is not False %} "
        "{{ name }}{% if value is not True %}=\"{{ value|stringformat:'s' }}\""
        "{% endif %}{% endif %}{% endfor %}"
    ),
    INPUT: (
        '<input type="{{ widget.type }}" name="{{ widget.name }}"'
        "{% if widget.value != None %} value=\"{{ widget.value|stringformat:'s' }}\""
        '{% endif %}{% include "django/forms/widgets/attrs.html" %}>\n'
    ),
    SELECT: (
        '<select name="{{ widget.name }}"{% include "django/forms/widgets/attrs.html" %}>'
        "{% for group_name, group_choices, group_index in widget.optgroups %}"
        "{% if group_name %}\n"
        '  <optgroup label="{{ group_name }}">{% endif %}'
        "{% for option in group_choices %}\n"
        "  {% include option.template_name with widget=option %}{% endfor %}"
        "{% if group_name %}\n"
        "  </optgroup>{% endif %}{% endfor %}\n"
        "</select>\n"
    ),
    OPTION: (
        "<option value=\"{{ widget.value|stringformat:'s' }}\""
        '{% include "django/forms/widgets/attrs.html" %}>{{ widget.label }}</option>\n'
    ),
    TEXTAREA: (
        '<textarea name="{{ widget.name }}"{% include "django/forms/widgets/attrs.html" %}>'
        "\n{% if widget.value %}{{ widget.value }}{% endif %}</textarea>\n"
    ),
}


def _text(value: Any) -> str:
    """{{ value }}: localised and escaped as a template variable is."""
    return render_value_in_context(value, _CONTEXT)


def _formatted(value: Any) -> Any:
    """{{ value|stringformat:'s' }}, for format_html to escape: str(), unless it was
    marked safe (then it stays as it is and is not escaped)."""
    if isinstance(value, SafeData):
        return value
    return "%s" % (str(value) if isinstance(value, tuple) else value)  # noqa: UP031


def _attrs(attrs: dict[str, Any]) -> str:
    return format_html_join(
        "",
        " {}{}",
        (
            (
                _text(name),
                "" if value is True else format_html('="{}"', _formatted(value)),
            )
            for name, value in attrs.items()
            if value is not False
        ),
    )


def _input(widget: dict[str, Any]) -> str:
    value = widget["value"]
    return format_html(
        '<input type="{}" name="{}"{}{}>',
        _text(widget["type"]),
        _text(widget["name"]),
        format_html(' value="{}"', _formatted(value)) if value != None else "",  # noqa: E711
        _attrs(widget["attrs"]),
    )


def _select(widget: dict[str, Any]) -> str | None:
    groups = []
    for group_name, group_choices, _index in widget["optgroups"]:
        if any(option["template_name"] != OPTION for option in group_choices):
            return None  # an option of another kind: the templates render it
        options = format_html_join(
            "",
            '\n  <option value="{}"{}>{}</option>\n',
            (
                (
                    _formatted(option["value"]),
                    _attrs(option["attrs"]),
                    _text(option["label"]),
                )
                for option in group_choices
            ),
        )
        if group_name:
            options = format_html(
                '\n  <optgroup label="{}">{}\n  </optgroup>', _text(group_name), options
            )
        groups.append((options,))
    return format_html(
        '<select name="{}"{}>{}\n</select>',
        _text(widget["name"]),
        _attrs(widget["attrs"]),
        format_html_join("", "{}", groups),
    )


def _textarea(widget: dict[str, Any]) -> str:
    value = widget["value"]
    return format_html(
        '<textarea name="{}"{}>\n{}</textarea>',
        _text(widget["name"]),
        _attrs(widget["attrs"]),
        _text(value) if value else "",
    )


class WidgetRenderer(DjangoTemplates):
    def __init__(self) -> None:
        super().__init__()
        self._writers: dict[str, Callable[[dict[str, Any]], str | None] | None] = {}

    def _source(self, template_name: str) -> str | None:
        try:
            return self.get_template(template_name).template.source
        except Exception:  # noqa: BLE001 - missing or unreadable: not a stock template
            return None

    def _is_stock(self, *names: str) -> bool:
        return all(self._source(name) == STOCK[name] for name in names)

    def _writer(
        self, template_name: str
    ) -> Callable[[dict[str, Any]], str | None] | None:
        if template_name not in self._writers:
            writer = None
            if template_name == SELECT and self._is_stock(SELECT, OPTION, ATTRS):
                writer = _select
            elif template_name == TEXTAREA and self._is_stock(TEXTAREA, ATTRS):
                writer = _textarea
            elif self._is_stock(INPUT, ATTRS) and (
                template_name == INPUT or self._source(template_name) == INCLUDE_INPUT
            ):
                writer = _input
            self._writers[template_name] = writer
        return self._writers[template_name]

    def render(
        self, template_name: str, context: dict[str, Any], request: Any = None
    ) -> str:
        writer = self._writer(template_name)
        if writer is not None and request is None and "widget" in context:
            html = writer(context["widget"])
            if html is not None:
                return html  # built by format_html
        return super().render(template_name, context, request=request)


FAST = WidgetRenderer()
