"""Probing from several locations: one round, one probe from each location, a quorum decides.

With no location configured nothing here runs: a batch is probed and applied where it is
claimed (scheduling.run_batch), as it always was. Once a location exists:

1. **Dispatch** (beat's tick, ``dispatch``): the scheduler claims due connections as before (one
   claim token per batch: the round's id), works out each one's locations (its own; else its
   environments' default; else every location), leaves out the *stale* ones (no heartbeat for
   LOCATION_STALE_AFTER: nothing would answer), records the round (``ProbeRound``: who was sent
   what, how many locations each connection has, the deadline) and sends each location its
   share on its own queue (``probes.<name>``), the message expiring at the deadline. A
   connection none of whose locations is online is decided at once: too few answered.
2. **Each location** (``run_location_batch``, in a worker started with ``PROBE_LOCATION``)
   probes its share at the due times and stores each result with its location and round:
   one row per (connection, round, location), whatever is delivered twice.
3. **Deciding** (``decide``): a connection is decided as soon as every location it was sent to
   has answered (by whichever location answered last), and at the deadline with whatever
   answered (``close``, queued for the deadline by the dispatch, and every tick for a round
   whose close was lost). ``judge`` turns the answers into one outcome by the connection's
   quorum, and that outcome goes through the same rules and compare-and-set as a single probe
   (outcomes.apply_outcomes, under the round's claim: one decision per round, whoever is
   second finds the claim gone and writes nothing).

The spec: ../shared/spec/lifecycle.md, "Locations and quorum"; docs/locations.md.
"""

from __future__ import annotations

import logging
import math
import statistics
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import DurationField, ExpressionWrapper, F, Max
from django.db.models.functions import Now
from django.utils import timezone

from connections.choices import PROBED_STATES
from connections.metadata import merge_metadata
from connections.models import (
    Connection,
    Location,
    LocationWorker,
    ProbeCounter,
    ProbeResult,
    ProbeRound,
    Quorum,
    queue_of,
    stale_before,
)
from connections.probing.outcomes import WRITE_ONCE_KEYS, apply_outcomes, result_row
from connections.probing.probes import ProbeOutcome
from connections.probing.reasons import explain, where
from core.sanitize import clean_metadata, clean_text
from environments.models import Environment

log = logging.getLogger(__name__)

NOTE_MAX = 500


def active() -> bool:
    """Whether probing goes by locations (at least one is configured)."""
    return Location.objects.exists()


# ---- which locations probe what ------------------------------------------------------------


def locations_of(ids: list[int]) -> dict[int, list[int]]:
    """Each connection's location ids: its own choice; else the union of its environments'
    default locations; else every location. Three queries whatever the number of ids."""
    chosen: dict[int, set[int]] = defaultdict(set)
    for connection_id, location_id in Connection.locations.through.objects.filter(
        connection_id__in=ids
    ).values_list("connection_id", "location_id"):
        chosen[connection_id].add(location_id)
    rest = [pk for pk in ids if pk not in chosen]
    inherited: dict[int, set[int]] = defaultdict(set)
    if rest:
        defaults: dict[int, set[int]] = defaultdict(set)
        for environment_id, location_id in Environment.probe_locations.through.objects.values_list(
            "environment_id", "location_id"
        ):
            defaults[environment_id].add(location_id)
        if defaults:
            for connection_id, environment_id in Environment.connections.through.objects.filter(
                connection_id__in=rest, environment_id__in=list(defaults)
            ).values_list("connection_id", "environment_id"):
                inherited[connection_id] |= defaults[environment_id]
    everywhere = sorted(Location.objects.values_list("pk", flat=True))
    return {pk: sorted(chosen.get(pk) or inherited.get(pk) or everywhere) for pk in ids}


def online_locations(now: datetime | None = None) -> dict[int, str]:
    """The locations with a worker that reported within LOCATION_STALE_AFTER: id -> name."""
    fresh = LocationWorker.objects.filter(heartbeat_at__gte=stale_before(now))
    return dict(
        Location.objects.filter(pk__in=fresh.values("location_id")).values_list("pk", "name")
    )


# ---- dispatch ------------------------------------------------------------------------------


def waves(ids: list[int], sent: dict[int, list[int]]) -> int:
    """How many waves of probes the largest share runs: PROBE_CONCURRENCY at a time, and at most
    PROBE_PER_HOST_CONCURRENCY to one host (the hosts of the batch, one query)."""
    largest = max((len(pks) for pks in sent.values()), default=1)
    hosts: Counter = Counter()
    for url in Connection.objects.filter(pk__in=ids).values_list("url", flat=True):
        hosts[where(url)[1]] += 1
    per_host = max(settings.PROBE_PER_HOST_CONCURRENCY, 1)
    busiest = max(hosts.values(), default=1)
    return max(math.ceil(largest / concurrency()), math.ceil(busiest / per_host), 1)


def queued(queue: str) -> int:
    from connections.tasks import queued as broker_queued

    return broker_queued(queue)


def longest_timeout() -> float:
    return max(total for _, total in settings.PROBE_TIMEOUTS.values())


def concurrency() -> int:
    return max(settings.PROBE_CONCURRENCY, 1)


def dispatch(token: uuid.UUID, ids: list[int], send) -> dict[str, Any]:
    """Plan the round of a claimed batch and hand each location its share: ``send(location
    name, ids, deadline)`` queues it. Returns the plan's figures."""
    now = timezone.now()
    latest_due = (
        Connection.objects.filter(pk__in=ids, probe_claim=token).aggregate(Max("probe_due_at"))[
            "probe_due_at__max"
        ]
        or now
    )
    wanted = locations_of(ids)
    # online by the database's clock (as the heartbeats are written), and able to take more:
    # a location whose queue already holds more than a tick's worth is not keeping up (or not
    # consuming), and is left out as a stale one is, so that its queue stops growing
    online = {
        location: name
        for location, name in online_locations().items()
        if queued(queue_of(name)) <= settings.PROBE_BATCHES_PER_TICK
    }
    sent: dict[int, list[int]] = defaultdict(list)
    nowhere = []
    for pk, locations in wanted.items():
        reachable = [location for location in locations if location in online]
        if not reachable:
            nowhere.append(pk)
        for location in reachable:
            sent[location].append(pk)
    deadline = max(latest_due, now) + timedelta(
        seconds=waves(ids, sent) * longest_timeout() + settings.ROUND_GRACE
    )
    # the count of a connection is the locations it was sent to: one that is stale (or not
    # keeping up) is left out of it, never a failure and never a missing answer
    plan = {
        "sent": {str(location): pks for location, pks in sent.items()},
        "of": {
            str(pk): sum(1 for location in locations if location in online)
            for pk, locations in wanted.items()
        },
    }
    with transaction.atomic():
        ProbeRound.objects.create(token=token, deadline=deadline, plan=plan)
        # the claim's lease covers the round: a lost round is claimed again after it
        Connection.objects.filter(pk__in=ids, probe_claim=token).update(
            next_probe_at=deadline + timedelta(seconds=settings.PROBE_CLAIM_LEASE)
        )
    for location, pks in sorted(sent.items()):
        send(online[location], pks, deadline)
    if nowhere:
        decide(token, nowhere, final=True)
    return {"sent": sum(len(pks) for pks in sent.values()), "nowhere": len(nowhere)}


# ---- one location's share ------------------------------------------------------------------


def record(
    pairs: list[tuple[Connection, ProbeOutcome]], token: uuid.UUID, location: Location
) -> int:
    """Store a location's outcomes of a round (one row per connection, round and location: a
    second delivery writes nothing) and what the probes learned of each connection."""
    now = timezone.now()
    # only what is still this round's: a connection a user changed, put in maintenance, ignored
    # or deleted meanwhile (its claim gone) takes no result and learns nothing from it
    live = set(
        Connection.objects.filter(
            pk__in=[c.pk for c, _ in pairs], probe_claim=token, status__in=PROBED_STATES
        ).values_list("pk", flat=True)
    )
    pairs = [(c, o) for c, o in pairs if c.pk in live]
    rows = [result_row(c, o, now, location=location, round=token) for c, o in pairs]
    with transaction.atomic():
        ProbeResult.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        ProbeCounter.add([(c.kind, o.ok, o.latency_ms) for c, o in pairs], location.name)
    for connection, outcome in pairs:
        if outcome.ok and outcome.metadata:
            merge_metadata(
                Connection.objects.filter(pk=connection.pk, probe_claim=token),
                clean_metadata(outcome.metadata),
                WRITE_ONCE_KEYS,
            )
    return len(rows)


def answered_already(token: uuid.UUID, location: Location, ids: list[int]) -> set[int]:
    """The connections this location has already answered for this round (a redelivery)."""
    return set(
        ProbeResult.objects.filter(round=token, location=location, connection_id__in=ids)
        .order_by()
        .values_list("connection_id", flat=True)
    )


def run_location_batch(token: uuid.UUID, name: str, ids: list[int], node: str) -> Counter:
    """A location's share of a round: probe what it has not answered yet, at the due times,
    storing each result and deciding each connection whose every location has answered."""
    from connections.probing.scheduling import run_batch

    if settings.PROBE_LOCATION and name != settings.PROBE_LOCATION:
        log.error(
            "probes for location %s reached a worker of location %s: check its -Q and "
            "PROBE_LOCATION",
            name,
            settings.PROBE_LOCATION,
        )
        return Counter(misrouted=len(ids))
    location = Location.objects.filter(name=name).first()
    # how long the round has left, by the database's clock (this machine's may be off)
    round_ = (
        ProbeRound.objects.filter(token=token)
        .annotate(left=ExpressionWrapper(F("deadline") - Now(), output_field=DurationField()))
        .first()
    )
    if location is None or round_ is None:  # removed meanwhile, or the round is closed
        return Counter(skipped=len(ids))
    until = timezone.now() + round_.left
    todo = sorted(set(ids) - answered_already(token, location, ids))
    stats: Counter = Counter(redelivered=len(ids) - len(todo))
    lags: list[float] = []

    def write(chunk: list[tuple[Connection, ProbeOutcome]]) -> Counter:
        record(chunk, token, location)
        for connection, outcome in chunk:
            if connection.probe_due_at and outcome.started_at:
                lags.append((outcome.started_at - connection.probe_due_at).total_seconds())
        done = Counter(recorded=len(chunk))
        done.update(decide(token, [connection.pk for connection, _ in chunk], round_=round_))
        return done

    if todo:
        stats.update(run_batch(token, todo, write=write, until=until))
    count_probes(location, node, stats["recorded"], statistics.median(lags) if lags else None)
    return stats


def count_probes(location: Location, node: str, probes: int, lag: float | None) -> None:
    """What a worker of the location did: its probe count and how late its probes started."""
    updated = LocationWorker.objects.filter(location=location, node=node).update(
        probes=F("probes") + probes, lag_seconds=lag, heartbeat_at=Now()
    )
    if not updated:
        LocationWorker.objects.get_or_create(
            location=location, node=node, defaults={"probes": probes, "lag_seconds": lag}
        )


# ---- deciding ------------------------------------------------------------------------------


def _answers(token: uuid.UUID, ids: list[int]) -> dict[int, dict[str, ProbeOutcome]]:
    names = dict(Location.objects.values_list("pk", "name"))
    answers: dict[int, dict[str, ProbeOutcome]] = defaultdict(dict)
    for row in (
        ProbeResult.objects.filter(round=token, connection_id__in=ids)
        .order_by()
        .values(
            "connection_id",
            "location_id",
            "ok",
            "latency_ms",
            "status_code",
            "error_class",
            "error",
            "checked_at",
        )
    ):
        name = names.get(row["location_id"]) or f"removed location {row['location_id']}"
        answers[row["connection_id"]][name] = ProbeOutcome(
            ok=row["ok"],
            latency_ms=row["latency_ms"],
            status_code=row["status_code"],
            error_class=row["error_class"],
            error=row["error"],
            started_at=row["checked_at"],
        )
    return answers


def decide(
    token: uuid.UUID,
    ids: list[int] | None = None,
    *,
    final: bool = False,
    round_: ProbeRound | None = None,
) -> Counter:
    """Decide the round's connections every location of which has answered (all of them
    with whatever answered when ``final``: the deadline has passed). ``round_``: the round
    when the caller has it already (a location deciding after each chunk)."""
    stats: Counter = Counter()
    round_ = round_ or ProbeRound.objects.filter(token=token).first()
    if round_ is None:
        return stats
    sent_to, totals = _counts(round_)
    wanted = list(totals) if ids is None else ids
    connections = list(
        Connection.objects.filter(pk__in=wanted, probe_claim=token, status__in=PROBED_STATES)
    )
    if not connections:
        return stats
    answers = _answers(token, [c.pk for c in connections])
    pairs = []
    for connection in connections:
        heard = answers.get(connection.pk, {})
        if not final and len(heard) < sent_to.get(connection.pk, 0):
            continue
        total = totals.get(connection.pk, len(heard))
        pairs.append((connection, judge(connection, heard, total, now=round_.created_at)))
    if pairs:
        stats.update(apply_outcomes(pairs, claim=token, record=False))
    return stats


def _counts(round_: ProbeRound) -> tuple[Counter, dict[int, int]]:
    """(locations each connection was sent to, its count) of a round's plan, parsed once."""
    cached = getattr(round_, "_counts", None)
    if cached is None:
        sent_to: Counter = Counter()
        for pks in round_.plan.get("sent", {}).values():
            sent_to.update(pks)
        totals = {int(pk): count for pk, count in round_.plan.get("of", {}).items()}
        cached = round_._counts = (sent_to, totals)
    return cached


def close(token: uuid.UUID) -> Counter:
    """The round's deadline has passed: decide what is left with whatever answered."""
    stats = decide(token, final=True)
    ProbeRound.objects.filter(token=token).delete()
    return stats


def close_overdue(now: datetime | None = None, limit: int = 100) -> int:
    """Close the rounds past their deadline whose queued close was lost (every tick)."""
    late = (now or timezone.now()) - timedelta(seconds=settings.ROUND_GRACE)
    tokens = list(
        ProbeRound.objects.filter(deadline__lt=late)
        .order_by("deadline")
        .values_list("token", flat=True)[:limit]
    )
    for token in tokens:
        try:
            close(token)
        except Exception:  # one round that cannot be closed never stops the others, or the tick
            log.exception("round %s could not be closed: dropped", token)
            ProbeRound.objects.filter(token=token).delete()
    return len(tokens)


# ---- the quorum ----------------------------------------------------------------------------


def needed(quorum: str, answered: int, total: int) -> tuple[int, int]:
    """(answers needed to judge, failing locations that fail the round) for a connection of
    ``total`` locations of which ``answered`` answered."""
    if total <= 1:
        return 1, 1
    if quorum == Quorum.ANY:
        return 1, 1
    if quorum == Quorum.ALL:
        return 2, max(answered, 1)
    number = int(quorum) if quorum.isascii() and quorum.isdigit() else 0
    if quorum == Quorum.MAJORITY or number < 1:  # a stored value no form lets in: the default
        return 2, answered // 2 + 1
    number = min(number, total)
    return number, number


def judge(
    connection: Connection,
    answers: dict[str, ProbeOutcome],
    total: int,
    now: datetime | None = None,
) -> ProbeOutcome:
    """One outcome for a round's answers, by the connection's quorum: failed when the failing
    locations reach it; a partial outage (ok, with a note) when some fail but not enough; no
    judgement (``abstain``) when too few answered."""
    answered = len(answers)
    total = max(total, answered)
    must_answer, must_fail = needed(connection.quorum, answered, total)
    failing = sorted(name for name, outcome in answers.items() if not outcome.ok)
    working = [outcome for outcome in answers.values() if outcome.ok]
    # None when no one answered: nothing was probed (the last probe's figures stay)
    started = min(
        (o.started_at for o in answers.values() if o.started_at is not None),
        default=(now or timezone.now()) if answers else None,
    )
    latencies = [o.latency_ms for o in working if o.latency_ms is not None]
    latency = statistics.median(latencies) if latencies else None
    where = _where(connection, answers, failing)
    scope = f"in {len(failing)} of {answered} locations" if total > 1 else ""

    if answered < must_answer or answered == 0:
        if not total:
            said = "none of its locations is online"
        elif not answered:
            said = "no location answered"
        else:
            said = f"only {answered} of {total} locations answered"
        note = f"{said}{'; ' + where if where else ''}"
        first = answers[failing[0]] if failing else None
        return ProbeOutcome(
            ok=not failing,
            latency_ms=latency,
            started_at=started,
            abstain=True,
            note=_cap(note),
            # the failure seen, as a single probe's would be (never a blank one)
            error_class=first.error_class if first else "",
            error=first.error if first else "",
            status_code=first.status_code if first else None,
        )
    if len(failing) >= must_fail:
        auth = [name for name in failing if answers[name].auth_failure]
        if len(auth) >= must_fail:
            chosen = answers[auth[0]]
        else:
            classes = Counter(answers[n].error_class for n in failing if n not in auth)
            common = classes.most_common(1)[0][0]
            chosen = next(answers[n] for n in failing if answers[n].error_class == common)
        return ProbeOutcome(
            ok=False,
            latency_ms=None,
            status_code=chosen.status_code,
            error_class=chosen.error_class,
            error=chosen.error,
            started_at=started,
            # "failed in …": a failed round (counted, or a state change), never a partial one
            note=_cap(f"failed {scope} ({where})") if total > 1 else "",
            scope=scope,
        )
    note = ""
    if failing:
        note = f"down {scope} ({where})"
    elif answered < total:
        note = f"{answered} of {total} locations answered"
    return ProbeOutcome(ok=True, latency_ms=latency, started_at=started, note=_cap(note))


def _where(connection: Connection, answers: dict[str, ProbeOutcome], failing: list[str]) -> str:
    parts = []
    for name in failing:
        outcome = answers[name]
        said = explain(outcome.error_class, outcome.error, connection.url, outcome.status_code)
        parts.append(f"{name}: {said.brief}")
    return "; ".join(parts)


def _cap(text: str) -> str:
    text = clean_text(text)
    return text if len(text) <= NOTE_MAX else text[: NOTE_MAX - 1] + "…"
