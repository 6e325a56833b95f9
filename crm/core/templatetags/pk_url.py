"""`{% pk_url "customers:customer_detail" customer.pk %}`: {% url %} for a URL that takes
one integer id, reversed once per URL name instead of once per row.

A list of 25 rows with two links each ran 50 `reverse()` calls a page (about 1 ms of
CPU). The first call for a name reverses it with a marker id and keeps the text before
and after it; later calls join those with the id. The cache is keyed by the URLconf,
script prefix and language in force, so a request with another `urlconf`, prefix or
(were i18n_patterns ever used) language gets its own. Any argument that is not an int
goes through `reverse()` as {% url %} would.
"""

from __future__ import annotations

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.translation import get_language

register = template.Library()

MARKER = 8_191_919_191_919_191
_parts: dict[tuple[str, str | None, str, str | None], tuple[str, str] | None] = {}


def pk_url_of(name: str, pk: int) -> str:
    if type(pk) is not int:
        return reverse(name, args=[pk])
    key = (name, get_urlconf(), get_script_prefix(), get_language())
    parts = _parts.get(key, False)
    if parts is False:
        url = reverse(name, args=[MARKER])
        head, marker, tail = url.partition(str(MARKER))
        # A URL whose marker is not there exactly once keeps being reversed.
        parts = (head, tail) if marker and str(MARKER) not in tail else None
        _parts[key] = parts
    if parts is None:
        return reverse(name, args=[pk])
    return f"{parts[0]}{pk}{parts[1]}"


@register.simple_tag
def pk_url(name: str, pk: int) -> str:
    return pk_url_of(name, pk)  # escaped by simple_tag, as {% url %} escapes
