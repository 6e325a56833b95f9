"""The owner's booking page behind their personal link (mobile-first, Chinese)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crm.accounts import access
from service.handover import links


@access.public
def owner_booking(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = links.open_link(token)
    except links.LinkError as error:
        return render(
            request,
            "handover/owner/link_error.html",
            {"reason": error.reason},
            status=404,
        )
    return render(request, "handover/owner/booking.html", {"link": link})
