"""Operability: liveness, readiness, and /metrics in the Prometheus format.

The metrics are read from the database when scraped (not kept in process memory), so web,
workers and beat, in as many processes as they run, all show in one place.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection as db
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
)

from .choices import PROBED_STATES, Status
from .models import Connection, ConnectionTransition, ProbeResult, ProbeRollup

LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers and the broker accepts a connection."""
    checks = {}
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # report, never raise: this is the page that says what is wrong
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        from meshplay.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503
    )


class DatabaseCollector:
    def collect(self):
        states = GaugeMetricFamily(
            "meshplay_connections", "Connections per state and kind", labels=["state", "kind"]
        )
        for row in (
            Connection.all_objects.order_by().values("status", "kind").annotate(n=Count("id"))
        ):
            states.add_metric([row["status"], row["kind"]], row["n"])
        yield states

        results = CounterMetricFamily(
            "meshplay_probe_results",
            "Probe results kept (raw and rolled up)",
            labels=["kind", "ok"],
        )
        totals: dict[tuple[str, str], int] = {}
        for row in (
            ProbeResult.objects.order_by().values("connection__kind", "ok").annotate(n=Count("id"))
        ):
            key = (row["connection__kind"], "true" if row["ok"] else "false")
            totals[key] = totals.get(key, 0) + row["n"]
        for rollup in ProbeRollup.objects.values("connection__kind", "ok_count", "failed_count"):
            for ok, n in (("true", rollup["ok_count"]), ("false", rollup["failed_count"])):
                key = (rollup["connection__kind"], ok)
                totals[key] = totals.get(key, 0) + n
        for (kind, ok), n in sorted(totals.items()):
            results.add_metric([kind, ok], n)
        yield results

        latency = GaugeHistogramMetricFamily(
            "meshplay_probe_latency_ms",
            "Latency of the raw probe results kept, per kind",
            labels=["kind"],
        )
        per_kind: dict[str, list[float]] = {}
        for kind, value in (
            ProbeResult.objects.filter(latency_ms__isnull=False)
            .values_list("connection__kind", "latency_ms")
            .iterator(chunk_size=5000)
        ):
            per_kind.setdefault(kind, []).append(value)
        for kind, values in sorted(per_kind.items()):
            buckets = [(str(b), sum(1 for v in values if v <= b)) for b in LATENCY_BUCKETS_MS]
            buckets.append(("+Inf", len(values)))
            latency.add_metric([kind], buckets, sum(values))
        yield latency

        transitions = CounterMetricFamily(
            "meshplay_transitions", "State changes recorded, per trigger", labels=["trigger"]
        )
        for row in (
            ConnectionTransition.objects.order_by().values("trigger").annotate(n=Count("id"))
        ):
            transitions.add_metric([row["trigger"]], row["n"])
        yield transitions

        grace = timezone.now() - timezone.timedelta(seconds=settings.PROBE_TICK * 3)
        backlog = Connection.objects.filter(status__in=PROBED_STATES, next_probe_at__lt=grace)
        yield GaugeMetricFamily(
            "meshplay_probe_backlog",
            "Connections due for a probe for over three ticks",
            value=backlog.count(),
        )
        from django_celery_beat.models import PeriodicTask

        tick = (
            PeriodicTask.objects.filter(task="connections.tasks.dispatch_due_probes")
            .values_list("last_run_at", flat=True)
            .first()
        )
        yield GaugeMetricFamily(
            "meshplay_last_beat_tick_timestamp_seconds",
            "When beat last ran the probe dispatch (0: never)",
            value=tick.timestamp() if tick else 0,
        )
        deleted = Connection.all_objects.filter(status=Status.DELETED).count()
        yield GaugeMetricFamily("meshplay_tombstones", "Deleted connections kept", value=deleted)


def metrics(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
