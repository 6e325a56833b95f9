"""Rebuild the value rollups from scratch: the monthly revenue rollup, then (with
--all) the RFM scores, the tier rules and every segment dashboard's 180 days."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from culture.value import rollups, segment_dashboard, services


class Command(BaseCommand):
    help = "重建客户价值的汇总表（月度回款；--all 另含 RFM、等级规则和分群看板）"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="RFM、等级和分群看板也重算"
        )
        parser.add_argument("--segments", action="store_true", help="只重算分群看板")

    def handle(self, *args: Any, **options: Any) -> None:
        steps = []
        if not options["segments"]:
            steps.append(("revenue", rollups.revenue_rebuild))
        if options["all"]:
            steps += [("rfm", services.rfm_compute), ("tiers", services.tiers_assign)]
        if options["all"] or options["segments"]:
            steps.append(("segments", segment_dashboard.snapshots_rebuild))
        for name, step in steps:
            started = time.monotonic()
            result = step()
            self.stdout.write(f"{name}: {result} ({time.monotonic() - started:.1f} s)")
