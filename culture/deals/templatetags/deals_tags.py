from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()


@register.filter
def yuan(value: Any) -> str:
    """Whole yuan with thousands separators (¥2,860,000), as on the board, whatever
    the language (zh-hans formats leave integers ungrouped)."""
    try:
        return f"¥{Decimal(value or 0):,.0f}"
    except ArithmeticError:
        return "—"
