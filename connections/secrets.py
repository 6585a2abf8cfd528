"""Validation of credential secrets, per credential kind, with messages a user can act on."""

from typing import Any

import yaml
from django import forms
from django.core.exceptions import ValidationError


class WriteOnlyTextarea(forms.Textarea):
    """A secret box: what was typed is never sent back in a page, not even after an error."""

    def format_value(self, value: Any) -> None:
        return None


# What a stored kubeconfig may use. Commands (exec, auth-provider) would run on the worker, and
# file paths would read the worker's disk: neither belongs in a credential.
FORBIDDEN_USER_KEYS = ("exec", "auth-provider", "tokenFile", "client-certificate", "client-key")
FORBIDDEN_CLUSTER_KEYS = ("certificate-authority",)


def _has_control_characters(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _named(document: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    entries = document.get(section) or []
    if not isinstance(entries, list):
        raise ValidationError(f"'{section}' must be a list.", code="kubeconfig_shape")
    named: dict[str, dict[str, Any]] = {}
    for position, entry in enumerate(entries, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise ValidationError(
                f"Entry {position} of '{section}' has no name.", code="kubeconfig_shape"
            )
        if _has_control_characters(name):
            raise ValidationError(
                f"Entry {position} of '{section}' has a control character in its name.",
                code="kubeconfig_shape",
            )
        inner = entry.get(section[:-1], {})
        if not isinstance(inner, dict):
            raise ValidationError(
                f"'{entry['name']}' in '{section}' must hold a mapping under '{section[:-1]}'.",
                code="kubeconfig_shape",
            )
        named[entry["name"]] = entry
    return named


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
    clusters, users = _named(document, "clusters"), _named(document, "users")
    contexts = _named(document, "contexts")
    if not contexts:
        raise ValidationError("The kubeconfig has no contexts.", code="kubeconfig_no_contexts")
    for name, entry in users.items():
        for key in FORBIDDEN_USER_KEYS:
            if key in (entry.get("user") or {}):
                raise ValidationError(
                    f"User '{name}' uses '{key}', which is not accepted: store a token or "
                    "client certificate data in the kubeconfig itself.",
                    code="kubeconfig_forbidden",
                )
    for name, entry in clusters.items():
        for key in FORBIDDEN_CLUSTER_KEYS:
            if key in (entry.get("cluster") or {}):
                raise ValidationError(
                    f"Cluster '{name}' uses the file path '{key}': use "
                    "'certificate-authority-data' instead.",
                    code="kubeconfig_forbidden",
                )
    for name, entry in contexts.items():
        context = entry.get("context") or {}
        cluster, user = context.get("cluster"), context.get("user")
        if not isinstance(cluster, str) or cluster not in clusters:
            raise ValidationError(
                f"Context '{name}' refers to cluster '{cluster}', which the file does not define.",
                code="kubeconfig_missing_cluster",
            )
        if user is not None and (not isinstance(user, str) or user not in users):
            raise ValidationError(
                f"Context '{name}' refers to user '{user}', which the file does not define.",
                code="kubeconfig_missing_user",
            )
        server = (clusters[cluster].get("cluster") or {}).get("server")
        if not isinstance(server, str) or not server or _has_control_characters(server):
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
        if key != "kubeconfig":
            value = value.strip()
            if _has_control_characters(value):
                raise ValidationError(
                    f"The '{key}' contains a line break or control character.",
                    code="secret_control_character",
                )
        cleaned[key] = value
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
