# Credential now lives in the credentials app (same table): state only.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0001_initial'),
        ('credentials', '0001_initial'),
        ('environments', '0002_credential_moved'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='connection',
                    name='credential',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='connections', to='credentials.credential'),
                ),
                migrations.DeleteModel(name='Credential'),
            ],
            database_operations=[],
        ),
    ]
