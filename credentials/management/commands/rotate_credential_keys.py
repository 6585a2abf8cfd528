"""Re-encrypt every stored secret with the first key of CREDENTIAL_KEYS: credentials' secrets and
every other column registered with ``crypto.holds_tokens`` (notification channels' settings).

Rotation: put a new key first in CREDENTIAL_KEYS and keep the old ones after it (every key
decrypts, so nothing stops working), run this command, then drop the old keys.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from credentials import crypto


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the primary credential key."

    def handle(self, *args, **options) -> None:
        counts = []
        with transaction.atomic():
            for model, field in crypto.encrypted_columns():
                rotated = 0
                rows = model._base_manager.select_for_update().only(field)
                for row in rows.exclude(**{field: ""}):
                    token = getattr(row, field)
                    new = crypto.rotate(token)
                    if new != token:
                        model._base_manager.filter(pk=row.pk).update(**{field: new})
                        rotated += 1
                counts.append(f"{rotated} {model._meta.verbose_name_plural} ({field})")
        self.stdout.write("Re-encrypted with the primary key: " + ", ".join(counts) + ".")
