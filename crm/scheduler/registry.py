"""Which function carries out each kind of scheduled action.

Apps register their kinds in AppConfig.ready(). A handler receives the action and must be
idempotent on `action.idempotency_key`: a crash after it ran but before the action was
marked done makes it run again (at-least-once), unless the kind is at-most-once, in
which case such an action is parked as needs_review instead of being run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    name: str
    handler: Callable[[Any], None]
    at_most_once: bool = False


_KINDS: dict[str, Kind] = {}


def register(
    name: str, handler: Callable[[Any], None], *, at_most_once: bool = False
) -> None:
    _KINDS[name] = Kind(name=name, handler=handler, at_most_once=at_most_once)


def get(name: str) -> Kind:
    return _KINDS[name]


def at_most_once_kinds() -> list[str]:
    return [kind.name for kind in _KINDS.values() if kind.at_most_once]
