"""Deterministic identities: one endpoint is one row, whoever adds it, however it is spelled."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from core.egress import host_problem

DEFAULT_PORTS = {"http": 80, "https": 443}


def validate_endpoint_url(url: str) -> None:
    """Only http(s) URLs with a valid host and nothing blank or invisible in them; a clear
    message otherwise."""
    if not isinstance(url, str):
        raise ValidationError("The URL must be text.", code="invalid_url")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url.strip()):
        raise ValidationError("The URL contains a space or control character.", code="invalid_url")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"Not a valid URL: {exc}.", code="invalid_url") from exc
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise ValidationError(
            "Only http:// and https:// URLs are supported.", code="unsupported_scheme"
        )
    if not parts.hostname:
        raise ValidationError("The URL has no host name.", code="missing_host")
    problem = host_problem(parts.hostname)
    if problem:
        raise ValidationError(f"The URL's host: {problem}.", code="bad_host")
    if parts.username or parts.password:
        raise ValidationError(
            "Put no user name or password in the URL: attach a credential instead.",
            code="userinfo_in_url",
        )
    if port == 0:
        raise ValidationError("The URL's port must be between 1 and 65535.", code="bad_port")


def endpoint_identity(kind: str, url: str) -> str:
    """``kind|scheme://host:port/path``: case, default ports and trailing slashes do not matter."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # unparseable: validate_endpoint_url says why
        return f"{kind}|{url.strip().lower()}"
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:  # an invalid port; validate_endpoint_url reports it
        port = 0
    path = parts.path.rstrip("/")
    return f"{kind}|{scheme}://{host}:{port}{path}"


def discovered_identity(cluster_id: str, namespace: str, name: str, port: int | str) -> str:
    """A resource found by discovery: cluster identity + namespace + name + port."""
    return f"discovered|{cluster_id}/{namespace}/{name}:{port}"
