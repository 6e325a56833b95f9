from __future__ import annotations

from django.db import migrations

# Property sales' usual pipeline; an admin can rename, reorder or add stages.
DEFAULT_STAGES = [
    ("visit", "来访", 10, 10, False),
    ("pledge", "认筹", 20, 30, False),
    ("subscribe", "认购", 30, 60, False),
    ("sign", "签约", 40, 100, True),
    ("paid", "回款", 50, 100, True),
]


def add_stages(apps, schema_editor) -> None:
    stage_model = apps.get_model("deals", "DealStage")
    for code, name, position, probability, is_won in DEFAULT_STAGES:
        stage_model.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "position": position,
                "probability": probability,
                "is_won": is_won,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("deals", "0001_initial")]

    operations = [migrations.RunPython(add_stages, migrations.RunPython.noop)]
