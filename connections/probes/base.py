from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

if TYPE_CHECKING:
    from connections.models import Connection


@dataclass
class ProbeOutcome:
    ok: bool
    latency_ms: float | None = None
    status_code: int | None = None
    # "", "timeout", "connect", "tls", "http", "auth", "refused", "invalid"
    error_class: str = ""
    error: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def auth_failure(self) -> bool:
        return self.error_class == "auth"

    @property
    def summary(self) -> str:
        if self.ok:
            return "reachable"
        return f"{self.error_class}: {self.error}" if self.error_class else self.error


_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")


def refusal_for(url: str) -> str | None:
    """Why a URL may not be probed (scheme, link-local metadata address), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs are probed"
    if getattr(settings, "PROBE_ALLOW_LINK_LOCAL", False):
        return None
    host = parts.hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return None  # the probe itself reports the name error
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip in _LINK_LOCAL_V4 or ip == _METADATA_V6:
            return f"{host} resolves to the link-local metadata address {ip}, which is refused"
    return None


class HttpProbe:
    """GET one path; reachable when the server answers below 500 and accepts the credential."""

    path = ""
    connect_timeout = 3.0
    total_timeout = 5.0

    def auth_headers(self, connection: Connection) -> dict[str, str]:
        credential = connection.credential
        if credential is None:
            return {}
        secret = credential.get_secret()
        if "token" in secret:
            return {"Authorization": f"Bearer {secret['token']}"}
        if "key" in secret:
            return {"Authorization": f"Bearer {secret['key']}"}
        if "username" in secret:
            basic = httpx.BasicAuth(secret["username"], secret["password"])
            request = next(basic.auth_flow(httpx.Request("GET", "http://x")))
            return {"Authorization": request.headers["Authorization"]}
        return {}

    def target(self, connection: Connection) -> str:
        return connection.url.rstrip("/") + self.path if self.path else connection.url

    def interpret(self, response: httpx.Response) -> ProbeOutcome:
        if response.status_code in (401, 403):
            return ProbeOutcome(
                ok=False,
                status_code=response.status_code,
                error_class="auth",
                error=f"authentication failed (HTTP {response.status_code})",
            )
        if response.status_code >= 500:
            return ProbeOutcome(
                ok=False,
                status_code=response.status_code,
                error_class="http",
                error=f"server error (HTTP {response.status_code})",
            )
        return ProbeOutcome(ok=True, status_code=response.status_code)

    async def probe(self, connection: Connection, client: httpx.AsyncClient) -> ProbeOutcome:
        url = self.target(connection)
        refusal = await asyncio.to_thread(refusal_for, url)
        if refusal:
            return ProbeOutcome(ok=False, error_class="refused", error=refusal)
        timeout = httpx.Timeout(self.total_timeout, connect=self.connect_timeout)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.total_timeout):
                response = await client.get(
                    url, headers=self.auth_headers(connection), timeout=timeout
                )
        except (TimeoutError, httpx.TimeoutException):
            return ProbeOutcome(
                ok=False, error_class="timeout", error=f"no answer within {self.total_timeout:g}s"
            )
        except httpx.ConnectError as exc:
            kind = "tls" if "SSL" in str(exc) or "certificate" in str(exc) else "connect"
            return ProbeOutcome(ok=False, error_class=kind, error=str(exc) or "connection failed")
        except httpx.HTTPError as exc:
            return ProbeOutcome(ok=False, error_class="connect", error=str(exc) or repr(exc))
        outcome = self.interpret(response)
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        return outcome


_PROBES: dict[str, HttpProbe] = {}
_DEFAULT = HttpProbe()


def register_probe(kind: str, probe: HttpProbe) -> HttpProbe:
    _PROBES[kind] = probe
    return probe


def get_probe(kind: str) -> HttpProbe:
    return _PROBES.get(kind, _DEFAULT)


def check_reachability(connection: Connection) -> ProbeOutcome:
    """Run one probe now, synchronously (the Add / Register buttons), within its own timeout."""

    async def run() -> ProbeOutcome:
        async with httpx.AsyncClient(verify=True, follow_redirects=False) as client:
            return await get_probe(connection.kind).probe(connection, client)

    try:
        return asyncio.run(run())
    except Exception as exc:  # a probe must report, never crash its caller
        return ProbeOutcome(ok=False, error_class="invalid", error=str(exc) or repr(exc))
