"""Who hears what became of a message: `on_outcome(purpose, callback)`.

A domain registers a callback for its purpose in `AppConfig.ready()`; it is called with
the `OutboundMessage` once, when the message is sent or has failed for good, inside the
delivery's transaction (so what it writes commits exactly when the state does). A
callback that raises is logged and does not undo the delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_CALLBACKS: dict[str, list[Callable[[Any], None]]] = {}


def on_outcome(purpose: str, callback: Callable[[Any], None]) -> None:
    callbacks = _CALLBACKS.setdefault(purpose, [])
    if callback not in callbacks:
        callbacks.append(callback)


def callbacks_for(purpose: str) -> list[Callable[[Any], None]]:
    return list(_CALLBACKS.get(purpose, ()))
