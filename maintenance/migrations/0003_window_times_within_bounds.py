"""Windows saved before their times were bounded: a start or end beyond what every zone can
show (core/times.py) is brought to the bound, so their pages can be shown and the window
edited or deleted."""

from django.db import migrations


def clamp(apps, schema_editor):
    from core.times import EARLIEST, LATEST

    Window = apps.get_model("maintenance", "Window")
    for field in ("starts_at", "ends_at"):
        Window.objects.filter(**{f"{field}__lt": EARLIEST}).update(**{field: EARLIEST})
        Window.objects.filter(**{f"{field}__gt": LATEST}).update(**{field: LATEST})


class Migration(migrations.Migration):
    dependencies = [("maintenance", "0002_names_one_line")]

    operations = [migrations.RunPython(clamp, migrations.RunPython.noop)]
