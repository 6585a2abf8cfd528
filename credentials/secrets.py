"""Validation of credential secrets, per credential kind, with messages a user can act on.

Secrets are normalised (surrounding whitespace dropped) and refused with an inner control
character, so that no secret can break an HTTP header and be quoted back in its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from django import forms
from django.core.exceptions import ValidationError

from core.text import has_control_characters
from credentials.kubeconfig import kubeconfig_insecure, kubeconfig_servers, parse_kubeconfig


class WriteOnlyTextarea(forms.Textarea):
    """A secret box: what was typed is never sent back in a page, not even after an error."""

    def format_value(self, value: Any) -> None:
        return None


@dataclass
class CheckedSecret:
    secret: dict[str, str]
    servers: list[str] | None = None  # a kubeconfig's servers (its endpoint bounds)
    tls_unverified: bool = False


def validate_secret(
    kind: str, values: dict[str, Any], *, allow_insecure_tls: bool = False
) -> CheckedSecret:
    """The secret reduced to the keys its kind takes, each present, a string and normalised."""
    from .models import Credential

    try:
        required = Credential.SECRET_KEYS[kind]
    except (KeyError, TypeError):
        raise ValidationError(
            "Unknown credential kind: choose one of " + ", ".join(Credential.Kind.values) + ".",
            code="credential_kind",
        ) from None
    if not isinstance(values, dict):
        raise ValidationError("The secret must be a mapping of strings.", code="secret_missing")
    cleaned = {}
    for key in required:
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(
                f"A {kind.replace('_', ' ')} credential needs a non-empty '{key}'.",
                code="secret_missing",
            )
        if key != "kubeconfig":
            value = value.strip()
            if has_control_characters(value, format_characters=True):
                raise ValidationError(
                    f"The '{key}' contains a line break or control character.",
                    code="secret_control_character",
                )
        cleaned[key] = value
    if ":" in cleaned.get("username", ""):
        raise ValidationError(
            "A basic-auth user name cannot contain ':'.", code="secret_username_colon"
        )
    if kind != Credential.Kind.KUBECONFIG:
        return CheckedSecret(cleaned)
    document = parse_kubeconfig(cleaned["kubeconfig"], allow_insecure_tls=allow_insecure_tls)
    # stored as parsed: normalised tokens, no anchors or aliases left to expand later
    cleaned["kubeconfig"] = yaml.safe_dump(document, sort_keys=False)
    return CheckedSecret(
        cleaned,
        servers=kubeconfig_servers(document),
        tls_unverified=kubeconfig_insecure(document),
    )


def secret_values(kind: str, *, secret: str, username: str = "") -> dict[str, str]:
    """A form's one secret box (plus username for basic auth) as the kind's secret mapping."""
    from .models import Credential

    Kind = Credential.Kind
    key = {
        Kind.BEARER_TOKEN: "token",
        Kind.API_KEY: "key",
        Kind.KUBECONFIG: "kubeconfig",
        Kind.BASIC_AUTH: "password",
    }.get(kind, "secret")
    values = {key: secret}
    if kind == Kind.BASIC_AUTH:
        values["username"] = username
    return values
