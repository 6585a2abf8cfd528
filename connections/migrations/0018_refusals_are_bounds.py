"""A probe refused by the product's own rules (egress, the credential's endpoints) was stored as
"refused"; that class now means "nothing listens on the port", and those refusals are "bounds"
(connections/probing/reasons.py). Rewritten in batches of ids, each its own transaction: the
probe results of a large fleet are never locked whole. Run it once the old workers have stopped
(a row an old worker writes after its batch keeps "refused" and reads as "nothing listens").
Backwards renames every "bounds" back to "refused": the old release then reads new "nothing
listens" failures as refusals too (the distinction is lost)."""

from django.db import migrations, transaction

BATCH = 20_000


def rename(apps, old: str, new: str) -> None:
    for model, field in (
        ("ProbeResult", "error_class"),
        ("Connection", "last_probe_class"),
        ("ConnectionTransition", "cause"),
    ):
        manager = apps.get_model("connections", model)._base_manager
        last = manager.order_by("-pk").values_list("pk", flat=True).first() or 0
        for start in range(0, last + 1, BATCH):
            with transaction.atomic():
                manager.filter(pk__gte=start, pk__lt=start + BATCH, **{field: old}).update(
                    **{field: new}
                )


def forwards(apps, schema_editor):
    rename(apps, "refused", "bounds")


def backwards(apps, schema_editor):
    rename(apps, "bounds", "refused")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("connections", "0017_db_defaults_for_rolling_deploys"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
