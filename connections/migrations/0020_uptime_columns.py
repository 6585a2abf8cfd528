"""The table's uptime and latency columns (filled by the "Refresh uptime and latency" beat task
within UPTIME_INTERVAL of the upgrade; "no data" until then). The columns are nullable (no
rewrite of the table); the index is built CONCURRENTLY on PostgreSQL (writes go on), so this
migration runs outside one transaction and may run while the old release serves."""

from django.conf import settings
from django.db import migrations, models

from core.db import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("connections", "0019_plural_names"),
        ("credentials", "0003_names_one_line"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="latency_mean_ms",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="connection",
            name="uptime_24h",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="connection",
            name="uptime_30d",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="connection",
            name="uptime_7d",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        AddIndexOnline(
            model_name="connection",
            index=models.Index(fields=["uptime_24h", "id"], name="connection_uptime_24h_idx"),
        ),
    ]
