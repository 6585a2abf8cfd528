"""Re-encrypt every stored secret with the first key of CREDENTIAL_KEYS: credentials' secrets and
every other column registered with ``crypto.holds_tokens`` (notification channels' settings).

Rotation: put a new key first in CREDENTIAL_KEYS and keep the old ones after it (every key
decrypts, so nothing stops working), give every process (web, workers, beat) that setting, run
this command, then drop the old keys. Rows the primary key already reads are left as they are
(a second run only finishes what the first did not). At its end the command reads every row
again with the primary key alone and names each one it cannot read (a process still on the old
setting, or a save that wrote back what it had loaded before the row's batch, put an old key's
token back): run it again before dropping the old keys.

Rows are re-encrypted in batches of ``--batch`` (default 500), each batch in its own transaction
with its rows locked: a save meanwhile waits for one batch, not for the whole table, and a
command stopped halfway leaves every row readable (run it again to finish).

A deployment that ran without CREDENTIAL_KEYS encrypted with a key derived from SECRET_KEY:
``--from-derived-key`` also reads with that key, so its secrets move to the configured key.
A secret no key reads is reported (model, field, id) and left as it is; the command then exits
with status 1.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from credentials import crypto


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the primary credential key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="rows per transaction")
        parser.add_argument(
            "--from-derived-key",
            action="store_true",
            help="also decrypt with the key derived from SECRET_KEY (a run without keys)",
        )

    def handle(self, *args, batch: int, from_derived_key: bool, **options) -> None:
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        if crypto.uses_derived_key():
            raise CommandError(
                "CREDENTIAL_KEYS is empty: put the new key first in it (see docs/operations.md)."
            )
        counts, unreadable = [], []
        for model, field in crypto.encrypted_columns():
            rotated, after = 0, 0
            while True:
                with transaction.atomic():
                    rows = list(
                        model._base_manager.select_for_update()
                        .filter(pk__gt=after)
                        .exclude(**{field: ""})
                        .order_by("pk")
                        .values_list("pk", field)[:batch]
                    )
                    for pk, token in rows:
                        if crypto.primary_reads(token):
                            continue  # rotated already
                        try:
                            new = crypto.rotate(token, with_derived_key=from_derived_key)
                        except crypto.InvalidToken:
                            unreadable.append(f"{model._meta.label}.{field} id {pk}")
                            continue
                        model._base_manager.filter(pk=pk).update(**{field: new})
                        rotated += 1
                if len(rows) < batch:
                    break
                after = rows[-1][0]
            counts.append(f"{rotated} {model._meta.verbose_name_plural} ({field})")
        self.stdout.write("Re-encrypted with the primary key: " + ", ".join(counts) + ".")
        behind = [
            f"{model._meta.label}.{field} id {pk}"
            for model, field in crypto.encrypted_columns()
            for pk, token in model._base_manager.exclude(**{field: ""})
            .order_by("pk")
            .values_list("pk", field)
            .iterator(chunk_size=2000)
            if not crypto.primary_reads(token)
            and f"{model._meta.label}.{field} id {pk}" not in unreadable
        ]
        if behind:
            self.stderr.write(
                f"{len(behind)} secrets are still under an older key (written meanwhile by a "
                "process on the old setting, or by a save of what it loaded before): run the "
                "command again before dropping the old keys: "
                + ", ".join(behind[:50])
                + (" …" if len(behind) > 50 else "")
            )
        if unreadable:
            self.stderr.write(
                f"{len(unreadable)} secrets no key in CREDENTIAL_KEYS reads (left as they are; "
                "add the key they were made with, or --from-derived-key): "
                + ", ".join(unreadable[:50])
                + (" …" if len(unreadable) > 50 else "")
            )
        if unreadable or behind:
            raise SystemExit(1)
