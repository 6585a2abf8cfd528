"""The table's uptime and latency columns (filled by the "Refresh uptime and latency" beat task
within UPTIME_INTERVAL of the upgrade; "no data" until then). Nullable columns: no rewrite of
the table, and the old release, which does not know them, writes rows without them. Their sort
index is built CONCURRENTLY by 0023."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

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
    ]
