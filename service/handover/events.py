"""What the handover tells other apps. The satisfaction survey (culture app) subscribes
with `on_handover_finished(hook)` in its AppConfig.ready(); the service layer cannot
import culture, so it only calls the hooks.

A unit's handover finishes with its accepted outcome (outcomes.case_accept, issue
17), once per appointment, after the outcome's transaction committed. An appointment
without a unit (an event without a scope) has no case: its check-in
(`services.appointment_check_in`) is its end and calls `handover_finished`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_finished_hooks: list[Callable[[Any], None]] = []


def on_handover_finished(hook: Callable[[Any], None]) -> None:
    if hook not in _finished_hooks:
        _finished_hooks.append(hook)


def handover_finished(appointment: Any) -> None:
    """Called after the transaction that finished the handover committed. A hook that
    fails is logged: the check-in is done and stays done."""
    for hook in _finished_hooks:
        try:
            hook(appointment)
        except Exception:
            logger.exception("handover_finished hook %r failed", hook)
