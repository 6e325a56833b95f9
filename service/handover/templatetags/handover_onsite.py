"""The station capture panels and the case's outcome panel, for the station page
and the case page (`{% capture_panel case "fees" %}`, `{% case_outcomes case %}`).
render_to_string answers safe HTML (the templates escape what they show)."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string

register = template.Library()


@register.simple_tag(takes_context=True)
def capture_panel(context: template.Context, case: Any, code: str) -> str:
    from service.handover import capture_views

    return capture_views.render_panel(context["request"], case, code)


@register.simple_tag(takes_context=True)
def case_outcomes(context: template.Context, case: Any) -> str:
    from service.handover import capture_views

    request = context["request"]
    return render_to_string(
        "handover/onsite/_outcomes_panel.html",
        capture_views.outcome_context(request, case),
        request=request,
    )
