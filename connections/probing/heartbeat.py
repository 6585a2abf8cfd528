"""A location's workers report that they are there: every LOCATION_HEARTBEAT seconds the main
process of a worker started with ``PROBE_LOCATION`` stamps its row (``LocationWorker``) with the
time and the probes a minute it did since the last stamp. The dispatcher sends rounds only to
locations with a fresh stamp; the locations page shows them (online, stale since when, probes a
minute, lag)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db import connection as db
from django.db.models.functions import Now

from connections.models import Location, LocationWorker

log = logging.getLogger(__name__)


def beat(node: str, name: str, last: tuple[float, int] | None) -> tuple[float, int] | None:
    """One heartbeat of ``node`` in location ``name``; returns what the next one measures the
    rate from (None: the location does not exist)."""
    location = Location.objects.filter(name=name).first()
    if location is None:
        log.error(
            "location %s is not configured: add it (manage.py locations add %s) and this "
            "worker joins it at its next heartbeat",
            name,
            name,
        )
        return None
    worker, _ = LocationWorker.objects.get_or_create(location=location, node=node)
    now = time.monotonic()
    rate = worker.probes_per_minute
    if last is not None and now > last[0]:
        rate = max(0.0, (worker.probes - last[1]) * 60.0 / (now - last[0]))
    LocationWorker.objects.filter(pk=worker.pk).update(
        heartbeat_at=Now(),
        probes_per_minute=rate,  # the database's clock, as every location
    )
    return now, worker.probes


def start(node: str, name: str, stop: threading.Event, receiving=lambda: True) -> threading.Thread:
    """Beat until ``stop`` is set, in a daemon thread; a database that is away costs a missed
    heartbeat, never the worker. ``receiving()``: whether the worker is connected to its
    broker now: one that cannot receive its rounds does not say it is there (it goes stale,
    and no round waits for it)."""

    def run() -> None:
        last = None
        first = LocationWorker.objects.filter(node=node, location__name=name)
        with contextlib.suppress(DatabaseError):
            first.update(started_at=Now(), probes=0, probes_per_minute=0)
        while not stop.is_set():
            try:
                close_old_connections()
                if not receiving():
                    log.warning("location heartbeat held: the worker has no broker connection")
                    stop.wait(settings.LOCATION_HEARTBEAT)
                    continue
                last = beat(node, name, last)
            except DatabaseError as exc:
                log.warning("location heartbeat missed: %s", exc)
                db.close()
            stop.wait(settings.LOCATION_HEARTBEAT)
        db.close()

    thread = threading.Thread(target=run, name="location-heartbeat", daemon=True)
    thread.start()
    return thread
