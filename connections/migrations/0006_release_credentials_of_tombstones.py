# A deleted connection releases its credential; tombstones from before that rule still held
# one, which made deleting the credential fail.

from django.db import migrations


def release(apps, schema_editor):
    Connection = apps.get_model("connections", "Connection")
    Connection.objects.filter(status="deleted").exclude(credential=None).update(credential=None)


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0005_retry_interval_and_due_time'),
    ]

    operations = [
        migrations.RunPython(release, migrations.RunPython.noop),
    ]
