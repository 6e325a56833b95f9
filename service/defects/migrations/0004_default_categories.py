from django.db import migrations


def forwards(apps, schema_editor):
    from service.defects import catalog

    catalog.ensure(apps.get_model("defects", "DefectCategory"))


class Migration(migrations.Migration):
    dependencies = [("defects", "0003_contractor_staff_list_indexes")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
