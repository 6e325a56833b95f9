from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext

from customers import masking

register = template.Library()

NO_PHONE = format_html('<span class="text-secondary">{}</span>', "—")


@register.filter
def mask_phone(value: str) -> str:
    return masking.mask_phone(value or "")


@register.simple_tag(takes_context=True)
def phone(context: template.Context, number: str) -> str:
    """A phone number as the user may see it: in full when the page's `can_see_pii`
    is set, else masked (138****5678) with a hint; a dash when there is none.
    customers/_phone.html is this tag, for the templates that include it."""
    if not number:
        return NO_PHONE
    if context.get("can_see_pii"):
        return number  # escaped by simple_tag
    return format_html(
        '<span title="{}">{}</span>', gettext("已脱敏"), masking.mask_phone(number)
    )


@register.filter
def may(user: object, perm: str) -> bool:
    """`perms.app.codename`, with import and export for sales when the organisation
    allows it (customers.permissions.may, KEHU_SALES_IMPORT_EXPORT)."""
    from customers import permissions

    return bool(getattr(user, "is_authenticated", False)) and permissions.may(
        user, perm
    )


@register.simple_tag(takes_context=True)
def customer_panels(context: template.Context, customer: object) -> str:
    """The cards other apps registered for the customer page (customers/panels.py)."""
    from django.template.loader import render_to_string
    from django.utils.html import format_html_join

    from customers import panels

    request = context.get("request")
    parts = [
        render_to_string(name, panel_context, request=request)
        for name, panel_context in panels.rendered(user=request.user, customer=customer)
    ]
    # Each part is a rendered (autoescaped, safe) template: joined without escaping.
    return format_html_join("", "{}", ((part,) for part in parts))
