"""The hidden one-time token of a guarded form (`crm.core.once`)."""

from __future__ import annotations

import copy
from typing import Any

from crispy_forms.layout import Hidden
from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from crm.core import once

register = template.Library()


@register.simple_tag
def submit_once_field(form: Any = None) -> SafeString:
    """`{% submit_once_field form %}` inside a hand-written <form>."""
    return format_html(
        '<input type="hidden" name="{}" value="{}">', once.FIELD, once.token_for(form)
    )


@register.filter
def with_submit_once(form: Any) -> Any:
    """A copy of the form's crispy helper that also renders the token, for forms whose
    <form> tag crispy writes: `{% with helper=form|with_submit_once %}{% crispy form helper %}`."""
    helper = copy.copy(form.helper)
    helper.inputs = [*form.helper.inputs, Hidden(once.FIELD, once.token_for(form))]
    return helper
