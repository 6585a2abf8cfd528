"""One sender per channel kind: it sends a message and says how it went, never raising.

Each runs on a thread of ``delivery``'s pool inside a ``transport.Session`` (the address guard
for webhooks and Apprise; email goes to the operator's own EMAIL_HOST, unguarded) and is
aborted at its deadline. Errors are scrubbed of the channel's secrets before they are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from credentials.scrub import scrub_text

from .choices import ChannelKind
from .transport import Session, guarded

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Meshplay-Signature"
KEY_HEADER = "X-Meshplay-Idempotency-Key"
_BODY_READ_AT_MOST = 2048


@dataclass
class SendResult:
    ok: bool
    error: str = ""
    status_code: int | None = None
    retryable: bool = True
    latency_ms: float | None = None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def secret_fragments(config: dict[str, Any]) -> list[str]:
    """What must never appear in a kept error: the URLs, their parts, the signing secret."""
    from urllib.parse import urlsplit

    fragments: list[str] = []
    for key in ("url", "urls", "secret"):
        values = config.get(key) or []
        for value in [values] if isinstance(values, str) else values:
            fragments.append(value)
            parts = urlsplit(value)
            fragments += [p for p in (parts.path, parts.query, parts.username, parts.password) if p]
            if key == "urls":  # an Apprise service may keep a token in the host part
                fragments.append(parts.netloc.rsplit("@", 1)[-1])
            fragments += [seg for seg in parts.path.split("/") if len(seg) >= 6]
    return [f for f in fragments if f and len(f) >= 4]


def send_webhook(config: dict[str, Any], body: bytes, key: str, session: Session) -> SendResult:
    import requests

    headers = {
        "Content-Type": "application/json",
        "User-Agent": "meshplay-connections",
        SIGNATURE_HEADER: sign(config["secret"], body),
        KEY_HEADER: key,
    }
    timeout = settings.NOTIFY_TIMEOUT
    with guarded(session), requests.Session() as http:
        http.trust_env = False  # no proxies from the environment, no .netrc
        response = http.post(
            config["url"],
            data=body,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
        try:
            text = response.raw.read(_BODY_READ_AT_MOST, decode_content=False) or b""
        finally:
            response.close()
    code = response.status_code
    if 200 <= code < 300:
        return SendResult(True, status_code=code)
    snippet = text.decode("utf-8", "replace").strip()[:200]
    retryable = code >= 500 or code in (408, 429)
    if 300 <= code < 400:
        return SendResult(False, f"HTTP {code}: redirects are not followed", code, False)
    return SendResult(False, f"HTTP {code}: {snippet}", code, retryable)


def send_email(config: dict[str, Any], title: str, text: str) -> SendResult:
    from django.core.mail import EmailMessage, get_connection

    connection = get_connection(timeout=settings.NOTIFY_TIMEOUT)
    EmailMessage(
        subject=title,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=config["to"],
        connection=connection,
    ).send()
    return SendResult(True)


def send_apprise(config: dict[str, Any], title: str, text: str, session: Session) -> SendResult:
    import apprise

    with guarded(session), apprise.LogCapture(level=apprise.logging.INFO) as logs:
        app = apprise.Apprise()
        for url in config["urls"]:
            if not app.add(url):
                return SendResult(False, "the Apprise URL is not valid", retryable=False)
        ok = app.notify(title=title, body=text)
    if ok:
        return SendResult(True)
    lines = [ln for ln in logs.getvalue().splitlines() if ln.strip()]
    return SendResult(False, " / ".join(lines[-3:])[:500] or "the service refused the message")


def send(
    kind: str,
    config: dict[str, Any],
    title: str,
    text: str,
    body: bytes,
    key: str,
    session: Session,
) -> SendResult:
    """Send; any exception becomes a failed (retryable) result with a scrubbed message."""
    started = time.perf_counter()
    try:
        if kind == ChannelKind.WEBHOOK:
            result = send_webhook(config, body, key, session)
        elif kind == ChannelKind.EMAIL:
            result = send_email(config, title, text)
        else:
            result = send_apprise(config, title, text, session)
    except Exception as exc:  # every failure is the delivery's, never the worker's
        if session.aborted:
            error = f"timed out after {settings.NOTIFY_TIMEOUT * 2:g} s"
        else:
            error = f"{type(exc).__name__}: {exc}"
        result = SendResult(False, error)
    if session.aborted:
        # cut off at its deadline: whatever the half-read answer looked like, it did not arrive
        result = SendResult(False, f"timed out after {settings.NOTIFY_TIMEOUT * 2:g} s")
    result.latency_ms = round((time.perf_counter() - started) * 1000, 1)
    result.error = scrub_text(result.error, secret_fragments(config))[:1000]
    return result


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
