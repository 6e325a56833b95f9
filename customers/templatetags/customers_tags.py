from __future__ import annotations

from django import template

from customers import masking

register = template.Library()


@register.filter
def mask_phone(value: str) -> str:
    return masking.mask_phone(value or "")
