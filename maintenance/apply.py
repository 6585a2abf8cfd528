"""Bring connections' maintenance in line with the windows active now.

``apply_windows`` compares state with time, it does not count ticks: the connections that
should be in scheduled maintenance are those covered by a window active now (one SQL
condition); those in ``registered``/``connected`` enter, those in maintenance *by schedule*
that no active window covers any more leave, back to where they came from. Running it twice,
late, or from two workers at once changes nothing more (each change is the lifecycle's
compare-and-set). In the steady state it costs three queries, whatever the fleet.

A user's maintenance is never ended by a schedule (the schedule edge out of maintenance
requires ``maintenance_source == schedule``); a user's "End maintenance" of a scheduled one
holds for the occurrences already started (a later start puts it back).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from django.db.models import Max
from django.utils import timezone

from connections import lifecycle
from connections.choices import PROBED_STATES, MaintenanceSource, Status, Trigger
from connections.mentions import Said
from connections.models import Connection, ConnectionTransition, resume_target

from . import schedule
from .models import Window
from .scope import covered_q, covering, enabled_windows, phrases, window_phrase

log = logging.getLogger(__name__)

ENTERING = (Status.REGISTERED, Status.CONNECTED)


def apply_windows(now: datetime | None = None) -> Counter:
    """Enter and leave scheduled maintenance as the windows say at ``now``; returns counts."""
    now = now or timezone.now()
    stats: Counter = Counter()
    windows = enabled_windows()
    active: dict[int, tuple[datetime, datetime]] = {}
    for w in windows:
        occ = schedule.active_occurrence(w, now)
        if occ is not None:
            active[w.pk] = occ
    live = [w for w in windows if w.pk in active]
    covered = covered_q(live)
    stats["active_windows"] = len(live)

    if covered is not None:
        candidates = list(Connection.objects.filter(covered, status__in=ENTERING))
        if candidates:
            _enter(candidates, live, active, now, stats)

    ended = [
        (w, end) for w in windows if (end := schedule.last_end(w, now)) and end > w.probed_end_at
    ]
    leaving = Connection.objects.filter(
        status=Status.MAINTENANCE, maintenance_source=MaintenanceSource.SCHEDULE
    )
    if covered is not None:
        leaving = leaving.exclude(covered)
    leaving = list(leaving)
    # each connection's reason names only the ended windows that covered it, and of those only
    # the ones everyone who reads about the connection may see
    ended_over = covering([w for w, _ in ended], {c.pk: c.kind for c in leaving})
    for connection in leaving:
        _move(
            connection,
            resume_target(connection),
            _ended_reason(ended_over.get(connection.pk, [])),
            stats,
            "left",
        )

    if ended:
        # its connections are probed at once, those that stayed disconnected through it too
        stats["probed_now"] = (
            Connection.objects.filter(covered_q([w for w, _ in ended]), status__in=PROBED_STATES)
            .exclude(next_probe_at__lte=now)
            .update(next_probe_at=now)
        )
        for w, end in ended:
            w.probed_end_at = end
        Window.objects.bulk_update([w for w, _ in ended], ["probed_end_at"])
    return stats


def _ended_reason(ended: list[Window]) -> Said | str:
    if not ended:
        return "no maintenance window covers it any more"
    return phrases(ended) + " ended"


def _enter(
    candidates: list[Connection],
    live: list[Window],
    active: dict[int, tuple[datetime, datetime]],
    now: datetime,
    stats: Counter,
) -> None:
    cover = covering(live, {c.pk: c.kind for c in candidates})
    earliest = min(start for start, _ in active.values())
    # a user's "End maintenance" since a covering occurrence started exempts it from that one
    ended_by_user = dict(
        ConnectionTransition.objects.filter(
            connection_id__in=[c.pk for c in candidates],
            from_status=Status.MAINTENANCE,
            trigger=Trigger.USER,
            created_at__gte=earliest,
        )
        .values("connection_id")
        .annotate(last=Max("created_at"))
        .values_list("connection_id", "last")
    )
    for connection in candidates:
        windows = cover.get(connection.pk)
        if not windows:
            continue
        latest = max(windows, key=lambda w: (active[w.pk][0], w.pk))
        user_end = ended_by_user.get(connection.pk)
        if user_end is not None and user_end >= active[latest.pk][0]:
            stats["exempt"] += 1
            continue
        _move(connection, Status.MAINTENANCE, window_phrase(latest), stats, "entered")


def _move(
    connection: Connection, target: str, reason: Said | str, stats: Counter, counter: str
) -> None:
    try:
        lifecycle.transition(connection, target, trigger=Trigger.SCHEDULE, reason=reason)
    except lifecycle.TransitionRefused as exc:  # StaleState included: the next tick decides
        log.info("maintenance skipped connection=%s: %s", connection.pk, exc)
        stats["skipped"] += 1
    else:
        stats[counter] += 1
