"""Which probe serves which kind, and running many probes at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

import httpx
from django.conf import settings

from .base import HttpProbe, Probe, ProbeOutcome

if TYPE_CHECKING:
    from connections.models import Connection

_PROBES: dict[str, Probe] = {}
_DEFAULT = HttpProbe()


def register_probe(probe: Probe) -> Probe:
    _PROBES[probe.kind] = probe
    return probe


def get_probe(kind: str) -> Probe:
    return _PROBES.get(kind, _DEFAULT)


async def _guarded(
    connection: Connection, client: httpx.AsyncClient, slots: asyncio.Semaphore
) -> ProbeOutcome:
    async with slots:
        try:
            return await get_probe(connection.kind).probe(connection, client)
        except Exception as exc:  # a probe reports; it never takes its batch down
            return ProbeOutcome(ok=False, error_class="invalid", error=str(exc) or repr(exc))


async def probe_many_async(
    connections: Iterable[Connection], concurrency: int | None = None
) -> list[ProbeOutcome]:
    """Probe concurrently (bounded), one shared HTTP client; results in the input's order."""
    items = list(connections)
    slots = asyncio.Semaphore(concurrency or settings.PROBE_CONCURRENCY)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(verify=True, follow_redirects=False, limits=limits) as client:
        return await asyncio.gather(*(_guarded(c, client, slots) for c in items))


def probe_many(
    connections: Iterable[Connection], concurrency: int | None = None
) -> list[ProbeOutcome]:
    items = list(connections)
    for connection in items:
        if connection.credential_id:
            connection.credential  # noqa: B018  (load it here: probes run where the ORM can't)
    return asyncio.run(probe_many_async(items, concurrency))


def check_reachability(connection: Connection) -> ProbeOutcome:
    """Run one probe now (the Add / Register buttons), bounded by the kind's timeout."""
    return probe_many([connection])[0]
