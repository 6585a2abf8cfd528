"""Claiming due connections and probing them in batches (healthchecks' ``sendalerts`` habit).

A claim is one short transaction: ``SELECT … FOR UPDATE SKIP LOCKED`` of the due rows, then
stamping them with a claim token and a lease (``next_probe_at`` pushed ahead). Overlapping ticks
and several schedulers therefore never hand one connection to two batches; a batch applies its
results only while the claim is still its own; a batch lost with its worker leaves rows whose lease
runs out, and the next round claims them again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .choices import PROBED_STATES
from .health import apply_outcomes
from .models import Connection
from .probes import probe_many

log = logging.getLogger(__name__)


def claim_due(limit: int, now=None) -> tuple[uuid.UUID, list[int]]:
    """Claim up to ``limit`` due connections; returns the claim token and their ids."""
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        ids = list(
            Connection.objects.filter(status__in=PROBED_STATES, next_probe_at__lte=now)
            .order_by("next_probe_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Connection.objects.filter(pk__in=ids).update(
                probe_claim=token, next_probe_at=now + timedelta(seconds=settings.PROBE_CLAIM_LEASE)
            )
    return token, ids


def load_claimed(token: uuid.UUID, ids: list[int]) -> list[Connection]:
    return list(
        Connection.objects.filter(pk__in=ids, probe_claim=token, status__in=PROBED_STATES)
        .select_related("credential")
        .order_by("pk")
    )


def run_batch(token: uuid.UUID, ids: list[int]) -> Counter:
    """Probe the connections still claimed by ``token`` and apply the outcomes."""
    connections = load_claimed(token, ids)
    if not connections:
        return Counter(skipped=len(ids))
    outcomes = probe_many(connections)
    stats = apply_outcomes(zip(connections, outcomes, strict=True), claim=token)
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
