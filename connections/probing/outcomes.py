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
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from connections import hooks, lifecycle
from connections.choices import PROBED_STATES, Status, Trigger
from connections.mentions import Said
from connections.metadata import MergeJSON, merge_metadata
from connections.models import (
    Connection,
    ProbeCounter,
    ProbeResult,
    is_self_connecting,
    resume_target,
)
from connections.probing.probes import ProbeOutcome
from connections.probing.reasons import explain
from core.sanitize import clean_metadata, clean_text
from live import stamp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    target: str | None
    reason: str
    failures: int
    cause: str = ""  # the outcome's error class when it changes the state


def decide(connection: Connection, outcome: ProbeOutcome) -> Decision:
    """What one outcome does to a connection: the lifecycle spec's probe edges and rules."""
    status = connection.status
    if outcome.abstain:  # too few locations answered: the round says nothing of the state
        return Decision(None, "", connection.consecutive_failures)
    if outcome.ok:
        if status == Status.DISCOVERED:
            return Decision(Status.REGISTERED, "reachable", 0)
        if status == Status.REGISTERED and is_self_connecting(connection):
            return Decision(Status.CONNECTED, "reachable; this kind connects itself", 0)
        if status == Status.DISCONNECTED:
            return Decision(resume_target(connection), "reachable again", 0)
        return Decision(None, "", 0)

    failures = connection.consecutive_failures + 1
    said = explain(outcome.error_class, outcome.error, connection.url, outcome.status_code)
    sentence = said.sentence
    if outcome.scope:  # a round from several locations: "… (in 2 of 3 locations)"
        sentence = f"{sentence.rstrip('.?')} ({outcome.scope})."
    if outcome.auth_failure and status == Status.CONNECTED:
        return Decision(Status.DISCONNECTED, sentence, failures, "auth")
    if failures < connection.failure_threshold or status == Status.DISCONNECTED:
        return Decision(None, "", failures)
    probes = "rounds" if outcome.scope else "probes"
    reason = f"{sentence} ({failures} failed {probes} in a row)"
    if status == Status.REGISTERED and not connection.managed:
        return Decision(Status.NOT_FOUND, reason, failures, outcome.error_class)
    return Decision(Status.DISCONNECTED, reason, failures, outcome.error_class)


def next_probe_time(
    connection: Connection, status_after: str, failures: int, started: datetime
) -> datetime | None:
    """When the next probe is due, measured from the start of this one (None: not probed).

    - reachable and failing (below the threshold): the short retry interval, so an outage is
      confirmed in seconds;
    - disconnected: the interval while it has been down less than PROBE_BACKOFF_AFTER (a short
      outage is never hidden behind backoff), then doubling per PROBE_BACKOFF_AFTER down, capped
      at PROBE_BACKOFF_MAX; a success resets it all;
    - otherwise the interval.
    """
    if status_after not in PROBED_STATES:
        return None
    interval = connection.probe_interval or settings.PROBE_INTERVAL
    if status_after == Status.DISCONNECTED:
        down_since = (
            connection.status_changed_at
            if connection.status == Status.DISCONNECTED and connection.status_changed_at
            else started
        )
        down_for = (started - down_since).total_seconds()
        delay = interval
        after = max(settings.PROBE_BACKOFF_AFTER, 1)
        if down_for >= after:
            steps = min(int(math.log2(down_for / after)) + 1, 16)
            delay = min(interval * 2**steps, max(settings.PROBE_BACKOFF_MAX, interval))
    elif failures:
        delay = min(connection.retry_interval or settings.PROBE_RETRY_INTERVAL, interval)
    else:
        delay = interval
    return started + timedelta(seconds=delay)


# Metadata a probe records once and never changes after (discovery keys children by it).
WRITE_ONCE_KEYS = ("cluster_id",)


def _bookkeeping(
    connection: Connection, outcome: ProbeOutcome, decision: Decision, now: datetime
) -> dict[str, Any]:
    started = outcome.started_at or now
    fields: dict[str, Any] = {
        "consecutive_failures": decision.failures,
        "next_probe_at": next_probe_time(
            connection, decision.target or connection.status, decision.failures, started
        ),
        "probe_claim": None,
        "last_probe_at": started,
        "last_probe_ok": outcome.ok,
        "last_probe_error": "" if outcome.ok else clean_text(outcome.summary),
        "last_probe_class": "" if outcome.ok else outcome.error_class[:16],
        "last_latency_ms": outcome.latency_ms,
    }
    if outcome.note is not None:
        fields["locations_note"] = outcome.note
    elif connection.locations_note:  # probed from one place again: no note of several stays
        fields["locations_note"] = ""
    if outcome.abstain and outcome.started_at is None:  # no location answered: nothing probed
        for name in ("last_probe_at", "last_probe_ok", "last_probe_error", "last_probe_class"):
            fields[name] = getattr(connection, name)
        fields["last_latency_ms"] = connection.last_latency_ms
    if outcome.metadata:
        # only the keys the probe learned: they are merged into the row in SQL, never a
        # snapshot of the whole object written back over what others wrote meanwhile
        fields["metadata"] = clean_metadata(outcome.metadata)
    return fields


def apply_outcomes(
    pairs: Iterable[tuple[Connection, ProbeOutcome]],
    *,
    claim: Any = None,
    now: datetime | None = None,
    record: bool = True,
) -> Counter:
    """Apply a batch of outcomes; returns counts: applied, transitions, stale (dropped), broken.

    Every row is isolated: a transition, the bulk bookkeeping and the result rows each run in a
    savepoint, and a bulk write that fails falls back to one write per row, so a value the
    database refuses costs its own row (released to the scheduler, counted as broken), never
    its batch. ``record``: False for the outcome of a round, whose locations stored their own
    results (probing/rounds.py)."""
    now = now or timezone.now()
    pairs = list(pairs)
    # a partial outage (rounds.judge) begins or ends with a note: told once applied
    notes_before = {c.pk: c.locations_note for c, o in pairs if o.note is not None}
    stats: Counter = Counter()
    applied: list[tuple[Connection, ProbeOutcome]] = []
    plain: list[tuple[Connection, ProbeOutcome, dict[str, Any]]] = []
    released: list[int] = []
    decided = [(c, o, decide(c, o)) for c, o in pairs]
    notes = _parent_notes(decided)
    with transaction.atomic():
        for connection, outcome, decision in decided:
            fields = _bookkeeping(connection, outcome, decision, now)
            if not decision.target:
                plain.append((connection, outcome, fields))
                continue
            learned = fields.pop("metadata", None)
            for name, value in fields.items():
                setattr(connection, name, value)
            try:
                with transaction.atomic():  # the transition and its metadata, or neither
                    reason = Said(clean_text(decision.reason))
                    if connection.pk in notes:
                        reason = reason + "; " + notes[connection.pk]
                    lifecycle.transition(
                        connection,
                        decision.target,
                        trigger=Trigger.PROBE,
                        reason=reason,
                        extra_fields=tuple(fields),
                        claim=claim,
                        cause=decision.cause,
                    )
                    if learned:
                        merge_metadata(
                            Connection.objects.filter(pk=connection.pk), learned, WRITE_ONCE_KEYS
                        )
            except lifecycle.TransitionRefused:  # StaleState included
                released.append(connection.pk)
                continue
            except DatabaseError:
                log.exception("probe result not applied connection=%s", connection.pk)
                stats["broken"] += 1
                released.append(connection.pk)
                continue
            stats["transitions"] += 1
            applied.append((connection, outcome))

        try:
            with transaction.atomic():
                updated = _compare_and_set_many(plain, claim)
        except DatabaseError:
            log.warning("bulk apply failed; writing %d results one by one", len(plain))
            updated = _compare_and_set_each(plain, claim, stats)
        for connection, outcome, _ in plain:
            if connection.pk in updated:
                applied.append((connection, outcome))
            else:
                released.append(connection.pk)

        if record:
            _record_results(applied, now)
        else:
            stamp.touch({connection.pk for connection, _ in applied})
        for connection, outcome in applied:
            if connection.pk not in notes_before:  # not a round
                continue
            before = notes_before[connection.pk]
            if is_partial(outcome.note) and not is_partial(before):
                hooks.partial(connection, True, outcome.note or "")
            elif is_failing(before) and _all_well(outcome):
                # over only when a judged round saw no location fail: a partial outage that
                # grows into a failed round, or a round too few answered, is not its end (the
                # hook knows whether one was told as begun)
                hooks.partial(connection, False, "")
        if released and claim is not None:
            # a user acted meanwhile (or the row could not be written): back to the scheduler
            Connection.objects.filter(pk__in=released, probe_claim=claim).update(
                probe_claim=None, next_probe_at=now
            )
    stats["applied"] = len(applied)
    stats["stale"] = len(released) - stats["broken"]
    stats["ok"] = sum(1 for _, outcome in applied if outcome.ok)
    stats["failed"] = len(applied) - stats["ok"]
    return stats


def is_failing(note: str | None) -> bool:
    """A round's note that says some location failed (partial, or a failed round)."""
    return bool(note) and note.startswith(("down in", "failed in"))


def _all_well(outcome: ProbeOutcome) -> bool:
    return outcome.ok and not outcome.abstain and not is_failing(outcome.note)


def is_partial(note: str | None) -> bool:
    """Whether a round's note says a partial outage ("down in 1 of 3 locations (…)"): some
    locations failed, not a quorum (a failed round says "failed in 2 of 3 locations")."""
    return bool(note) and note.startswith("down in")


def _parent_notes(decided: list[tuple[Connection, ProbeOutcome, Decision]]) -> dict[int, Said]:
    """For the connections this batch takes down: "parent <name> is <state>" when a parent is
    down (one lookup for the batch, none when nothing goes down)."""
    from connections.dependencies import down_parents, parent_note

    failing = [c.pk for c, _, d in decided if d.target in (Status.DISCONNECTED, Status.NOT_FOUND)]
    return {child: parent_note(parent) for child, parent in down_parents(failing).items()}


def result_row(
    connection: Connection, outcome: ProbeOutcome, now: datetime, **where: Any
) -> ProbeResult:
    """The history row of one outcome (``where``: its location and round, from several)."""
    return ProbeResult(
        connection_id=connection.pk,
        checked_at=outcome.started_at or now,
        ok=outcome.ok,
        latency_ms=outcome.latency_ms,
        status_code=outcome.status_code,
        error_class=clean_text(outcome.error_class, 32),
        error=clean_text(outcome.error),
        **where,
    )


def _record_results(applied: list[tuple[Connection, ProbeOutcome]], now: datetime) -> None:
    """The history rows of the applied results; one by one if the bulk insert fails."""
    rows = [result_row(connection, outcome, now) for connection, outcome in applied]
    kinds = {connection.pk: connection.kind for connection, _ in applied}
    stored = rows
    try:
        with transaction.atomic():
            ProbeResult.objects.bulk_create(rows, batch_size=1000)
    except DatabaseError:
        stored = []
        for row in rows:
            try:
                with transaction.atomic():
                    row.save()
                stored.append(row)
            except DatabaseError:
                log.exception("probe result row not stored connection=%s", row.connection_id)
    # the pages of those who may see these connections show them anew (live/: no signal fires
    # for a bulk insert); after the rows are in, or with the transaction around them
    stamp.touch(kinds.keys())
    try:
        with transaction.atomic():  # the counters /metrics shows, with the rows they count
            ProbeCounter.add([(kinds[r.connection_id], r.ok, r.latency_ms) for r in stored])
    except DatabaseError:
        log.exception("probe counters not updated for %d results", len(stored))


# One UPDATE ... FROM unnest(arrays) per chunk: the bookkeeping of results that change no
# state, each row guarded by the status, version and claim its probe started from. The
# statement's text is the same for every chunk (thirteen arrays, not a placeholder per value),
# so the driver parses it once, not every time.
_BULK_SQL = """
UPDATE connections_connection AS c SET
    consecutive_failures = v.failures, next_probe_at = v.next_at, probe_claim = NULL,
    last_probe_at = v.probed_at, last_probe_ok = v.ok, last_probe_error = v.error,
    last_probe_class = v.class, last_latency_ms = v.latency,
    locations_note = COALESCE(v.note, c.locations_note),
    metadata = CASE WHEN v.metadata IS NULL THEN c.metadata
               ELSE COALESCE(c.metadata, '{}'::jsonb) || (v.metadata - CASE
                    WHEN COALESCE(c.metadata, '{}'::jsonb) ? 'cluster_id' THEN 'cluster_id'
                    ELSE '' END) END,
    updated_at = COALESCE(v.probed_at, c.updated_at)
FROM unnest(%s::bigint[], %s::varchar[], %s::integer[], %s::uuid[], %s::integer[],
            %s::timestamptz[], %s::timestamptz[], %s::boolean[], %s::text[], %s::varchar[],
            %s::double precision[], %s::jsonb[], %s::varchar[])
    AS v(id, status, version, claim, failures, next_at, probed_at, ok, error, class, latency,
         metadata, note)
WHERE c.id = v.id AND c.status = v.status AND c.state_version = v.version
  AND (v.claim IS NULL OR c.probe_claim = v.claim)
RETURNING c.id
"""
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
            columns: list[list[Any]] = [[] for _ in range(13)]
            for connection, _, fields in chunk:
                metadata = fields.get("metadata")
                values = (
                    connection.pk,
                    connection.status,
                    connection.state_version,
                    str(claim) if claim is not None else None,
                    fields["consecutive_failures"],
                    fields["next_probe_at"],
                    fields["last_probe_at"],
                    fields["last_probe_ok"],
                    fields["last_probe_error"],
                    fields["last_probe_class"],
                    fields["last_latency_ms"],
                    json.dumps(metadata) if metadata else None,
                    fields.get("locations_note"),
                )
                for column, value in zip(columns, values, strict=True):
                    column.append(value)
            cursor.execute(_BULK_SQL, columns)
            updated.update(row[0] for row in cursor.fetchall())
    return updated


def _compare_and_set_each(
    rows: list[tuple[Connection, ProbeOutcome, dict[str, Any]]],
    claim: Any,
    stats: Counter | None = None,
) -> set[int]:
    now = timezone.now()
    """The same guard, one UPDATE per row, each in its own savepoint (SQLite, and the fallback
    when a bulk write fails): a row the database refuses is skipped and counted."""
    updated = set()
    for connection, _, fields in rows:
        guarded = Connection.objects.filter(
            pk=connection.pk, status=connection.status, state_version=connection.state_version
        )
        if claim is not None:
            guarded = guarded.filter(probe_claim=claim)
        values = dict(fields)
        if values.get("metadata"):
            values["metadata"] = MergeJSON("metadata", values["metadata"], WRITE_ONCE_KEYS)
        else:
            values.pop("metadata", None)
        try:
            with transaction.atomic():
                when = fields["last_probe_at"] or connection.updated_at or now
                if guarded.update(**values, updated_at=when):
                    updated.add(connection.pk)
        except DatabaseError:
            log.exception("probe result not applied connection=%s", connection.pk)
            if stats is not None:
                stats["broken"] += 1
    return updated
