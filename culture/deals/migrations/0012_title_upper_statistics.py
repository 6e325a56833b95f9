"""Statistics on UPPER(title), for the deal list's dense title search (selectors._search):
without them, PostgreSQL guesses that a LIKE matches 0.5 % of the deals."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("deals", "0011_title_grams")]

    operations = [
        migrations.RunSQL(
            "CREATE STATISTICS deal_title_upper ON (UPPER(title)) FROM deals_deal;"
            " ANALYZE deals_deal;",
            reverse_sql="DROP STATISTICS IF EXISTS deal_title_upper;",
        )
    ]
