"""Probe due connections in the foreground, without a broker (cron, debugging, small installs)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from connections.probing.scheduling import run_round


class Command(BaseCommand):
    help = "Probe every due connection now; with --once a single round, else one per tick."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="run one round and exit")

    def handle(self, *args, once: bool = False, **options) -> None:
        while True:
            stats = run_round()
            self.stdout.write(
                f"probed {stats['claimed']}: {stats['ok']} ok, {stats['failed']} failed, "
                f"{stats['transitions']} state changes, {stats['stale']} dropped as stale"
            )
            if once:
                return
            time.sleep(settings.PROBE_TICK)
