"""How probes reach the network: one aiohttp session per batch, behind the address guard.

The guard decides which addresses may be contacted: never the link-local metadata service
(unless ``PROBE_ALLOW_LINK_LOCAL``), and only ``PROBE_ALLOWED_NETWORKS`` when that is set. It
is enforced where the address is chosen: ``GuardedResolver`` resolves a name once (c-ares via
aiodns, bounded concurrency, a short cache), drops the addresses the guard refuses, and aiohttp
connects to exactly the addresses it returned, with the name kept for Host and SNI. A resolver
that answers differently a moment later therefore changes nothing: there is no second lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings

from core.egress import AddressRefused, address_refusal


class GuardedResolver(AbstractResolver):
    """c-ares lookups, at most ``PROBE_DNS_CONCURRENCY`` at once, cached for
    ``PROBE_DNS_CACHE_SECONDS``; only addresses the guard allows are returned."""

    def __init__(self, nameservers: list[str] | None = None) -> None:
        import aiodns

        self._dns = aiodns.DNSResolver(
            nameservers=nameservers or settings.PROBE_DNS_SERVERS or None,
            timeout=float(settings.PROBE_TIMEOUTS["default"][0]),
            tries=3,  # c-ares shortens its timeout after fast answers: a slow one gets retried
        )
        self._slots = asyncio.Semaphore(settings.PROBE_DNS_CONCURRENCY)
        self._cache: dict[tuple[str, int], tuple[float, list[str] | str]] = {}
        self._pending: dict[tuple[str, int], asyncio.Task] = {}
        self.lookups = 0  # names actually sent to the DNS server (tests read it)

    async def _lookup(self, host: str, family: int) -> list[str] | str:
        """The addresses of ``host`` or the text of its error (cached either way).

        One lookup per name at a time, in a task of its own: a probe that gives up waiting
        (its deadline passed) cancels only its wait, never the lookup other probes share."""
        key = (host, family)
        cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._query(key))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(task)

    async def _query(self, key: tuple[str, int]) -> list[str] | str:
        host, family = key
        async with self._slots:
            self.lookups += 1
            result: list[str] | str
            # A timeout or an empty answer is asked again once. c-ares's timeout adapts to the
            # latencies it has seen, and when it gives up on a slow A query while the AAAA query
            # has answered empty, the lookup reports "no data" for a name that has an address.
            for _ in range(2):
                try:
                    answer = await self._dns.getaddrinfo(
                        host, family=family, type=socket.SOCK_STREAM
                    )
                    result = list(dict.fromkeys(_text(node.addr[0]) for node in answer.nodes))
                    if result:
                        break
                    result = f"{host} has no address"
                except Exception as exc:  # aiodns.error.DNSError and timeouts
                    result = f"cannot resolve {host}: {_dns_error(exc)}"
                    if not _worth_asking_again(result):
                        break
        ttl = settings.PROBE_DNS_CACHE_SECONDS if isinstance(result, list) else 2.0
        self._cache[key] = (time.monotonic() + ttl, result)
        return result

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        bare = host.split("%")[0]
        try:
            ipaddress.ip_address(bare)
            addresses: list[str] | str = [bare]
        except ValueError:
            addresses = await self._lookup(host, int(family))
        if isinstance(addresses, str):
            raise NameNotResolved(addresses)
        allowed, refusals = [], []
        for address in addresses:
            refusal = address_refusal(host, address)
            (refusals if refusal else allowed).append(refusal or address)
        if not allowed:
            raise AddressRefused(refusals[0])
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in allowed
        ]

    async def close(self) -> None:
        await self._dns.close()


class NameNotResolved(OSError):
    """A name the DNS does not resolve (its text says why): a probe's "dns" failure."""


def _text(address: str | bytes) -> str:
    return address.decode("ascii") if isinstance(address, bytes) else address


def _worth_asking_again(error: str) -> bool:
    """A timeout or an empty answer may be c-ares giving up early; a name error is final."""
    return "imeout" in error or "no data" in error


def _dns_error(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[1], str):
        return args[1]
    return type(exc).__name__


@asynccontextmanager
async def probe_session(
    resolver: AbstractResolver | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
    **connector: Any,
):
    """The HTTP session of one batch: guarded resolver, bounded concurrency per host, no proxy
    from the environment, no redirects followed (set per request), no cookies kept."""
    owned = resolver is None
    resolver = resolver or GuardedResolver()
    options = {
        "resolver": resolver,
        "use_dns_cache": False,  # the resolver caches; aiohttp must not skip it
        "limit": 0,  # the batch's semaphore bounds the probes in flight
        "limit_per_host": 0,  # per host: registry.probe_one, before the deadline starts
        "enable_cleanup_closed": True,
        **connector,
    }
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(**options),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
        raise_for_status=False,
        timeout=timeout or aiohttp.ClientTimeout(total=None),
    )
    try:
        yield session
    finally:
        await session.close()
        if owned:
            await resolver.close()
