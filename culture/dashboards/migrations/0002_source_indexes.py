"""Indexes the incremental refresh reads its touched days through (one range per day)."""

from django.db import migrations

INDEXES = [
    ("rollup_src_contact_day", "customers_contactlog", "occurred_at"),
    ("rollup_src_followup_day", "customers_followup", "due_at"),
    ("rollup_src_deal_created", "deals_deal", "created_at"),
    ("rollup_src_ticket_created", "service_ticket", "created_at"),
    ("rollup_src_ticket_due", "service_ticket", "resolution_due_at"),
]



class Migration(migrations.Migration):
    dependencies = [
        ("dashboards", "0001_initial"),
        ("customers", "0010_pool_reason_and_filters"),
        ("service", "0007_asset_settings_indexes"),
    ]

    operations = [
        *[
            migrations.RunSQL(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})",
                f"DROP INDEX IF EXISTS {name}",
            )
            for name, table, column in INDEXES
        ],
    ]
