# Credential now lives in the credentials app (same table): state only.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('environments', '0001_initial'),
        ('credentials', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='environment',
                    name='credentials',
                    field=models.ManyToManyField(blank=True, related_name='environments', to='credentials.credential'),
                ),
            ],
            database_operations=[],
        ),
    ]
