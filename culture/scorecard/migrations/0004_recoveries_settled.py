"""Recoveries are counted as culture/satisfaction's recovery page counts them: on the
day the task was opened, settled (done, or past its due time) and done in time."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("scorecard", "0003_daily_indexes")]

    operations = [
        migrations.RenameField(
            model_name="scorecarddaily",
            old_name="recoveries_closed",
            new_name="recoveries_settled",
        ),
    ]
