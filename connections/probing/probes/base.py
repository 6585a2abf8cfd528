"""What every probe shares: the outcome, timeouts, the credential's headers and the GET."""

from __future__ import annotations

import asyncio
import errno
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from django.conf import settings
from django.utils import timezone

from core.egress import AddressRefused, url_refusal
from core.sanitize import clean_metadata
from credentials.bounds import SecretRefused, secret_for
from credentials.scrub import scrub

from ..reasons import explain
from .transport import NameNotResolved

if TYPE_CHECKING:
    from connections.models import Connection


@dataclass
class ProbeOutcome:
    ok: bool
    latency_ms: float | None = None
    status_code: int | None = None
    # "" or one of connections.probing.reasons.CLASSES
    error_class: str = ""
    error: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # when the probe began: the next one is due an interval after it
    started_at: datetime | None = None
    # A round from several locations (probing/rounds.judge): too few answered to judge it
    # (no state change, no count); what it saw beyond the state ("down in 1 of 3 locations
    # (…)"; None: not a round, the note is left alone); where it failed ("in 2 of 3 locations").
    abstain: bool = False
    note: str | None = None
    scope: str = ""

    @property
    def auth_failure(self) -> bool:
        return self.error_class == "auth"

    @property
    def summary(self) -> str:
        if self.ok:
            return "reachable"
        return f"{self.error_class}: {self.error}" if self.error_class else self.error

    def said(self, url: str) -> str:
        """The failure as a person reads it: a sentence with a hint (probing/reasons.py)."""
        if self.ok:
            return "reachable"
        return explain(self.error_class, self.error, url, self.status_code).sentence


class ProbeFailed(Exception):
    """Raised inside a probe to end it with a failed outcome."""

    def __init__(self, error_class: str, error: str, status_code: int | None = None) -> None:
        super().__init__(error)
        self.outcome = ProbeOutcome(
            ok=False, error_class=error_class, error=error, status_code=status_code
        )


@dataclass
class Answer:
    """What a GET brought back: the status and at most MAX_BODY bytes of the body."""

    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


MAX_BODY = 256 * 1024  # a probe reads a little; a server that streams forever is cut off


class BodyTooLarge(Exception):
    pass


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_BODY) -> bytes:
    """The whole body, however the server splits it into writes, up to ``limit`` bytes."""
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the answer is larger than {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


class Probe:
    """A probe returns a ProbeOutcome for one connection and never touches the database."""

    kind = ""

    def timeouts(self) -> tuple[float, float]:
        """(connect, total) seconds: PROBE_TIMEOUTS[kind], else PROBE_TIMEOUTS["default"]."""
        table = settings.PROBE_TIMEOUTS
        connect, total = table.get(self.kind, table["default"])
        return float(connect), float(total)

    async def check(self, connection: Connection, client: aiohttp.ClientSession) -> ProbeOutcome:
        raise NotImplementedError

    async def probe(self, connection: Connection, client: aiohttp.ClientSession) -> ProbeOutcome:
        """The probe within its total deadline (name lookup, connect, TLS, every read): a probe
        that has not ended by then is cancelled, and its slot is free only once it has."""
        _, total = self.timeouts()
        started_at = timezone.now()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(total):  # every GET is guarded (HttpProbe.get)
                outcome = await self.check(connection, client)
        except ProbeFailed as failed:
            outcome = failed.outcome
        except TimeoutError:
            outcome = ProbeOutcome(
                ok=False, error_class="timeout", error=f"no answer within {total:g}s"
            )
        outcome.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        outcome.started_at = started_at
        return scrubbed(outcome, connection)


def scrubbed(outcome: ProbeOutcome, connection: Connection) -> ProbeOutcome:
    """The outcome without the credential's secret in its error or metadata: a server that
    echoes the token (in an error, a version string) gets it shown nowhere."""
    credential = connection.credential
    if outcome.error:
        outcome.error = scrub(outcome.error, credential)
    if outcome.metadata:
        # reduced to scalars first (a dict becomes its text), then every text scrubbed
        outcome.metadata = {
            key: scrub(value, credential) if isinstance(value, str) else value
            for key, value in clean_metadata(outcome.metadata).items()
        }
    return outcome


def credential_secret(connection: Connection, url: str) -> dict[str, str] | None:
    """The connection's secret for a request to ``url``: refused (a failed probe, with the
    reason) when ``url`` is outside the credential's endpoint bounds."""
    credential = connection.credential
    if credential is None:
        return None
    try:
        return secret_for(credential, url)
    except SecretRefused as refused:
        raise ProbeFailed("bounds", str(refused)) from None


def auth_headers(connection: Connection, url: str | None = None) -> dict[str, str]:
    """HTTP auth from the connection's credential (bearer token, API key or basic auth), for a
    request to ``url`` (default: the connection's URL) inside the credential's bounds."""
    secret = credential_secret(connection, url or connection.url)
    if secret is None:
        return {}
    if "token" in secret:
        return {"Authorization": f"Bearer {secret['token']}"}
    if "key" in secret:
        return {"Authorization": f"Bearer {secret['key']}"}
    if "username" in secret:
        return {
            "Authorization": aiohttp.BasicAuth(
                secret["username"], secret["password"], encoding="utf-8"
            ).encode()
        }
    return {}


class HttpProbe(Probe):
    """GET the connection's URL: reachable when it answers below 500 and accepts the credential."""

    kind = "http"

    async def get(
        self,
        client: aiohttp.ClientSession,
        url: str,
        headers: dict[str, str],
        ssl: Any = True,
        server_hostname: str | None = None,
    ) -> Answer:
        """One GET; transport errors, 401/403 and 5xx end the probe as failures.

        A literal address is judged here (aiohttp does not ask the resolver for one); a name
        is judged by the session's resolver, address by address."""
        refusal = url_refusal(url)
        if refusal:
            raise ProbeFailed("bounds", refusal)
        connect, total = self.timeouts()
        try:
            async with client.get(
                url,
                headers=headers,
                allow_redirects=False,
                ssl=ssl,
                server_hostname=server_hostname,
                timeout=aiohttp.ClientTimeout(total=total, sock_connect=connect),
            ) as response:
                answer = Answer(response.status, await read_body(response))
        except AddressRefused as exc:
            raise ProbeFailed("bounds", str(exc)) from None
        except BodyTooLarge as exc:
            raise ProbeFailed("body", str(exc)) from None
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProbeFailed("timeout", f"no answer within {total:g}s") from exc
        except aiohttp.ClientSSLError as exc:
            raise ProbeFailed("tls", f"TLS error: {_reason(exc)}") from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                raise ProbeFailed("bounds", str(exc.os_error)) from None
            raise ProbeFailed(
                connect_class(exc.os_error), f"cannot connect: {_reason(exc)}"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProbeFailed("connect", _reason(exc) or type(exc).__name__) from exc
        except ValueError as exc:  # a header aiohttp refuses to send: its text may quote it
            raise ProbeFailed("invalid", "the credential cannot be sent as an HTTP header") from exc
        if answer.status_code in (401, 403):
            raise ProbeFailed(
                "auth",
                f"authentication failed (HTTP {answer.status_code})",
                answer.status_code,
            )
        if answer.status_code >= 500:
            raise ProbeFailed(
                "http", f"server error (HTTP {answer.status_code})", answer.status_code
            )
        return answer

    async def check(self, connection: Connection, client: aiohttp.ClientSession) -> ProbeOutcome:
        response = await self.get(client, connection.url, auth_headers(connection))
        return ProbeOutcome(ok=True, status_code=response.status_code)


def connect_class(error: BaseException | None) -> str:
    """A connection's failure by its cause: nothing listening ("refused"), a name that does not
    resolve ("dns"), or another network error ("connect")."""
    if isinstance(error, NameNotResolved):
        return "dns"
    if isinstance(error, ConnectionRefusedError) or (
        isinstance(error, OSError) and error.errno == errno.ECONNREFUSED
    ):
        return "refused"
    return "connect"


def _reason(exc: BaseException) -> str:
    """An exception's own words, one line, without the request it may quote."""
    text = str(getattr(exc, "os_error", None) or exc).splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]
