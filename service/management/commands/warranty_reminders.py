"""manage.py warranty_reminders: schedule the warranty expiry reminder of every asset
still in warranty (assets loaded in bulk, or saved before reminders existed).
Idempotent: an asset's reminder is keyed by its warranty date."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from service import warranty


class Command(BaseCommand):
    help = "Schedule warranty expiry reminders for every asset still in warranty."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            count = warranty.reminders_backfill()
        self.stdout.write(f"{count} assets in warranty: reminders scheduled.")
