# The Credential model moves here from the connections app: state only, the table
# (connections_credential) and its rows stay as they are.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('connections', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Credential',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('kind', models.CharField(choices=[('bearer_token', 'Bearer token'), ('basic_auth', 'Basic auth'), ('api_key', 'API key'), ('kubeconfig', 'Kubeconfig')], max_length=32)),
                        ('secret_ciphertext', models.TextField(editable=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='credentials', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'connections_credential',
                        'ordering': ('name', 'pk'),
                        'constraints': [models.UniqueConstraint(fields=('owner', 'name'), name='unique_credential_per_owner')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
