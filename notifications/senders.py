"""One sender per channel kind: it sends a message and says how it went, never raising.

Each runs on a thread of ``delivery``'s pool inside a ``transport.Session`` (the address guard
for webhooks and Apprise; email goes to the operator's own EMAIL_HOST, unguarded) and is
aborted at its deadline. Errors are scrubbed of the channel's secrets before they are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.conf import settings

from core.egress import Session, guarded
from core.text import one_line
from credentials.scrub import scrub_text, url_fragments, wire_forms

from .choices import ChannelKind

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


def secret_fragments(config: dict[str, Any]) -> set[str]:
    """What must never appear in a kept error: each URL's secret parts, the signing secret."""
    fragments = wire_forms(config["secret"]) if config.get("secret") else set()
    if config.get("url"):
        fragments |= url_fragments(config["url"])
    for url in config.get("urls") or ():
        fragments |= url_fragments(url, host_is_secret=True)
    return fragments


def send_webhook(config: dict[str, Any], body: bytes, key: str, session: Session) -> SendResult:
    import requests

    headers = {
        "Content-Type": "application/json",
        "User-Agent": "meshplay-connections",
        SIGNATURE_HEADER: sign(config["secret"], body),
        KEY_HEADER: key,
    }
    timeout = settings.NOTIFY_TIMEOUT
    # the guard follows no redirect and reads at most the session's bound of the answer
    with guarded(session), requests.Session() as http:
        http.trust_env = False  # no proxies from the environment, no .netrc
        response = http.post(config["url"], data=body, headers=headers, timeout=(timeout, timeout))
    code = response.status_code
    if 200 <= code < 300:
        return SendResult(True, status_code=code)
    retryable = code >= 500 or code in (408, 429)
    if 300 <= code < 400:
        return SendResult(False, f"HTTP {code}: redirects are not followed", code, False)
    said = answer_excerpt(
        response.content[:_BODY_READ_AT_MOST], response.headers.get("Content-Type", "")
    )
    return SendResult(False, f"{status_text(code)}{': ' + said if said else ''}", code, retryable)


def status_text(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def answer_excerpt(content: bytes, content_type: str) -> str:
    """What a refusing receiver said, as one short line of text: a JSON answer's message (or
    the JSON itself), a text answer's first line, an HTML page's title; never its markup."""
    text = content.decode("utf-8", "replace").strip()
    kind = content_type.split(";", 1)[0].strip().lower()
    if "json" in kind or text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("message", "error", "detail", "description"):
                if isinstance(data.get(key), str):
                    return _line(data[key])[:200]
        if data is not None:
            return _line(json.dumps(data))[:200]
    if "html" in kind or text[:1] == "<":
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        words = html.unescape(re.sub(r"<[^>]+>", " ", title.group(1))) if title else ""
        return _line(words)[:200] if words.strip() else "an HTML page"
    return _line(text.splitlines()[0] if text else "")[:200]


def _line(text: str) -> str:
    return " ".join(one_line(text).split())


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

    from .channels import apprise_service

    with guarded(session), apprise.LogCapture(level=apprise.logging.INFO) as logs:
        app = apprise.Apprise()
        for n, url in enumerate(config["urls"], 1):
            try:
                app.add(apprise_service(url))
            except ValueError as exc:  # settings changed, or stored before this check
                return SendResult(False, f"Apprise URL {n} is not sent to: {exc}", retryable=False)
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
    title = one_line(title)  # a subject is a header: a name stored with a line break stays one line
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
