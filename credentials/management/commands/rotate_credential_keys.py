"""Re-encrypt every credential with the first key of CREDENTIAL_KEYS.

Rotation: put a new key first in CREDENTIAL_KEYS and keep the old ones after it (every key
decrypts, so nothing stops working), run this command, then drop the old keys.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from credentials import crypto
from credentials.models import Credential


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the primary credential key."

    def handle(self, *args, **options) -> None:
        rotated = 0
        with transaction.atomic():
            for credential in Credential.objects.select_for_update().only("secret_ciphertext"):
                new = crypto.rotate(credential.secret_ciphertext)
                if new != credential.secret_ciphertext:
                    Credential.objects.filter(pk=credential.pk).update(secret_ciphertext=new)
                    rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} credential(s) with the primary key.")
