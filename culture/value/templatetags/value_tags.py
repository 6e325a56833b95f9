from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """0.8123 → "81.2%"; None (nothing to divide) → "—"."""
    if value is None:
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


@register.filter
def yuan(value: Any) -> str:
    """¥1,234,567 (whole yuan)."""
    if value is None:
        return "—"
    return f"¥{float(value):,.0f}"


@register.filter
def total(board: Any, name: str) -> Any:
    """The sum of one daily figure over a segment dashboard's period."""
    return board.total(name)
