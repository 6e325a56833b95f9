"""Empty the culture scorecard's daily rollup and compute it again from all history."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from culture.scorecard import rollups


class Command(BaseCommand):
    help = "Rebuild the culture scorecard's rollups in full (docs/scorecard.md)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = rollups.rebuild()
        rollups.schedule_next()
        self.stdout.write(
            self.style.SUCCESS(
                f"scorecard rollups rebuilt: {result['days']} days "
                f"in {result['ms'] / 1000:.1f} s"
            )
        )
