"""Cards that higher apps add to the ticket page's side column (the service layer cannot
import them). A panel is a template and a function (user, ticket) -> context, or None
when it has nothing to show that user; the template reads its context as `panel`.
The satisfaction survey (culture) registers its card in AppConfig.ready(). A panel's
function runs a fixed number of queries (the page's query count stays constant)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PanelContext = Callable[[Any, Any], dict[str, Any] | None]


@dataclass(frozen=True)
class Panel:
    name: str
    template: str
    context: PanelContext
    order: int = 100


_panels: dict[str, Panel] = {}


def register(panel: Panel) -> None:
    """Add `panel` (once: a second call with its name replaces it)."""
    _panels[panel.name] = panel


def rendered(*, user: Any, ticket: Any) -> list[tuple[str, dict[str, Any]]]:
    """(template, context) of every panel that has something for `user`, in order."""
    result = []
    for panel in sorted(_panels.values(), key=lambda p: (p.order, p.name)):
        context = panel.context(user, ticket)
        if context is not None:
            result.append((panel.template, context))
    return result
