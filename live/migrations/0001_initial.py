from django.db import migrations, models


def first_row(apps, schema_editor):
    apps.get_model("live", "ChangeStamp").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="ChangeStamp",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(first_row, migrations.RunPython.noop),
    ]
