from __future__ import annotations

from decimal import Decimal

from django.db import migrations

# Property sales: two years' payments of ¥3,000,000 (two flats, or one large) make A,
# ¥1,000,000 (a flat and a parking space) B. Admins change them under /settings/value/.
DEFAULTS = [("A", 24, Decimal("3000000")), ("B", 24, Decimal("1000000"))]


def forwards(apps, schema_editor):
    TierRule = apps.get_model("value", "TierRule")
    for tier, months, revenue in DEFAULTS:
        TierRule.objects.get_or_create(
            tier=tier, defaults={"months": months, "min_revenue": revenue}
        )


class Migration(migrations.Migration):
    dependencies = [("value", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
