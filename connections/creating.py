"""The one way connections are created: by hand ("Add connection", the API, a kubeconfig
import; checked for reachability first) or by discovery. Each enters with its first history
row, written by the same transaction, and the transition hooks (``connections.hooks``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from connections.probing.probes import ProbeOutcome, check_reachability
from core.sanitize import clean_metadata, clean_text

from . import hooks
from .choices import PROBED_STATES, Status, Trigger
from .identity import endpoint_identity
from .models import Connection, ConnectionTransition

if TYPE_CHECKING:
    from credentials.models import Credential

log = logging.getLogger(__name__)


class DuplicateConnection(ValidationError):
    def __init__(self, existing: Connection) -> None:
        super().__init__(
            f"This endpoint is already tracked as '{existing.name}' "
            f"({existing.get_status_display()}).",
            code="duplicate",
        )
        self.existing = existing


@dataclass
class Created:
    connection: Connection
    outcome: ProbeOutcome | None


def _raise_if_duplicate(identity: str) -> None:
    existing = Connection.objects.filter(identity=identity).first()
    if existing is not None:
        raise DuplicateConnection(existing)


def _insert(connection: Connection, *, trigger: str, user: Any, reason: str) -> Connection:
    _raise_if_duplicate(connection.identity)
    if connection.status in PROBED_STATES:
        connection.next_probe_at = connection.status_changed_at
    try:
        with transaction.atomic():
            connection.save()
            record = ConnectionTransition.objects.create(
                connection=connection,
                from_status="",
                to_status=connection.status,
                trigger=trigger,
                user=user,
                reason=reason,
                created_at=connection.status_changed_at,
            )
            hooks.transitioned(record)
    except IntegrityError:
        _raise_if_duplicate(connection.identity)
        raise
    log.info(
        "created connection=%s status=%s trigger=%s", connection.pk, connection.status, trigger
    )
    return connection


def prepare_manual_connection(
    *,
    name: str,
    kind: str,
    url: str,
    user: Any,
    credential: Credential | None = None,
    metadata: dict | None = None,
    failure_threshold: int = 3,
    probe_interval: int | None = None,
    retry_interval: int | None = None,
) -> Connection:
    """An unsaved, validated "Add connection" (DuplicateConnection / ValidationError if not):
    the same rules as an edit (``editing.validate_connection``)."""
    from .editing import validate_connection

    url = url.strip() if isinstance(url, str) else url
    identity = endpoint_identity(kind, url)
    _raise_if_duplicate(identity)
    candidate = Connection(
        name=name,
        kind=kind,
        url=url,
        owner=user,
        credential=credential,
        managed=False,
        metadata=metadata or {},
        failure_threshold=failure_threshold,
        probe_interval=probe_interval or settings.PROBE_INTERVAL,
        retry_interval=retry_interval or settings.PROBE_RETRY_INTERVAL,
        identity=identity,
    )
    validate_connection(candidate, user=user)
    return candidate


def insert_manual_connection(
    candidate: Connection, outcome: ProbeOutcome, *, user: Any, environments=()
) -> Connection:
    """Store a prepared connection as the reachability check decided: registered or not_found."""
    fields = {
        f.attname: getattr(candidate, f.attname)
        for f in Connection._meta.concrete_fields
        if f.attname not in ("id", "status")
    }
    fields["metadata"] = {**candidate.metadata, **clean_metadata(outcome.metadata)}
    connection = Connection(
        **fields,
        status=Status.REGISTERED if outcome.ok else Status.NOT_FOUND,
    )
    connection.credential = candidate.credential
    connection.last_probe_at = timezone.now()
    connection.last_probe_ok = outcome.ok
    connection.last_probe_error = "" if outcome.ok else clean_text(outcome.summary)
    connection.last_probe_class = "" if outcome.ok else outcome.error_class[:16]
    connection.last_latency_ms = outcome.latency_ms
    reason = (
        "reachability check passed"
        if outcome.ok
        else f"the reachability check failed: {clean_text(outcome.said(connection.url))}"
    )
    with transaction.atomic():
        _insert(connection, trigger=Trigger.USER, user=user, reason=reason)
        if environments:
            connection.environments.add(*environments)
    return connection


def create_manual_connection(*, user: Any, environments=(), **fields: Any) -> Created:
    """The user's "Add connection": the check runs at once; registered or not_found."""
    candidate = prepare_manual_connection(user=user, **fields)
    outcome = check_reachability(candidate)
    connection = insert_manual_connection(candidate, outcome, user=user, environments=environments)
    return Created(connection, outcome)


def create_discovered_connection(
    *,
    name: str,
    kind: str,
    url: str,
    identity: str,
    owner: Any = None,
    metadata: dict | None = None,
    cluster: Connection | None = None,
) -> Connection:
    """Discovery found a resource it can integrate: a managed connection in ``discovered``."""
    connection = Connection(
        name=name,
        kind=kind,
        url=url,
        identity=identity,
        owner=owner,
        cluster=cluster,
        managed=True,
        metadata=metadata or {},
        status=Status.DISCOVERED,
    )
    return _insert(connection, trigger=Trigger.DISCOVERY, user=None, reason="discovered")
