"""What the service desk tells other apps. The satisfaction survey (culture app)
subscribes to `ticket_resolved` with `on_ticket_resolved(hook)` when it lands; until then
a resolved ticket simply keeps its resolution summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_resolved_hooks: list[Callable[[Any], None]] = []


def on_ticket_resolved(hook: Callable[[Any], None]) -> None:
    if hook not in _resolved_hooks:
        _resolved_hooks.append(hook)


def ticket_resolved(ticket: Any) -> None:
    """Called after the resolving transaction committed."""
    for hook in _resolved_hooks:
        hook(ticket)
