"""Poisoned follow-up reminders, for `make chaos`'s poison scenario only.

The chaos run's worker imports this module (`celery worker --include
bench.chaos.poison`, after Django is set up), which wraps the follow-up reminder kind:
a reminder whose follow-up's note starts with POISON_LABEL raises, on the single path
and, for its whole group, on the batch path, every time, as a broken template or a bad
row would. Every other reminder goes through the real handlers. Nothing in the
application imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.chaos.load import POISON_LABEL
from crm.scheduler import registry
from customers import services
from customers.models import FollowUp


class PoisonedReminder(RuntimeError):
    pass


def _poisoned(target_ids: list[int]) -> list[int]:
    return list(
        FollowUp.objects.filter(
            pk__in=target_ids, note__startswith=f"{POISON_LABEL} "
        ).values_list("pk", flat=True)
    )


def install() -> None:
    real = registry.get(services.FOLLOWUP_REMINDER)
    assert real.batch_handler is not None

    def remind(action: Any) -> None:
        if _poisoned([action.target_id]):
            raise PoisonedReminder(f"poisoned follow-up {action.target_id}")
        real.handler(action)

    def remind_many(actions: Sequence[Any]) -> None:
        bad = _poisoned([action.target_id for action in actions])
        if bad:
            raise PoisonedReminder(f"poisoned follow-ups {bad}")
        real.batch_handler(actions)

    registry.register(
        services.FOLLOWUP_REMINDER,
        remind,
        at_most_once=real.at_most_once,
        batch_handler=remind_many,
    )


install()
