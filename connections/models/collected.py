"""What is collected about connections: probe results and roll-ups, scraped samples, and the
resources discovery saw. All of it is purged when its connection is deleted."""

from __future__ import annotations

from django.db import models, transaction
from django.utils import timezone

from .connection import Connection


class DiscoveredResource(models.Model):
    """What discovery saw in a cluster (a Service or a Deployment), kept per cluster connection."""

    class Kind(models.TextChoices):
        SERVICE = "service", "Service"
        DEPLOYMENT = "deployment", "Deployment"

    cluster = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="discovered_resources"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=253)
    labels = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)  # ports, image, type, external address
    # "prometheus" or "grafana" when discovery can make a connection of it
    integration = models.CharField(max_length=32, blank=True)
    identity = models.CharField(max_length=600, blank=True)  # of the connection it would make
    fingerprint = models.CharField(max_length=64)  # of labels + details: unchanged rows stay put
    discovered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("namespace", "kind", "name")
        constraints = [
            models.UniqueConstraint(
                fields=("cluster", "kind", "namespace", "name"), name="unique_discovered_resource"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class MetricSample(models.Model):
    """A summary value scraped from a connected connection (Prometheus targets up, Grafana
    dashboards …); kept for a bounded time, kept when ignored, purged when deleted."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="samples")
    name = models.CharField(max_length=64)
    value = models.FloatField()
    scraped_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-scraped_at", "name")
        indexes = [
            models.Index(fields=("connection", "name", "-scraped_at"), name="sample_conn_name_idx")
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.name}={self.value}"


class ProbeRollup(models.Model):
    """An hour of probe results older than the raw ones kept (Uptime Kuma's lesson: bound it)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="rollups")
    hour = models.DateTimeField()
    ok_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    latency_max_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ("-hour",)
        constraints = [
            models.UniqueConstraint(fields=("connection", "hour"), name="unique_rollup_hour")
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.hour:%Y-%m-%d %H:00}"

    @property
    def latency_mean_ms(self) -> float | None:
        return self.latency_sum_ms / self.latency_count if self.latency_count else None


class ProbeResult(models.Model):
    """One raw health-check result; bounded per connection and purged with the connection."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="probe_results"
    )
    checked_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_class = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    # Probed from several locations (connections/probing/rounds.py): where, and the round it
    # answered (one result per connection, round and location); both empty with one location.
    location = models.ForeignKey(
        "connections.Location",
        null=True,
        blank=True,
        # a removed location's results keep its id: no constraint, no index, so removing one
        # never rewrites the busiest table (its results read "a removed location")
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    round = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ("-checked_at", "-pk")
        indexes = [models.Index(fields=("connection", "-checked_at"), name="probe_conn_time_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=("round", "connection", "location"),
                condition=models.Q(round__isnull=False),
                name="unique_round_result",
            )
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {'ok' if self.ok else 'failed'} at {self.checked_at}"


# Upper bounds (ms) of the probe latency histogram's buckets, as /metrics shows them.
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class ProbeCounter(models.Model):
    """Every probe result ever recorded, counted per kind and outcome: the counters and the
    latency histogram /metrics shows, so a scrape reads a dozen rows instead of every raw
    result and roll-up. Added to in the transaction that records the results; never pruned,
    never decreased (what a Prometheus counter promises)."""

    kind = models.CharField(max_length=32)
    ok = models.BooleanField()
    count = models.BigIntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    # cumulative: buckets[i] counts latencies <= LATENCY_BUCKETS_MS[i]
    buckets = models.JSONField(default=list)
    # when a result was last counted here: whether probing goes on (ops.probing_state)
    recorded_at = models.DateTimeField(null=True, blank=True)
    # the location that probed ("": probed without locations); a location's workers count in
    # rows of their own (they never wait on another location's lock)
    location = models.CharField(max_length=40, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("kind", "ok", "location"), name="unique_probe_counter_location"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {'ok' if self.ok else 'failed'}: {self.count}"

    @classmethod
    def add(cls, results: list[tuple[str, bool, float | None]], location: str = "") -> None:
        """Count (kind, ok, latency_ms) results. The rows are locked in one order (kind, ok), so
        workers adding at once wait for each other instead of deadlocking or losing counts."""
        groups: dict[tuple[str, bool], list[float | None]] = {}
        for kind, ok, latency in results:
            groups.setdefault((kind, ok), []).append(latency)
        with transaction.atomic():
            for (kind, ok), latencies in sorted(groups.items()):
                cls._add(kind, ok, latencies, location)

    @classmethod
    def _add(cls, kind: str, ok: bool, latencies: list[float | None], location: str) -> None:
        counter, _ = cls.objects.select_for_update().get_or_create(
            kind=kind, ok=ok, location=location
        )
        buckets = list(counter.buckets) + [0] * (len(LATENCY_BUCKETS_MS) - len(counter.buckets))
        measured = [v for v in latencies if v is not None and v == v]  # NaN is no latency
        for value in measured:
            for i, bound in enumerate(LATENCY_BUCKETS_MS):
                if value <= bound:
                    buckets[i] += 1
        counter.count += len(latencies)
        counter.latency_count += len(measured)
        counter.latency_sum_ms += sum(measured)
        counter.buckets = buckets
        counter.recorded_at = timezone.now()
        counter.save()
