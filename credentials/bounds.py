"""Where a secret may be sent: the one rule, used by the pages, the API, the admin and the workers.

A credential carries its endpoint bounds: origins ``scheme://host:port`` set by its owner (for a
kubeconfig, its clusters' servers). Two questions, answered here only:

- ``check_attach``: may this user attach this credential to a connection at this URL? The owner
  (or a superuser) may attach it within its bounds; an editor of an environment it is shared
  into may too; a viewer never attaches a shared credential. Moving a connection out of its
  credential's bounds is the same question and gets the same answer.
- ``secret_for``: the decrypted secret for a sender about to contact ``url``, or
  ``SecretRefused`` when ``url`` is outside the bounds. Every probe, discovery pass and scrape
  reads secrets through it.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from core.egress import host_problem

from .models import Credential

DEFAULT_PORTS = {"http": 80, "https": 443}


class SecretRefused(Exception):
    """A sender asked for a secret to send outside the credential's bounds."""


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, default port filled in (ValueError if none)."""
    if not isinstance(url, str):
        raise ValueError("not a URL")
    text = url.strip()
    if "://" not in text:
        raise ValueError("an endpoint is scheme://host[:port], e.g. https://prometheus.prod:9090")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("only http:// and https:// endpoints are accepted")
    host = parts.hostname or ""
    problem = host_problem(host)
    if problem:
        raise ValueError(problem)
    port = parts.port or DEFAULT_PORTS[scheme]  # ValueError for a port out of range
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = host.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def parse_endpoints(text: str) -> list[str]:
    """The owner's list (one per line or comma-separated) as origins; ValidationError naming
    the first bad line."""
    origins: list[str] = []
    for number, line in enumerate(text.replace(",", "\n").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            origins.append(origin_of(line))
        except ValueError as exc:
            raise ValidationError(f"Endpoint {number}: {exc}.", code="endpoint_invalid") from None
    if len(origins) > 100:
        raise ValidationError("At most 100 endpoints per credential.", code="endpoint_count")
    return list(dict.fromkeys(origins))


def permits(credential: Credential, url: str) -> bool:
    try:
        return origin_of(url) in (credential.endpoints or [])
    except ValueError:
        return False


def describe(credential: Credential) -> str:
    return ", ".join(credential.endpoints or []) or "nowhere (it has no endpoints yet)"


def check_attach(user: Any, credential: Credential | None, url: str) -> None:
    """Raise ValidationError (keyed ``credential`` or ``url``) unless ``user`` may have
    ``credential`` sent to ``url``. Called for a new connection and for every edit of a
    connection's URL or credential, from every entry point."""
    if credential is None:
        return
    if credential.pk is None:  # made in the same request, for this connection
        usable = user is not None and credential.owner_id == user.pk
    else:
        usable = Credential.objects.restrict(user, "use").filter(pk=credential.pk).exists()
    if not usable:
        raise ValidationError(
            {
                "credential": "You may not use this credential: it is not yours, and you are not "
                "an editor of an environment it is shared into."
            },
            code="credential_not_usable",
        )
    if not permits(credential, url):
        try:
            where = origin_of(url)
        except ValueError:
            where = "this URL"
        hint = (
            " Its owner can add the endpoint on the credential's page."
            if not credential.is_owned_by(user)
            else " Add the endpoint to the credential first."
        )
        if credential.kind == Credential.Kind.KUBECONFIG:
            hint = " A kubeconfig is sent only to its clusters' servers."
        raise ValidationError(
            {
                "url": f"Credential '{credential.name}' may be sent only to "
                f"{describe(credential)}; {where} is outside its bounds.{hint}"
            },
            code="credential_out_of_bounds",
        )


def not_sent(credential: Credential, url: str) -> str:
    """Why a sender may not send the secret to ``url``: read by everyone who sees the
    connection, so it names the credential (their page shows it) but not its other endpoints
    (its owner's page lists them)."""
    try:
        where = origin_of(url)
    except ValueError:
        where = "an unparseable URL"
    return (
        f"credential '{credential.name}' is not sent to {where}: it is outside the credential's "
        "endpoints (its owner may add it)"
    )


def secret_for(credential: Credential, url: str) -> dict[str, str]:
    """The secret, for a sender about to contact ``url``; SecretRefused outside the bounds."""
    if not permits(credential, url):
        raise SecretRefused(not_sent(credential, url))
    return credential.get_secret()
