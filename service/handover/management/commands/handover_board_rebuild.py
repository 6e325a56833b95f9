"""Recount the live board's counters of one event (--event) or of every event that is
not a draft, from the cases, visits, defects, fees and ratings (counters.rebuild)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from service.handover import counters
from service.handover.models import HandoverEvent


class Command(BaseCommand):
    help = "Rebuild the 交付大屏 counters from the rows (service/handover/counters.py)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--event", type=int, help="the event's id (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        events = HandoverEvent.objects.exclude(status=HandoverEvent.Status.DRAFT)
        if options["event"] is not None:
            events = HandoverEvent.objects.filter(pk=options["event"])
            if not events.exists():
                raise CommandError(f"no event {options['event']}")
        for event_id in events.order_by("pk").values_list("pk", flat=True):
            started = time.monotonic()
            drift = counters.recount_differs(event_id)
            values = counters.rebuild(event_id)
            self.stdout.write(
                f"event {event_id}: {len(values)} counters rebuilt, "
                f"{len(drift)} had drifted, "
                f"{(time.monotonic() - started) * 1000:.0f} ms"
            )
