"""Which probe serves which kind, and running many probes at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from django.conf import settings

from connections.probing.probes.base import HttpProbe, Probe, ProbeOutcome, scrubbed
from connections.probing.probes.transport import probe_session

if TYPE_CHECKING:
    from connections.models import Connection

_PROBES: dict[str, Probe] = {}
_DEFAULT = HttpProbe()


def register_probe(probe: Probe) -> Probe:
    _PROBES[probe.kind] = probe
    return probe


def get_probe(kind: str) -> Probe:
    return _PROBES.get(kind, _DEFAULT)


def _host_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{(parts.hostname or '').lower()}:{parts.port or parts.scheme}"
    except ValueError:
        return url


async def probe_one(
    connection: Connection,
    client: aiohttp.ClientSession,
    slots: asyncio.Semaphore,
    hosts: dict[str, asyncio.Semaphore] | None = None,
) -> ProbeOutcome:
    """One probe in a slot of the batch; whatever it raises becomes its own failed outcome.

    The host's slot (PROBE_PER_HOST_CONCURRENCY) is taken first, then the batch's, and only
    then does the probe's deadline start: waiting for a busy host is not the host's timeout,
    and it holds no slot another host could use."""
    hosts = {} if hosts is None else hosts
    key = _host_of(connection.url)
    if key not in hosts:
        hosts[key] = asyncio.Semaphore(settings.PROBE_PER_HOST_CONCURRENCY)
    async with hosts[key], slots:
        try:
            return await get_probe(connection.kind).probe(connection, client)
        except Exception as exc:  # a probe reports; it never takes its batch down
            text = str(exc) or type(exc).__name__
            return scrubbed(ProbeOutcome(ok=False, error_class="invalid", error=text), connection)


async def probe_many_async(
    connections: Iterable[Connection], concurrency: int | None = None
) -> list[ProbeOutcome]:
    """Probe concurrently (bounded), one shared session; results in the input's order."""
    items = list(connections)
    slots = asyncio.Semaphore(concurrency or settings.PROBE_CONCURRENCY)
    hosts: dict[str, asyncio.Semaphore] = {}
    async with probe_session() as client:
        return await asyncio.gather(*(probe_one(c, client, slots, hosts) for c in items))


def run_async(coroutine):
    """Run a coroutine on a fresh event loop (uvloop where installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; a platform may lack it
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def probe_many(
    connections: Iterable[Connection], concurrency: int | None = None
) -> list[ProbeOutcome]:
    items = list(connections)
    for connection in items:
        if connection.credential_id:
            connection.credential  # noqa: B018  (load it here: probes run where the ORM can't)
    return run_async(probe_many_async(items, concurrency))


def check_reachability(connection: Connection) -> ProbeOutcome:
    """Run one probe now (the Add / Register buttons), bounded by the kind's timeout."""
    return probe_many([connection])[0]
