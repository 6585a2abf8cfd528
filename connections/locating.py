"""What the locations page, ``manage.py locations`` and the API say of each location: online or
stale since when, its workers, probes a minute and lag (from the workers' heartbeats)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from connections.models import Connection, Location, LocationWorker, stale_before


@dataclass(frozen=True)
class LocationRow:
    pk: int
    name: str
    description: str
    queue: str
    heartbeat_at: datetime | None
    workers: int  # workers with a fresh heartbeat
    probes_per_minute: float
    lag_seconds: float | None
    connections: int  # connections that chose it

    @property
    def online(self) -> bool:
        return self.workers > 0

    @property
    def state_text(self) -> str:
        if self.online:
            return "online"
        if self.heartbeat_at is None:
            return "no worker yet"
        return f"stale since {timezone.localtime(self.heartbeat_at):%Y-%m-%d %H:%M:%S}"


def location_rows(now: datetime | None = None) -> list[LocationRow]:
    """Every location with its figures: one query for the locations and their workers."""
    fresh = stale_before(now)
    rows = []
    # subqueries, not joins: a join of workers × the connections that chose it costs their
    # product
    newest = LocationWorker.objects.filter(location=OuterRef("pk")).order_by("-heartbeat_at")
    chosen = (
        Connection.locations.through.objects.filter(location=OuterRef("pk"))
        .order_by()
        .values("location")
        .annotate(n=Count("pk"))
        .values("n")
    )
    locations = Location.objects.annotate(
        heartbeat_at=Subquery(newest.values("heartbeat_at")[:1]),
        chosen_by=Coalesce(Subquery(chosen), 0),
    ).order_by("name")
    live = {
        row["location_id"]: row
        for row in LocationWorker.objects.filter(heartbeat_at__gte=fresh)
        .values("location_id")
        .annotate(count=Count("pk"), rate=Sum("probes_per_minute"), lag=Max("lag_seconds"))
    }
    for location in locations:
        figures = live.get(location.pk, {})
        rows.append(
            LocationRow(
                pk=location.pk,
                name=location.name,
                description=location.description,
                queue=location.queue,
                heartbeat_at=location.heartbeat_at,
                workers=figures.get("count", 0),
                probes_per_minute=figures.get("rate") or 0.0,
                lag_seconds=figures.get("lag"),
                connections=location.chosen_by,
            )
        )
    return rows
