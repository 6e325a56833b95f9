"""Money as managers read it: ¥ with thousands separators, in 万 from ten thousand up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def yuan(value: Any) -> str:
    amount = Decimal(value or 0)
    if abs(amount) >= 10_000:
        return _("¥%(amount)s 万") % {"amount": f"{amount / 10_000:,.1f}"}
    return f"¥{amount:,.0f}"
