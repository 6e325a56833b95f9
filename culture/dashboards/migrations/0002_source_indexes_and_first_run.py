"""Indexes the incremental refresh reads its touched days through (one range per day),
and the first refresh action (each run schedules the next one)."""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone

INDEXES = [
    ("rollup_src_contact_day", "customers_contactlog", "occurred_at"),
    ("rollup_src_followup_day", "customers_followup", "due_at"),
    ("rollup_src_deal_created", "deals_deal", "created_at"),
    ("rollup_src_ticket_created", "service_ticket", "created_at"),
    ("rollup_src_ticket_due", "service_ticket", "resolution_due_at"),
]


def first_run(apps, schema_editor):
    action = apps.get_model("scheduler", "ScheduledAction")
    due = timezone.now() + timedelta(minutes=1)
    action.objects.get_or_create(
        idempotency_key="dashboards:rollups:first",
        defaults={"kind": "dashboards.rollups_refresh", "target_id": 0, "due_at": due},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dashboards", "0001_initial"),
        ("customers", "0010_pool_reason_and_filters"),
        ("service", "0007_asset_settings_indexes"),
        ("scheduler", "0002_due_at_in_range_and_review_index"),
    ]

    operations = [
        *[
            migrations.RunSQL(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})",
                f"DROP INDEX IF EXISTS {name}",
            )
            for name, table, column in INDEXES
        ],
        migrations.RunPython(first_run, migrations.RunPython.noop),
    ]
