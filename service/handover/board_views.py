"""交付大屏: the live board page (managers and admins), its 大屏 mode without the
navbar, and the two fragments it polls (the figures every 5 s, the unit grid every
10 s), so the page never reloads."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import get_language
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds
from service.handover import board, selectors
from service.handover.models import HandoverEvent

BOARD_ROLES = selectors.EVENT_ROLES
LIVE_SECONDS = 5
GRID_SECONDS = 10
LIVE_CACHE_SECONDS = 2
# The grid's HTML is shared by every screen watching the event for this long.
GRID_CACHE_SECONDS = 8
SCREEN = "screen"


def _visible_event(request: HttpRequest, pk: Any) -> HandoverEvent:
    return access.get_object_for(selectors.events_for(request.user), pk)


def _live_html(event: HandoverEvent) -> str:
    """The figures' HTML, shared by every screen of the event for LIVE_CACHE_SECONDS
    (a wall of screens polling every 5 s reads the counters once, not once each)."""
    key = f"handover:board-live:{event.pk}:{get_language()}"
    html = cache.get(key)
    if html is None:
        data = board.board(event)
        html = render_to_string(
            "handover/board/_live.html",
            {
                "event": event,
                "board": data,
                "charts": board.charts(data),
                "live_seconds": LIVE_SECONDS,
            },
        )
        cache.set(key, html, LIVE_CACHE_SECONDS)
    return html


@require_http_methods(["GET"])
@access.role_required(*BOARD_ROLES)
def board_current(request: HttpRequest) -> HttpResponse:
    """The navbar's 交付大屏: the board of the published event under way today (the
    latest starting, when several), else of the latest published event, else the list."""
    today = timezone.localdate()
    published = selectors.events_for(request.user).filter(
        status=HandoverEvent.Status.PUBLISHED
    )
    event = (
        published.filter(start_date__lte=today, end_date__gte=today)
        .order_by("-start_date", "-id")
        .first()
    ) or published.order_by("-start_date", "-id").first()
    if event is None:
        return redirect("handover:event_list")
    return redirect("handover:event_board", pk=event.pk)


@require_http_methods(["GET"])
@access.role_required(*BOARD_ROLES)
def event_board(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    screen = bounds.params(request).choice("mode", [SCREEN]) == SCREEN
    context = {
        "event": event,
        "live_html": _live_html(event),
        "live_seconds": LIVE_SECONDS,
        "screen": screen,
        "grid_seconds": GRID_SECONDS,
        "legend": board.grid_legend(),
    }
    template = "handover/board/screen.html" if screen else "handover/board/board.html"
    return render(request, template, context)


@require_http_methods(["GET"])
@access.role_required(*BOARD_ROLES)
def event_board_live(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    return HttpResponse(_live_html(event))


@require_http_methods(["GET"])
@access.role_required(*BOARD_ROLES)
def event_board_grid(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    key = f"handover:board-grid:{event.pk}:{get_language()}"
    html = cache.get(key)
    if html is None:
        html = render_to_string(
            "handover/board/_grid.html",
            {"event": event, "buildings": board.grid(event)},
        )
        cache.set(key, html, GRID_CACHE_SECONDS)
    return HttpResponse(html)
