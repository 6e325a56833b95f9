"""`{% home_panel panel data %}`: renders one home-page panel (crm/core/home.py) with its
own data on top of the page's context, as {% include %} would with `with` arguments."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def home_panel(
    context: template.Context, panel: Any, data: dict[str, Any]
) -> SafeString:
    fragment = context.template.engine.get_template(panel.template)
    with context.push(**data):
        return fragment.render(context)
