"""Whether background probing keeps up: read from two index ranges and one small table,
whatever the size of the fleet (``/readyz``, the overview and ``manage.py health`` ask here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from connections.choices import PROBED_STATES
from connections.models import Connection, ProbeCounter
from core.db import first_values


@dataclass(frozen=True)
class ProbingState:
    """Whether background probing keeps up: "ok"; "behind" (connections overdue, results still
    recorded); "stalled" (connections overdue and no result recorded for two ticks: no worker
    probes). ``since``: the time the trouble started."""

    state: str
    since: datetime | None = None

    def __str__(self) -> str:
        if self.state == "ok":
            return "ok"
        return f"{self.state} since {self.since.isoformat(timespec='seconds')}"


def probing_state(now: datetime | None = None) -> ProbingState:
    """One query of three index lookups whatever the fleet: the oldest due time of a probed
    connection waiting and of one claimed, and when a result was last counted."""
    now = now or timezone.now()
    late = now - timedelta(seconds=2 * settings.PROBE_TICK)
    probed = Connection.objects.filter(status__in=PROBED_STATES).order_by()
    # unclaimed rows wait at their due time; claimed ones at the lease's end, so for them the
    # time they were due (kept across claims of a lost batch: beat claiming them again every
    # tick must not look like progress)
    waiting, claimed, last = first_values(
        probed.order_by("next_probe_at").values("next_probe_at")[:1],
        probed.filter(probe_claim__isnull=False)
        .order_by("probe_due_at")
        .values("probe_due_at")[:1],
        ProbeCounter.objects.order_by("-recorded_at")
        .filter(recorded_at__isnull=False)
        .values("recorded_at")[:1],
    )
    oldest_due = min((t for t in (waiting, claimed) if t is not None), default=None)
    if oldest_due is None or oldest_due >= late:
        return ProbingState("ok")
    if last is not None and last >= late:
        return ProbingState("behind", oldest_due)
    return ProbingState("stalled", max(t for t in (last, oldest_due) if t is not None))
