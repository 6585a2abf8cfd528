"""ApiToken now belongs to the accounts app (accounts/migrations/0001): the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0013_claimed_due_index"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiToken")],
            database_operations=[],
        ),
    ]
