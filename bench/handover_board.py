"""`handover.board`: the 交付大屏 of seed_scale's on-the-day event
(service/handover/scale_onsite.py: 5,000 units, 4,250 cases in every state, 24,000
station visits, 3,000 defects), as managers' screens poll it: the page, the figures
fragment (every 5 s) and the unit grid (every 10 s, its HTML cached 8 s per process),
under 50 concurrent clients.

The board reads counters kept by the services; the generated rows have none, so the
recount (`handover_board_rebuild`'s counters.rebuild) runs once first, not timed.
"""

from __future__ import annotations

from typing import Any

CLIENTS = 50


def _event() -> Any:
    from service.handover import scale_onsite
    from service.handover.models import HandoverEvent

    return HandoverEvent.objects.filter(name=scale_onsite.EVENT_NAME).first()


def missing() -> str | None:
    """A `needs` check: the on-the-day event was built."""
    if _event() is None:
        return "the bench on-the-day handover event is missing"
    return None


def board_pages(fx: Any) -> list[str]:
    from service.handover import counters

    event = _event()
    counters.rebuild(event.pk)
    base = f"/handover/events/{event.pk}/board/"
    live, grid = f"{base}live/", f"{base}grid/"
    # Two figure polls per grid poll, and a page load now and then.
    return [base, live, grid, live, f"{base}?mode=screen", live, grid, live]
