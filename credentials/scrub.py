"""No secret in any text: what probes, discovery, scrapes and forms store or show passes here.

``scrub(text, credential)`` removes the credential's secret values (and the forms they take on
the wire: a basic-auth header, a repr with escapes) and any header value or token that an
error message quotes, whatever its source. Values shorter than ``MIN_SECRET_LENGTH`` are left
to the header rules: replacing every ``a`` in a text would say nothing and garble it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4
MAX_TEXT = 2000  # stored error texts are short; a formatted giant value never is

# Header values and token-looking things a library may quote in its error text.
_PATTERNS = [
    re.compile(
        r"(?i)(authorization|proxy-authorization|x-api-key|cookie)(['\"]?\s*[:=]\s*)"
        r"(['\"]?)[^'\"\r\n,}]*"
    ),
    re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=\-]{4,}"),
    re.compile(
        r"(?i)(token|password|passwd|secret|api[_-]?key)(['\"]?\s*[:=]\s*)(['\"]?)[^\s'\",}]+"
    ),
]


def wire_forms(value: str) -> set[str]:
    """The value and the forms it takes in other libraries' texts: stripped, escaped, upper
    or lower case, base64 (with and without padding)."""
    forms = {value, value.strip(), repr(value)[1:-1], value.upper(), value.lower()}
    encoded = base64.b64encode(value.encode("utf-8", "replace")).decode()
    forms |= {encoded, encoded.rstrip("=")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def secret_fragments(secret: dict[str, Any]) -> set[str]:
    """Every string of a decrypted secret that must not be shown, in its wire forms too."""
    fragments: set[str] = set()
    for key, value in secret.items():
        if not isinstance(value, str):
            continue
        if key == "kubeconfig":
            fragments |= _kubeconfig_fragments(value)
            continue
        fragments |= wire_forms(value)
    if "username" in secret and "password" in secret:
        pair = f"{secret['username']}:{secret['password']}".encode()
        fragments.add(base64.b64encode(pair).decode())
    return fragments


def url_fragments(url: str, *, host_is_secret: bool = False) -> set[str]:
    """Every part of a URL that may carry a secret, in its wire forms: the URL, its user
    and password, its query and each of its values (as sent and decoded: a receiver may quote
    either), its path and longer path segments; with ``host_is_secret`` (Apprise services
    that keep a token where a host would be), the host part too."""
    from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus, urlsplit

    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return wire_forms(url)
    pieces = [url, parts.path, parts.query, parts.fragment, username or "", password or ""]
    for pair in parts.query.split("&"):
        pieces += [pair, *pair.split("=", 1)]
    pieces += [v for pair in parse_qsl(parts.query, keep_blank_values=True) for v in pair]
    pieces += [segment for segment in parts.path.split("/") if len(segment) >= 6]
    if host_is_secret:
        pieces.append(parts.netloc.rsplit("@", 1)[-1])
    fragments: set[str] = set()
    for piece in pieces:
        decoded = {piece, unquote(piece), unquote_plus(piece)}
        # and as a client sends it: escaped (requests escapes what is not safe in a URL), its
        # escapes in either case
        sent = {quote(d, safe="") for d in decoded} | {quote_plus(d) for d in decoded}
        sent |= {quote(d, safe="/:=&?+%") for d in decoded}
        for form in decoded | sent:
            for cased in _escape_cases(form):
                fragments |= wire_forms(cased)
    return fragments


_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _escape_cases(text: str) -> set[str]:
    """``text`` with its percent escapes as they are, upper-cased and lower-cased."""
    if "%" not in text:
        return {text}
    return {
        text,
        _ESCAPE.sub(lambda m: m.group(0).upper(), text),
        _ESCAPE.sub(lambda m: m.group(0).lower(), text),
    }


def _kubeconfig_fragments(text: str) -> set[str]:
    import yaml

    fragments: set[str] = set()
    try:
        document = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError):
        return fragments
    for entry in (document or {}).get("users") or []:
        user = entry.get("user") if isinstance(entry, dict) else None
        for key in ("token", "password", "client-key-data", "client-certificate-data"):
            value = user.get(key) if isinstance(user, dict) else None
            if isinstance(value, str):
                fragments |= wire_forms(value)
        if isinstance(user, dict) and isinstance(user.get("password"), str):
            pair = f"{user.get('username', '')}:{user['password']}".encode()
            fragments.add(base64.b64encode(pair).decode())
    return fragments


def scrub_text(text: Any, fragments: Iterable[str] = ()) -> str:
    """``text`` without the given secret fragments, header values and token-looking values."""
    text = "" if text is None else str(text)
    # fragments go before any cut: a cut must never leave the start of a secret behind
    for fragment in sorted(fragments, key=len, reverse=True):
        if fragment:
            text = text.replace(fragment, REDACTED)
    if len(text) > MAX_TEXT * 4:
        text = text[: MAX_TEXT * 4]
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}", text)
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    return text


def scrub(text: Any, credential: Any = None) -> str:
    """``text`` safe to store and show: the credential's secrets and any header value removed."""
    fragments: set[str] = set()
    if credential is not None and getattr(credential, "secret_ciphertext", ""):
        try:
            fragments = secret_fragments(credential.get_secret())
        except Exception:  # an undecryptable secret has nothing to leak; headers still go
            fragments = set()
    return scrub_text(text, fragments)
