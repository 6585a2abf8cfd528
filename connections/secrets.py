"""Validation of credential secrets, per credential kind, with messages a user can act on."""

from typing import Any

import yaml
from django.core.exceptions import ValidationError


def parse_kubeconfig(text: str) -> dict[str, Any]:
    """Parse a kubeconfig and check its contexts point at clusters and users it defines."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ValidationError(
            f"The kubeconfig is not valid YAML{where}: {problem}.", code="kubeconfig_yaml"
        ) from exc
    if not isinstance(document, dict):
        raise ValidationError(
            "The kubeconfig must be a YAML mapping with clusters, users and contexts.",
            code="kubeconfig_shape",
        )
    sections = {}
    for section in ("clusters", "users", "contexts"):
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise ValidationError(f"'{section}' must be a list.", code="kubeconfig_shape")
        named = {}
        for position, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not entry.get("name"):
                raise ValidationError(
                    f"Entry {position} of '{section}' has no name.", code="kubeconfig_shape"
                )
            named[entry["name"]] = entry
        sections[section] = named
    if not sections["contexts"]:
        raise ValidationError("The kubeconfig has no contexts.", code="kubeconfig_no_contexts")
    for name, entry in sections["contexts"].items():
        context = entry.get("context") or {}
        cluster, user = context.get("cluster"), context.get("user")
        if cluster not in sections["clusters"]:
            raise ValidationError(
                f"Context '{name}' refers to cluster '{cluster}', which the file does not define.",
                code="kubeconfig_missing_cluster",
            )
        if user is not None and user not in sections["users"]:
            raise ValidationError(
                f"Context '{name}' refers to user '{user}', which the file does not define.",
                code="kubeconfig_missing_user",
            )
        server = (sections["clusters"][cluster].get("cluster") or {}).get("server")
        if not server:
            raise ValidationError(
                f"Cluster '{cluster}' (context '{name}') has no server URL.",
                code="kubeconfig_no_server",
            )
    return document


def validate_secret(kind: str, values: dict[str, Any]) -> dict[str, str]:
    """The secret reduced to the keys its kind takes, each present and a string."""
    from .models import Credential

    try:
        required = Credential.SECRET_KEYS[kind]
    except KeyError:
        raise ValidationError(
            f"Unknown credential kind '{kind}'.", code="credential_kind"
        ) from None
    cleaned = {}
    for key in required:
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(
                f"A {kind.replace('_', ' ')} credential needs a non-empty '{key}'.",
                code="secret_missing",
            )
        cleaned[key] = value.strip() if key != "kubeconfig" else value
    if kind == Credential.Kind.KUBECONFIG:
        parse_kubeconfig(cleaned["kubeconfig"])
    return cleaned


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
