"""Probe now: one connection probed at once, as a scheduled probe would be (claimed, probed,
its outcome applied by the same rules: a failure below the threshold changes no state), for
the connection page's button and the API's ``probe`` action.

The probe runs in the web request (bounded by the probe's own timeouts), so it is bounded:
a connection probed less than ``PROBE_NOW_MIN_SECONDS`` ago (by anyone, or by the schedule) is
not probed again; one user has one probe-now running at a time and asks at most
``PROBE_NOW_PER_MINUTE`` a minute; and the web runs at most ``PROBE_NOW_CONCURRENCY`` of them at
once, whoever asks (a web worker is never all spent waiting on slow endpoints). The last three
are counted in the cache; without one, the first bound alone holds.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils import timezone

from core import access

from ..choices import PROBED_STATES
from ..models import Connection
from . import rounds
from .reasons import of_summary


class TooSoon(Exception):
    api_status, api_code = 429, "too_soon"


class NotProbed(Exception):
    api_status, api_code = 409, "not_probed"


@dataclass
class Probed:
    connection: Connection
    ok: bool
    said: str  # "reachable", or the failure's sentence with its hint
    latency_ms: float | None


def probe_now(user: Any, connection: Connection) -> Probed:
    if not access.may(user, connection, access.TRANSITION):
        raise PermissionDenied(f"You may view '{connection.name}' but not probe it now.")
    if connection.status not in PROBED_STATES:
        raise NotProbed(
            f"'{connection.name}' is {connection.get_status_display()}: it is not probed."
        )
    now = timezone.now()
    floor = settings.PROBE_NOW_MIN_SECONDS
    if connection.last_probe_at and now - connection.last_probe_at < timedelta(seconds=floor):
        raise TooSoon(
            f"'{connection.name}' was probed moments ago: wait {floor:g} s between probes."
        )
    key = f"probe-now:{user.pk}:{now:%Y%m%d%H%M}"
    cache.add(key, 0, timeout=70)
    try:
        asked = cache.incr(key)
    except ValueError:  # the cache lost it (or there is none): the per-connection bound holds
        asked = 1
    if asked > settings.PROBE_NOW_PER_MINUTE:
        raise TooSoon("Too many probes asked this minute: wait a moment.")
    held = _hold(user)
    try:
        return _probe(connection, now)
    finally:
        for slot in held:
            cache.delete(slot)


def _hold(user: Any) -> list[str]:
    """The user's one running probe-now and one of the web's slots, or TooSoon."""
    lease = settings.PROBE_CLAIM_LEASE
    mine = f"probe-now:running:{user.pk}"
    if not cache.add(mine, 1, timeout=lease):
        raise TooSoon("Your last probe is still running: its result comes first.")
    for i in range(settings.PROBE_NOW_CONCURRENCY):
        slot = f"probe-now:slot:{i}"
        if cache.add(slot, 1, timeout=lease):
            return [mine, slot]
    cache.delete(mine)
    raise TooSoon("Other probes asked now are running: try again in a few seconds.")


def _round(token: uuid.UUID, connection: Connection) -> None:
    """Probed from its locations (probing/rounds.py): the round is sent as the scheduler
    sends one, and the request waits for its decision (at most until the round's deadline)."""
    from connections.tasks import send_round

    send_round(token, [connection.pk])
    deadline = time.monotonic() + rounds.longest_timeout() + settings.ROUND_GRACE + 2
    decided = Connection.all_objects.filter(pk=connection.pk, probe_claim=token)
    while time.monotonic() < deadline and decided.exists():
        time.sleep(0.1)
    if decided.exists():  # no worker closed it: close it here with whatever answered
        rounds.close(token)


def _probe(connection: Connection, now) -> Probed:
    from .scheduling import run_batch

    token = uuid.uuid4()
    claimed = (
        Connection.objects.filter(pk=connection.pk, status__in=PROBED_STATES)
        .filter(Q(probe_claim__isnull=True) | Q(next_probe_at__lte=now))
        .update(
            probe_claim=token,
            probe_due_at=now,
            next_probe_at=now + timedelta(seconds=settings.PROBE_CLAIM_LEASE),
        )
    )
    if not claimed:
        raise TooSoon(f"'{connection.name}' is being probed right now: its result comes soon.")
    if rounds.active():
        _round(token, connection)
    else:
        run_batch(token, [connection.pk])
    fresh = Connection.all_objects.get(pk=connection.pk)
    if fresh.locations_note.startswith("none of its locations is online"):
        raise NotProbed(
            f"'{connection.name}' was not probed: none of its locations is online (see the "
            "Locations page)."
        )
    if fresh.last_probe_at is None or fresh.last_probe_at < now:
        # nothing applied: its state (or credential) changed while it was probed
        raise NotProbed(f"'{connection.name}' changed while it was probed: probe it again.")
    said = (
        "reachable"
        if fresh.last_probe_ok
        else of_summary(fresh.last_probe_class, fresh.last_probe_error, fresh.url).sentence
    )
    if fresh.locations_note:  # from several locations: where it failed, or who answered
        said = f"{said} ({fresh.locations_note})"
    return Probed(fresh, bool(fresh.last_probe_ok), said, fresh.last_latency_ms)
