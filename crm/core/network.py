"""Who is on the other end of a request, as far as we can trust it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for lockouts and the audit log.

    With KEHU_PROXY_COUNT = 0 (no proxy) that is REMOTE_ADDR and X-Forwarded-For is
    ignored: a client could write anything there. Behind N proxies of our own, each
    appends the address it saw, so the client is the N-th entry from the right;
    anything further left came from the client and is not trusted.
    """
    proxies = settings.KEHU_PROXY_COUNT
    if proxies > 0:
        hops = [
            hop.strip()
            for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if hop.strip()
        ]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR")
