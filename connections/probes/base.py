"""What every probe shares: the outcome, the address guard, timeouts and the HTTP helper."""

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


class ProbeFailed(Exception):
    """Raised inside a probe to end it with a failed outcome."""

    def __init__(self, error_class: str, error: str, status_code: int | None = None) -> None:
        super().__init__(error)
        self.outcome = ProbeOutcome(
            ok=False, error_class=error_class, error=error, status_code=status_code
        )


_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")


def _forbidden_ip(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip in _LINK_LOCAL_V4 or ip == _METADATA_V6


def refusal_for(url: str) -> str | None:
    """Why a URL may not be probed (scheme, link-local metadata address, outside the
    PROBE_ALLOWED_NETWORKS allow-list), or None.

    Host names are resolved here; the check is a guard against configuration mistakes and
    metadata-service probing, not against a resolver that answers differently a moment later.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").split("%")[0]
    except ValueError:
        return "the URL cannot be parsed"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs are probed"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if settings.PROBE_ALLOWED_NETWORKS:  # decided before any name lookup
        ip = literal or (ipaddress.ip_address("127.0.0.1") if host == "localhost" else None)
        networks = [ipaddress.ip_network(net) for net in settings.PROBE_ALLOWED_NETWORKS]
        if ip is None or not any(ip.version == n.version and ip in n for n in networks):
            if literal is not None and _forbidden_ip(host) and not settings.PROBE_ALLOW_LINK_LOCAL:
                return f"{host} is the link-local metadata address {literal}, which is refused"
            return f"{host or 'the host'} is outside PROBE_ALLOWED_NETWORKS"
    if settings.PROBE_ALLOW_LINK_LOCAL:
        return None
    if literal is not None:
        addresses = {host}
    else:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except (OSError, UnicodeError):
            return None  # the probe itself reports the name error
    for address in addresses:
        if _forbidden_ip(address):
            return f"{host} is the link-local metadata address {address}, which is refused"
    return None


def _needs_resolving(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host != "localhost"
    return False


class Probe:
    """A probe returns a ProbeOutcome for one connection and never touches the database."""

    kind = ""

    def timeouts(self) -> tuple[float, float]:
        """(connect, total) seconds: PROBE_TIMEOUTS[kind], else PROBE_TIMEOUTS["default"]."""
        table = settings.PROBE_TIMEOUTS
        connect, total = table.get(self.kind, table["default"])
        return float(connect), float(total)

    async def check(self, connection: Connection, client: httpx.AsyncClient) -> ProbeOutcome:
        raise NotImplementedError

    async def probe(self, connection: Connection, client: httpx.AsyncClient) -> ProbeOutcome:
        _, total = self.timeouts()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(total):  # the name lookup of the guard counts too
                url = connection.url
                if _needs_resolving(url):
                    refusal = await asyncio.to_thread(refusal_for, url)
                else:
                    refusal = refusal_for(url)
                if refusal:
                    return ProbeOutcome(ok=False, error_class="refused", error=refusal)
                outcome = await self.check(connection, client)
        except ProbeFailed as failed:
            outcome = failed.outcome
        except TimeoutError:
            outcome = ProbeOutcome(
                ok=False, error_class="timeout", error=f"no answer within {total:g}s"
            )
        outcome.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return outcome


def auth_headers(connection: Connection) -> dict[str, str]:
    """HTTP auth from the connection's credential (bearer token, API key or basic auth)."""
    credential = connection.credential
    if credential is None:
        return {}
    secret = credential.get_secret()
    if "token" in secret:
        return {"Authorization": f"Bearer {secret['token']}"}
    if "key" in secret:
        return {"Authorization": f"Bearer {secret['key']}"}
    if "username" in secret:
        request = httpx.Request("GET", "http://localhost")
        basic = httpx.BasicAuth(secret["username"], secret["password"])
        return {"Authorization": next(basic.auth_flow(request)).headers["Authorization"]}
    return {}


class HttpProbe(Probe):
    """GET the connection's URL: reachable when it answers below 500 and accepts the credential."""

    kind = "http"

    async def get(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> httpx.Response:
        """One GET; transport errors, 401/403 and 5xx end the probe as failures."""
        connect, total = self.timeouts()
        try:
            response = await client.get(
                url, headers=headers, timeout=httpx.Timeout(total, connect=connect)
            )
        except httpx.TimeoutException as exc:
            raise ProbeFailed("timeout", f"no answer within {total:g}s") from exc
        except httpx.ConnectError as exc:
            text = str(exc) or "connection failed"
            tls = "SSL" in text or "certificate" in text
            raise ProbeFailed("tls" if tls else "connect", text) from exc
        except httpx.LocalProtocolError as exc:  # its text may quote a header: never keep it
            raise ProbeFailed("invalid", "the credential cannot be sent as an HTTP header") from exc
        except httpx.HTTPError as exc:
            raise ProbeFailed("connect", str(exc) or type(exc).__name__) from exc
        if response.status_code in (401, 403):
            raise ProbeFailed(
                "auth",
                f"authentication failed (HTTP {response.status_code})",
                response.status_code,
            )
        if response.status_code >= 500:
            raise ProbeFailed(
                "http", f"server error (HTTP {response.status_code})", response.status_code
            )
        return response

    async def check(self, connection: Connection, client: httpx.AsyncClient) -> ProbeOutcome:
        response = await self.get(client, connection.url, auth_headers(connection))
        return ProbeOutcome(ok=True, status_code=response.status_code)
