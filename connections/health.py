"""Applying probe outcomes: the one place a health check changes counters and states.

``decide`` is the table's probe rules as a pure function; ``apply_outcomes`` writes a batch of
outcomes, each under a compare-and-set on the version (and claim) the probe started from, so a
result that raced with a user's action (maintenance, ignore, delete) is dropped, never applied.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from . import lifecycle
from .choices import PROBED_STATES, Status, Trigger
from .models import Connection, ProbeResult, is_self_connecting, resume_target
from .probes import ProbeOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    target: str | None
    reason: str
    failures: int


def decide(connection: Connection, outcome: ProbeOutcome) -> Decision:
    """What one outcome does to a connection: the lifecycle spec's probe edges and rules."""
    status = connection.status
    if outcome.ok:
        if status == Status.DISCOVERED:
            return Decision(Status.REGISTERED, "reachable", 0)
        if status == Status.REGISTERED and is_self_connecting(connection):
            return Decision(Status.CONNECTED, "reachable; this kind connects itself", 0)
        if status == Status.DISCONNECTED:
            return Decision(resume_target(connection), "reachable again", 0)
        return Decision(None, "", 0)

    failures = connection.consecutive_failures + 1
    if outcome.auth_failure and status == Status.CONNECTED:
        return Decision(Status.DISCONNECTED, f"authentication failure: {outcome.error}", failures)
    if failures < connection.failure_threshold or status == Status.DISCONNECTED:
        return Decision(None, "", failures)
    reason = f"unreachable after {failures} consecutive failed probes ({outcome.summary})"
    if status == Status.REGISTERED and not connection.managed:
        return Decision(Status.NOT_FOUND, reason, failures)
    return Decision(Status.DISCONNECTED, reason, failures)


def next_probe_time(
    connection: Connection, status_after: str, failures: int, now: datetime
) -> datetime | None:
    """The connection's interval; growing (capped) while disconnected; none if not probed."""
    if status_after not in PROBED_STATES:
        return None
    interval = connection.probe_interval or settings.PROBE_INTERVAL
    if status_after == Status.DISCONNECTED:
        steps = min(max(0, failures - connection.failure_threshold), 16)
        delay = min(interval * 2**steps, max(settings.PROBE_BACKOFF_MAX, interval))
    else:
        delay = interval
    return now + timedelta(seconds=delay)


def clean_text(value: Any, limit: int = 2000) -> str:
    """Text a probe brought back, safe to store: no NUL (PostgreSQL refuses it), bounded."""
    return str(value).replace("\x00", "")[:limit]


def clean_metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Probe metadata reduced to what JSON columns store everywhere: finite scalars, short text."""
    cleaned: dict[str, Any] = {}
    for key, value in list(values.items())[:50]:
        if isinstance(value, bool) or value is None:
            cleaned[clean_text(key, 100)] = value
        elif isinstance(value, int | float):
            if math.isfinite(value):
                cleaned[clean_text(key, 100)] = value
        else:
            cleaned[clean_text(key, 100)] = clean_text(value, 500)
    return cleaned


def _bookkeeping(
    connection: Connection, outcome: ProbeOutcome, decision: Decision, now: datetime
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "consecutive_failures": decision.failures,
        "next_probe_at": next_probe_time(
            connection, decision.target or connection.status, decision.failures, now
        ),
        "probe_claim": None,
        "last_probe_at": now,
        "last_probe_ok": outcome.ok,
        "last_probe_error": "" if outcome.ok else clean_text(outcome.summary),
        "last_latency_ms": outcome.latency_ms,
    }
    if outcome.metadata:
        current = connection.metadata if isinstance(connection.metadata, dict) else {}
        fields["metadata"] = {**current, **clean_metadata(outcome.metadata)}
    return fields


def apply_outcomes(
    pairs: Iterable[tuple[Connection, ProbeOutcome]],
    *,
    claim: Any = None,
    now: datetime | None = None,
) -> Counter:
    """Apply a batch of outcomes; returns counts: applied, transitions, stale (dropped)."""
    now = now or timezone.now()
    stats: Counter = Counter()
    applied: list[tuple[Connection, ProbeOutcome]] = []
    plain: list[tuple[Connection, ProbeOutcome, dict[str, Any]]] = []
    released: list[int] = []
    with transaction.atomic():
        for connection, outcome in pairs:
            decision = decide(connection, outcome)
            fields = _bookkeeping(connection, outcome, decision, now)
            if not decision.target:
                plain.append((connection, outcome, fields))
                continue
            for name, value in fields.items():
                setattr(connection, name, value)
            try:
                lifecycle.transition(
                    connection,
                    decision.target,
                    trigger=Trigger.PROBE,
                    reason=clean_text(decision.reason),
                    extra_fields=tuple(fields),
                    claim=claim,
                )
            except lifecycle.TransitionRefused:  # StaleState included
                released.append(connection.pk)
                continue
            stats["transitions"] += 1
            applied.append((connection, outcome))

        updated = _compare_and_set_many(plain, claim)
        for connection, outcome, _ in plain:
            if connection.pk in updated:
                applied.append((connection, outcome))
            else:
                released.append(connection.pk)

        ProbeResult.objects.bulk_create(
            (
                ProbeResult(
                    connection_id=connection.pk,
                    checked_at=now,
                    ok=outcome.ok,
                    latency_ms=outcome.latency_ms,
                    status_code=outcome.status_code,
                    error_class=clean_text(outcome.error_class, 32),
                    error=clean_text(outcome.error),
                )
                for connection, outcome in applied
            ),
            batch_size=1000,
        )
        if released and claim is not None:
            # a user acted meanwhile: give the row back to the scheduler at once
            Connection.objects.filter(pk__in=released, probe_claim=claim).update(
                probe_claim=None, next_probe_at=now
            )
    stats["applied"] = len(applied)
    stats["stale"] = len(released)
    stats["ok"] = sum(1 for _, outcome in applied if outcome.ok)
    stats["failed"] = len(applied) - stats["ok"]
    return stats


# One UPDATE ... FROM (VALUES ...) per chunk: the bookkeeping of results that change no state,
# each row guarded by the status, version and claim its probe started from.
_BULK_SQL = """
UPDATE connections_connection AS c SET
    consecutive_failures = v.failures, next_probe_at = v.next_at, probe_claim = NULL,
    last_probe_at = v.probed_at, last_probe_ok = v.ok, last_probe_error = v.error,
    last_latency_ms = v.latency, metadata = COALESCE(v.metadata, c.metadata),
    updated_at = v.probed_at
FROM (VALUES {rows}) AS v(id, status, version, claim, failures, next_at, probed_at, ok, error,
                          latency, metadata)
WHERE c.id = v.id AND c.status = v.status AND c.state_version = v.version
  AND (v.claim IS NULL OR c.probe_claim = v.claim)
RETURNING c.id
"""
_BULK_ROW = (
    "(%s::bigint, %s::varchar, %s::integer, %s::uuid, %s::integer, %s::timestamptz, "
    "%s::timestamptz, %s::boolean, %s::text, %s::double precision, %s::jsonb)"
)
_CHUNK = 1000


def _compare_and_set_many(
    rows: list[tuple[Connection, ProbeOutcome, dict[str, Any]]], claim: Any
) -> set[int]:
    """Write each row's bookkeeping if it is still as the probe found it; the ids written."""
    if db_connection.vendor != "postgresql":
        return _compare_and_set_each(rows, claim)
    updated: set[int] = set()
    with db_connection.cursor() as cursor:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            params: list[Any] = []
            for connection, _, fields in chunk:
                metadata = fields.get("metadata")
                params += [
                    connection.pk,
                    connection.status,
                    connection.state_version,
                    str(claim) if claim is not None else None,
                    fields["consecutive_failures"],
                    fields["next_probe_at"],
                    fields["last_probe_at"],
                    fields["last_probe_ok"],
                    fields["last_probe_error"],
                    fields["last_latency_ms"],
                    json.dumps(metadata) if metadata is not None else None,
                ]
            cursor.execute(_BULK_SQL.format(rows=", ".join([_BULK_ROW] * len(chunk))), params)
            updated.update(row[0] for row in cursor.fetchall())
    return updated


def _compare_and_set_each(
    rows: list[tuple[Connection, ProbeOutcome, dict[str, Any]]], claim: Any
) -> set[int]:
    """The same guard, one UPDATE per row (SQLite and other databases)."""
    updated = set()
    for connection, _, fields in rows:
        guarded = Connection.objects.filter(
            pk=connection.pk, status=connection.status, state_version=connection.state_version
        )
        if claim is not None:
            guarded = guarded.filter(probe_claim=claim)
        if guarded.update(**fields, updated_at=fields["last_probe_at"]):
            updated.add(connection.pk)
    return updated
