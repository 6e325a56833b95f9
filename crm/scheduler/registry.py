"""Which function carries out each kind of scheduled action.

Apps register their kinds in AppConfig.ready(). A handler receives the action and must be
idempotent on `action.idempotency_key`: a crash after it ran but before the action was
marked done makes it run again (at-least-once), unless the kind is at-most-once, in
which case such an action is parked as needs_review instead of being run again.

A kind may also register a `batch_handler`, which receives a list of claimed actions of
that kind and carries them all out with a constant number of round trips (the workers
receive the sweep's ids in chunks). It must be idempotent per action key like the single
handler, may commit its own transactions (a handler that e-mails commits the record of
each e-mail as it leaves, so a crash leaves at most one in doubt), and must either carry
out every action it was given or raise: on an error the pipeline delivers each half of
that group again, down to single actions, which go through the single handler with
their own back-off, so one bad action cannot block the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    name: str
    handler: Callable[[Any], None]
    at_most_once: bool = False
    batch_handler: Callable[[Sequence[Any]], None] | None = None


_KINDS: dict[str, Kind] = {}


def register(
    name: str,
    handler: Callable[[Any], None],
    *,
    at_most_once: bool = False,
    batch_handler: Callable[[Sequence[Any]], None] | None = None,
) -> None:
    if at_most_once and batch_handler is not None:
        # A batch that failed halfway is redelivered in parts: fine for idempotent
        # kinds, a second message to a customer for an at-most-once one.
        raise ValueError(f"at-most-once kind {name!r} cannot have a batch handler")
    _KINDS[name] = Kind(
        name=name,
        handler=handler,
        at_most_once=at_most_once,
        batch_handler=batch_handler,
    )


def get(name: str) -> Kind:
    return _KINDS[name]


def at_most_once_kinds() -> list[str]:
    return [kind.name for kind in _KINDS.values() if kind.at_most_once]
