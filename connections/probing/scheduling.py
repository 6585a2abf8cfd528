"""Claiming due connections and probing them in batches (healthchecks' ``sendalerts`` habit).

A claim is one short transaction: ``SELECT … FOR UPDATE SKIP LOCKED`` of the rows due within
the next tick, then stamping them with a claim token, the time each is due (``probe_due_at``)
and a short lease (``next_probe_at`` pushed ahead by PROBE_CLAIM_LEASE). Overlapping ticks and
several schedulers therefore never hand one connection to two batches.

A batch starts each probe at its due time (so a connection is probed every interval measured
from the start of its previous probe, not a tick late), writes results every
PROBE_APPLY_EVERY seconds as they come (a fast result never waits for a hung neighbour), and
renews the lease of what it has not written yet. A batch lost with its worker stops renewing:
its rows are claimed again within a lease, and its results, should it come back, are dropped
(they are applied only while the claim is still its own).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, When
from django.utils import timezone

from connections.choices import PROBED_STATES
from connections.models import Connection
from connections.probing.outcomes import apply_outcomes
from connections.probing.probes import ProbeOutcome, probe_many
from connections.probing.probes.registry import probe_one, run_async
from connections.probing.probes.transport import probe_session

log = logging.getLogger(__name__)


def claim_due(
    limit: int, now: datetime | None = None, horizon: float = 0.0
) -> tuple[uuid.UUID, list[int]]:
    """Claim up to ``limit`` connections due by ``now + horizon``; the token and their ids."""
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        ids = list(
            # due before the next tick (an index range, in order); a claimed row only once its
            # lease has run out
            Connection.objects.filter(
                status__in=PROBED_STATES,
                next_probe_at__lte=now + timedelta(seconds=horizon),
            )
            .filter(Q(probe_claim__isnull=True) | Q(next_probe_at__lte=now))
            .order_by("next_probe_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            # SET reads the old row: probe_due_at keeps the due time the lease overwrites; a
            # row claimed again after a lost batch keeps the time it was first due (how long
            # probing has stalled is read from it: ops.probing_state)
            Connection.objects.filter(pk__in=ids).update(
                probe_claim=token,
                probe_due_at=Case(
                    When(probe_claim__isnull=True, then=F("next_probe_at")),
                    default=F("probe_due_at"),
                ),
                next_probe_at=now + timedelta(seconds=settings.PROBE_CLAIM_LEASE),
            )
    return token, ids


def load_claimed(token: uuid.UUID, ids: list[int], renew: bool = True) -> list[Connection]:
    """The rows still claimed by ``token``, their lease renewed first: a batch that waited
    in the queue starts with a whole lease."""
    if renew:
        renew_lease(token, ids)
    return list(
        Connection.objects.filter(pk__in=ids, probe_claim=token, status__in=PROBED_STATES)
        .select_related("credential")
        .order_by("probe_due_at", "pk")
    )


def renew_lease(token: uuid.UUID, ids: list[int]) -> int:
    """Keep a running batch's unwritten rows claimed for another lease."""
    if not ids:
        return 0
    return Connection.objects.filter(pk__in=ids, probe_claim=token).update(
        next_probe_at=timezone.now() + timedelta(seconds=settings.PROBE_CLAIM_LEASE)
    )


async def _probe_at_due_times(
    connections: list[Connection], deliver, stop: threading.Event
) -> None:
    """Each probe at its due time; each outcome handed to ``deliver`` as soon as it is known.
    Setting ``stop`` cancels what has not ended (the batch's time limit)."""
    slots = asyncio.Semaphore(settings.PROBE_CONCURRENCY)
    hosts: dict[str, asyncio.Semaphore] = {}
    loop = asyncio.get_running_loop()
    wall, mono = time.time(), loop.time()
    # a due time further ahead than a tick is a clock that disagrees: never wait longer
    longest_wait = settings.PROBE_TICK + 1.0

    async def one(connection: Connection, client) -> None:
        due = connection.probe_due_at
        if due is not None:
            wait = due.timestamp() - wall - (loop.time() - mono)
            await asyncio.sleep(min(max(0.0, wait), longest_wait))
        deliver((connection, await probe_one(connection, client, slots, hosts)))

    async def watch(work: asyncio.Future) -> None:
        while not work.done():
            if stop.is_set():
                work.cancel()
                return
            await asyncio.sleep(0.2)

    async with probe_session() as client:
        work = asyncio.gather(*(one(c, client) for c in connections))
        watcher = asyncio.ensure_future(watch(work))
        try:
            await work
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        finally:
            watcher.cancel()


def run_batch(
    token: uuid.UUID,
    ids: list[int],
    *,
    write: Callable[[list[tuple[Connection, ProbeOutcome]]], Counter] | None = None,
    until: datetime | None = None,
) -> Counter:
    """Probe the connections still claimed by ``token``, each at its due time, and apply the
    outcomes as they come.

    The probes run on an event loop in a thread of their own; this thread, which owns the
    database connection, writes results every PROBE_APPLY_EVERY seconds and renews the lease
    of the rows not written yet.

    ``write``: a location's share of a round (probing/rounds.py) stores its outcomes this way
    instead; the round's lease is the dispatcher's, so nothing is renewed or given back here,
    and probing stops at ``until`` (the round's deadline)."""
    shared = write is not None
    connections = load_claimed(token, ids, renew=not shared)
    if not connections:
        return Counter(skipped=len(ids))
    for connection in connections:
        if connection.credential_id:
            connection.credential  # noqa: B018  (loaded here: probes run where the ORM can't)
    results: queue.SimpleQueue = queue.SimpleQueue()
    failure: list[BaseException] = []
    stop = threading.Event()
    write = write or (lambda chunk: apply_outcomes(chunk, claim=token))

    def probe_all() -> None:
        try:
            run_async(_probe_at_due_times(connections, results.put, stop))
        except BaseException as exc:  # re-raised below, in the thread that owns the batch
            failure.append(exc)

    prober = threading.Thread(target=probe_all, name="probe-loop", daemon=True)
    prober.start()
    stats: Counter = Counter()
    pending = {connection.pk for connection in connections}
    renew_every = max(settings.PROBE_CLAIM_LEASE / 3, 1.0)
    renewed = time.monotonic()
    try:
        while pending:
            prober.join(settings.PROBE_APPLY_EVERY)
            chunk = []
            while not results.empty():
                chunk.append(results.get())
            if chunk:
                stats.update(write(chunk))
                pending -= {connection.pk for connection, _ in chunk}
            if not prober.is_alive() and results.empty():
                break
            if until is not None and timezone.now() >= until:
                stats["late"] += len(pending)  # the round is over: no one reads them now
                stop.set()
                prober.join(5)
                break
            if not shared and time.monotonic() - renewed >= renew_every:
                renew_lease(token, list(pending))
                renewed = time.monotonic()
    except BaseException:
        # the task's time limit (or a crash): stop the probes, give the rest back at once
        stop.set()
        prober.join(5)
        if not shared:
            Connection.objects.filter(pk__in=list(pending), probe_claim=token).update(
                probe_claim=None, next_probe_at=timezone.now()
            )
        raise
    if failure:
        raise failure[0]
    stats["skipped"] += len(ids) - len(connections)
    return stats


def run_round(batch_size: int | None = None) -> Counter:
    """One whole round in this process (no broker): claim everything due, probe, apply."""
    started = time.perf_counter()
    batch_size = batch_size or settings.PROBE_BATCH_SIZE
    claims = []
    while True:
        token, ids = claim_due(batch_size)
        if not ids:
            break
        claims.append((token, load_claimed(token, ids)))
    everything = [c for _, batch in claims for c in batch]
    outcomes = iter(probe_many(everything))
    stats: Counter = Counter()
    for token, batch in claims:
        stats.update(apply_outcomes([(c, next(outcomes)) for c in batch], claim=token))
    stats["claimed"] = len(everything)
    log.info(
        "probe round claimed=%d ok=%d failed=%d transitions=%d stale=%d seconds=%.2f",
        stats["claimed"],
        stats["ok"],
        stats["failed"],
        stats["transitions"],
        stats["stale"],
        time.perf_counter() - started,
    )
    return stats


def reprobe_after_new_credential(credential) -> None:
    """A credential's secret or bounds changed (``credentials.models.on_sent_changed``): its
    connections' results in flight were made with the old one, so they are dropped (a new
    state version, no claim), and the probed ones are due now from a clean count."""
    live = Connection.objects.filter(credential=credential)
    live.update(state_version=F("state_version") + 1, probe_claim=None)
    live.filter(status__in=PROBED_STATES).update(
        next_probe_at=timezone.now(), consecutive_failures=0
    )
