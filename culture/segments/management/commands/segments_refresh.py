"""Recompute segment membership now: every dynamic segment, or one with --segment."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from culture.segments import services
from culture.segments.models import Segment


class Command(BaseCommand):
    help = "Recompute the members of dynamic segments (SQL, one statement each)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--segment", type=int, help="only this segment id")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["segment"]:
            if not Segment.objects.filter(pk=options["segment"]).exists():
                raise CommandError(f"no segment {options['segment']}")
            ids = [options["segment"]]
        else:
            ids = list(Segment.objects.dynamic().values_list("pk", flat=True))
        for pk in ids:
            entered, left = services.segment_refresh(segment_id=pk, reason="command")
            self.stdout.write(f"segment {pk}: +{entered} -{left}")
