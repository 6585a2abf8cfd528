"""The one validation path of a connection's editable fields: create and update, from the
pages, the API, the admin and the kubeconfig import, run ``validate_connection``.

It runs the model's rules (URL, kind, credential kind, bounds of threshold and interval, the
identity's uniqueness) and the credential's endpoint bounds for the acting user
(``credentials.bounds.check_attach``). Errors are ``ValidationError`` keyed by field.
"""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from credentials.bounds import check_attach

from .identity import endpoint_identity
from .models import Connection

# What a user may change on an existing connection (everything else is the lifecycle's).
EDITABLE_FIELDS = (
    "name",
    "url",
    "credential",
    "metadata",
    "failure_threshold",
    "probe_interval",
    "retry_interval",
    "quorum",
    "locations",  # the locations it is probed from (none: inherited)
)


def _duplicate_message(twin: Connection, user: Any) -> str:
    if Connection.objects.restrict(user).filter(pk=twin.pk).exists():
        return f"This endpoint is already tracked as '{twin.name}' ({twin.get_status_display()})."
    return "This endpoint is already tracked by another user."


def validate_connection(
    connection: Connection, *, user: Any, previous: Connection | None = None
) -> None:
    """Raise ValidationError (a dict by field) unless ``user`` may save ``connection`` so.

    ``previous`` is the stored row of an edit: the credential's bounds are checked when the
    URL or the credential changes (or the connection is new)."""
    _keep_server_owned(connection, previous)
    errors: dict[str, list[str]] = {}
    try:
        connection.full_clean(exclude=["identity"], validate_unique=False)
    except ValidationError as exc:
        errors = exc.message_dict
    if "url" not in errors and connection.kind and not connection.managed:
        identity = endpoint_identity(connection.kind, connection.url)
        twin = Connection.objects.filter(identity=identity).exclude(pk=connection.pk).first()
        if twin is not None:
            errors.setdefault("url", []).append(_duplicate_message(twin, user))
    endpoint_changed = previous is None or (
        previous.url != connection.url or previous.credential_id != connection.credential_id
    )
    if not errors and endpoint_changed:
        try:
            check_attach(user, connection.credential, connection.url)
        except ValidationError as exc:
            errors = exc.message_dict
    if not errors and previous is not None and connection.credential is not None:
        changed = [
            key
            for key in TRUST_KEYS
            if _get(previous.metadata, key) != _get(connection.metadata, key)
        ]
        if changed and not connection.credential.is_owned_by(user):
            errors["metadata"] = [
                f"Only the owner of credential '{connection.credential.name}' may change "
                f"{', '.join(changed)}: it decides which server receives the secret."
            ]
    if errors:
        raise ValidationError(errors)


# Metadata that decides where a credential goes or whom it trusts: the CA a token-based
# Kubernetes connection verifies, the kubeconfig context it uses.
TRUST_KEYS = ("certificate_authority_data", "context")


# Metadata only the server writes: the cluster's identity (its kube-system uid), which keys
# every discovered child. A user's value is never taken; an edit of the endpoint forgets it,
# so the next reachability check records the identity of the server now pointed at.
SERVER_KEYS = ("cluster_id",)


def _keep_server_owned(connection: Connection, previous: Connection | None) -> None:
    if not isinstance(connection.metadata, dict):
        return
    metadata = dict(connection.metadata)
    moved = previous is not None and previous.url != connection.url
    for key in SERVER_KEYS:
        kept = None if previous is None or moved else _get(previous.metadata, key)
        if kept is None:
            metadata.pop(key, None)
        else:
            metadata[key] = kept
    connection.metadata = metadata


def _get(metadata: Any, key: str) -> Any:
    return metadata.get(key) if isinstance(metadata, dict) else None


def update_connection(connection: Connection, *, user: Any, **changes: Any) -> Connection:
    """Apply an edit of EDITABLE_FIELDS after the same rules as creation; a row added by someone
    else meanwhile with the same endpoint is a ValidationError, never an IntegrityError."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in unknown})
    previous = Connection.all_objects.get(pk=connection.pk)
    locations = changes.pop("locations", None)
    for name, value in changes.items():
        if name == "url" and isinstance(value, str):
            value = value.strip()
        setattr(connection, name, value)
    validate_connection(connection, user=user, previous=previous)
    try:
        with transaction.atomic():
            connection.save()
            if locations is not None:
                connection.locations.set(locations)
    except IntegrityError:
        raise ValidationError(
            {"url": ["This endpoint is already tracked by another connection."]}
        ) from None
    return connection


# --- a concurrent edit -------------------------------------------------------------------------
# A page reads a connection, the user edits for a while, and saves. Another edit saved meanwhile
# must not be undone silently: the page carries a signed snapshot of what it showed, and a save
# whose snapshot no longer matches the stored row is refused with what changed (the user then
# sees the new values and saves again on purpose). Only what a user edits is compared: the
# probes' bookkeeping (and ``updated_at``, which every probe moves) is not an edit, nor is a
# change of state. The snapshot is the same for every user (it names no environment).

SNAPSHOT_FIELDS = (
    "name",
    "url",
    "credential_id",
    "failure_threshold",
    "probe_interval",
    "retry_interval",
    "quorum",
    "locations",  # their names, sorted
)
# added with locations: a page opened before them (a rolling deploy) still saves
LATER_SNAPSHOT_FIELDS = ("quorum", "locations")
_SNAPSHOT_SALT = "connections.editing.snapshot"


def snapshot(connection: Connection) -> dict[str, Any]:
    """What an edit page shows of ``connection`` and may overwrite."""
    values = {name: getattr(connection, name) for name in SNAPSHOT_FIELDS if name != "locations"}
    values["locations"] = sorted(connection.locations.values_list("name", flat=True))
    return values


def sign_snapshot(values: dict[str, Any]) -> str:
    return signing.dumps(values, salt=_SNAPSHOT_SALT, compress=True)


def read_snapshot(token: str) -> dict[str, Any] | None:
    """The snapshot a page carried, or None when it was not one of ours (damaged, forged)."""
    try:
        values = signing.loads(token, salt=_SNAPSHOT_SALT)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError, OverflowError):
        return None
    if not isinstance(values, dict):
        return None
    required = set(SNAPSHOT_FIELDS) - set(LATER_SNAPSHOT_FIELDS)
    if not required <= set(values) <= set(SNAPSHOT_FIELDS):
        return None
    return values


def changed_since(seen: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The snapshot fields that differ between what a page showed and what is stored now (of
    those it showed)."""
    return [name for name in SNAPSHOT_FIELDS if name in seen and seen[name] != current[name]]
