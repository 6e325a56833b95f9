from django.db import migrations


class Migration(migrations.Migration):
    """Finer statistics on the name pieces, so the planner knows a common surname (王)
    from a rare one and picks the GIN index or the recency index accordingly."""

    dependencies = [("customers", "0003_importjob_importrow_importjob_importjob_user_recent_and_more")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE customers_customer ALTER COLUMN name_grams SET STATISTICS 1000",
            reverse_sql="ALTER TABLE customers_customer ALTER COLUMN name_grams SET STATISTICS -1",
        ),
    ]
