"""A form renderer that writes Django's plain widgets in Python instead of templates.

Django renders every widget through templates: a <select> of ten options is eleven
template renders (select.html, select_option.html each including attrs.html), about
0.4 ms of CPU apiece; the customer list's filter form alone spent about 3 ms a request
on them. `WidgetRenderer` produces the same bytes from the same widget context in a
fraction of that, for the stock templates of <input> (text, number, checkbox, ...),
<select> with its options and <textarea>. Any other template, and any of these when its
source is not the stock one (an app or a Django upgrade overriding it), goes through the
templates as before; tests/core/test_form_renderer.py checks that the output is equal.

Every name, value, label and attribute is escaped here exactly where the templates
escape it ({{ }} and |stringformat:'s'), which the tests check with markup in each of
them. `render()` returns a plain str for these widgets: Django's `Widget._render`, the
only caller that renders widget templates, marks a renderer's output safe, as it does
with the templates' output. (Building the same markup with format_html costs three
times as much: 1.2 ms against 0.35 ms for the list's filter form; the templates 1.7 ms.)

Use it per form: `SomeForm(..., renderer=form_renderer.FAST)`. Crispy fields go through
it too (crispy renders the widget with `str(bound_field)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.forms.renderers import DjangoTemplates
from django.template.base import render_value_in_context
from django.template.context import Context
from django.utils.html import escape
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


def _formatted(value: Any) -> str:
    """{{ value|stringformat:'s' }}: str(), escaped unless it was marked safe."""
    text = "%s" % (str(value) if isinstance(value, tuple) else value)  # noqa: UP031
    return text if isinstance(value, SafeData) else escape(text)


def _attrs(attrs: dict[str, Any]) -> str:
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        parts.append(" " + _text(name))
        if value is not True:
            parts.append('="' + _formatted(value) + '"')
    return "".join(parts)


def _input(widget: dict[str, Any]) -> str:
    value = widget["value"]
    return (
        f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"'
        + (f' value="{_formatted(value)}"' if value != None else "")  # noqa: E711
        + _attrs(widget["attrs"])
        + ">"
    )


def _select(widget: dict[str, Any]) -> str | None:
    parts = [f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            if option["template_name"] != OPTION:
                return None  # an option of another kind: the templates render it
            parts.append(
                f'\n  <option value="{_formatted(option["value"])}"'
                f"{_attrs(option['attrs'])}>{_text(option['label'])}</option>\n"
            )
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _textarea(widget: dict[str, Any]) -> str:
    value = widget["value"]
    return (
        f'<textarea name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>\n'
        + (_text(value) if value else "")
        + "</textarea>"
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
                # A plain str, as Widget._render marks what a renderer returns safe
                # (the templates' output too); every value in it was escaped above.
                return html
        return super().render(template_name, context, request=request)


FAST = WidgetRenderer()
