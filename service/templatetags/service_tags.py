"""Service-desk pieces shown on other apps' pages."""

from __future__ import annotations

from typing import Any

from django import template

from service import selectors

register = template.Library()


@register.inclusion_tag("service/_customer_assets.html", takes_context=True)
def customer_assets_card(context: template.Context, customer: Any) -> dict[str, Any]:
    """The customer page's 资产 card (one query, whatever the number of assets)."""
    user = context["user"]
    return {
        "customer": customer,
        "assets": selectors.customer_assets(customer=customer),
        "can_add_asset": user.has_perm("service.add_asset"),
    }
