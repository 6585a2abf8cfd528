"""Why a probe failed, in words a person can act on: each failure has a class (set where the
error happened, never read back from text) and each class one sentence with a hint.

    refused   nothing listens on the port       "Nothing listens on db:5432: is the service …"
    dns       the name does not resolve         "nope.example does not resolve: check the name …"
    timeout   no answer in time                 "api:443 did not answer in time: …"
    tls       the TLS handshake or certificate  "The certificate of api has expired: renew it."
    http      a status that means failure       "api:443 answered 503 Service Unavailable: …"
    auth      the credential refused (401/403)  "api refused the credential (HTTP 401): …"
    body      not the answer the kind gives     "api:443 answered, but not as expected: …"
    bounds    not sent: outside what the product may reach or the credential may go to
    connect   any other network error           "Cannot connect to api:443: …"
    invalid   the connection's settings cannot be used

The raw text of the error stays with each probe result (the connection's page shows it) and in
each sentence's ``detail``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

CLASSES = (
    "refused",
    "dns",
    "timeout",
    "tls",
    "http",
    "auth",
    "body",
    "bounds",
    "connect",
    "invalid",
)

TITLES = {
    "refused": "Connection refused",
    "dns": "Name not found",
    "timeout": "Timed out",
    "tls": "TLS failed",
    "http": "HTTP error",
    "auth": "Credential refused",
    "body": "Unexpected answer",
    "bounds": "Not sent",
    "connect": "Cannot connect",
    "invalid": "Unusable settings",
}

# what a TLS error's text says, and what to do about it (OpenSSL's own words)
EXPIRED = "The certificate of {host} has expired: renew it."
NOT_YET = "The certificate of {host} is not valid yet: check its dates and the clocks."
SELF_SIGNED = "The certificate of {host} is self-signed: trust its CA, or use another one."
UNTRUSTED = "The certificate of {host} is not signed by a trusted authority: trust its CA."
OTHER_NAME = "The certificate of {host} is for another name: check the URL's host."
NOT_TLS = "{where} does not speak TLS: is it http:// rather than https://?"
TLS_HINTS = (
    ("certificate has expired", EXPIRED),
    ("certificate is not yet valid", NOT_YET),
    ("self-signed certificate", SELF_SIGNED),
    ("self signed certificate", SELF_SIGNED),
    ("unable to get local issuer", UNTRUSTED),
    ("hostname mismatch", OTHER_NAME),
    ("doesn't match", OTHER_NAME),
    ("wrong version number", NOT_TLS),
    ("record layer failure", NOT_TLS),
)


@dataclass(frozen=True)
class Explained:
    error_class: str
    title: str  # a few words: "Connection refused"
    sentence: str  # what happened and what to try
    detail: str  # the raw error, for whoever wants it

    def __str__(self) -> str:
        return self.sentence

    @property
    def brief(self) -> str:
        """What happened without the hint, as the middle of a sentence: "nothing listens on
        db:5432" (a location's part of "down in 1 of 3 locations (eu-west: …)")."""
        head = self.sentence.split(": ", 1)[0].rstrip(".")
        return head[:1].lower() + head[1:] if head[1:2].islower() else head


def where(url: str) -> tuple[str, str]:
    """``host`` and ``host:port`` of a URL (the default port filled in), as sentences name them."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or url
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        return url, url
    shown = f"[{host}]" if ":" in host else host
    return host, f"{shown}:{port}" if port else shown


def explain(error_class: str, error: str, url: str, status_code: int | None = None) -> Explained:
    """The sentence for a failure of ``error_class`` with ``error`` (its raw text) on ``url``."""
    host, hostport = where(url)
    detail = error.strip()
    text = _sentence(error_class, detail, host, hostport, status_code)
    return Explained(error_class, TITLES.get(error_class, "Failed"), text, detail)


def of_summary(error_class: str, summary: str, url: str) -> Explained:
    """The sentence for a stored summary (``last_probe_error``: "class: text")."""
    prefix = f"{error_class}: "
    text = summary[len(prefix) :] if error_class and summary.startswith(prefix) else summary
    code = None
    if error_class in ("http", "auth"):
        found = _HTTP_CODE.search(text)
        code = int(found.group(1)) if found else None
    return explain(error_class, text, url, code)


_HTTP_CODE = re.compile(r"HTTP (\d{3})\b")


def _status(code: int | None) -> str:
    if code is None:
        return "an error"
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _sentence(cls: str, detail: str, host: str, hostport: str, code: int | None) -> str:
    if cls == "refused":
        return f"Nothing listens on {hostport}: is the service running, on this port?"
    if cls == "dns":
        return f"{host} does not resolve: check the name, or the DNS the workers use."
    if cls == "timeout":
        return (
            f"{hostport} did not answer in time: it may be overloaded, or a firewall drops "
            "the traffic."
        )
    if cls == "tls":
        lowered = detail.lower()
        for words, hint in TLS_HINTS:
            if words in lowered:
                return hint.format(host=host, where=hostport)
        return f"The TLS handshake with {hostport} failed: {_clause(detail)}."
    if cls == "auth":
        code_text = f" (HTTP {code})" if code else ""
        return f"{host} refused the credential{code_text}: check it, or renew it."
    if cls == "http":
        if code == 404:
            return f"{hostport} answered 404 Not Found: check the URL's path."
        if code is not None and code >= 500:
            return f"{hostport} answered {_status(code)}: the service runs but is failing."
        if code is not None:
            return f"{hostport} answered {_status(code)}: {_clause(detail)}."
        return f"{hostport} answered with an error: {_clause(detail)}."
    if cls == "body":
        return f"{hostport} answered, but not as expected: {_clause(detail)}."
    if cls == "bounds":
        return f"Not probed: {_clause(detail)}."
    if cls == "invalid":
        return f"The connection's settings cannot be used: {_clause(detail)}."
    if cls == "connect":
        return f"Cannot connect to {hostport}: {_clause(detail)}."
    return _clause(detail) or "The probe failed."


def _clause(text: str) -> str:
    """A raw error as the end of a sentence: one line, its class prefix and final stop gone."""
    line = " ".join(text.split())
    for prefix in ("cannot connect: ", "TLS error: ", "cannot reach the API server: "):
        if line.startswith(prefix):
            line = line[len(prefix) :]
    return line.rstrip(".")
