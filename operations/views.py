"""Operability: liveness, readiness, and /metrics in the Prometheus format.

The metrics are read from the database when scraped (not kept in process memory), so web,
workers and beat, in as many processes as they run, all show in one place. /metrics answers a
bearer token (METRICS_TOKEN, Prometheus' `authorization` setting) or a signed-in staff user.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db import connection as db
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from connections.choices import PROBED_STATES, Status
from connections.models import LATENCY_BUCKETS_MS, Connection, ConnectionTransition, ProbeCounter
from connections.probing.state import probing_state
from core.cache import state as cache_state


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and crawlers ask for /favicon.ico whatever a page links: the vendored SVG."""
    response = HttpResponsePermanentRedirect(static("favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers and the broker accepts a connection (503 otherwise).
    It also says whether probing keeps up and whether the cache answers; a stalled prober or a
    cache away makes the status "degraded" but not a 503: the web serves (sessions from the
    database alone), and a load balancer must keep sending it requests."""
    checks = {}
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # report, never raise: this is the page that says what is wrong
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        from celery import current_app as app  # the project's (meshplay/celery.py)

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    probing = str(probing_state()) if checks["database"] == "ok" else "unknown"
    cache = cache_state()
    healthy = probing == "ok" and not cache.startswith("error")
    status = "unavailable" if not ready else "ok" if healthy else "degraded"
    return JsonResponse(
        {"status": status, **checks, "cache": cache, "probes": probing},
        status=200 if ready else 503,
    )


def collect_metrics(now=None) -> dict:
    """Everything /metrics shows, in four queries whatever the number of rows: the connections
    grouped in the database, and the probe counters kept as results are recorded (a dozen
    rows), never the raw results or roll-ups themselves."""
    now = now or timezone.now()
    grace = now - timezone.timedelta(seconds=settings.PROBE_TICK * 3)
    connections = list(
        Connection.all_objects.order_by()
        .values("status", "kind")
        .annotate(
            n=Count("id"),
            late=Count("id", filter=Q(status__in=PROBED_STATES, next_probe_at__lt=grace)),
        )
    )
    counters = list(ProbeCounter.objects.order_by("kind", "ok"))
    transitions = list(
        ConnectionTransition.objects.order_by().values("trigger").annotate(n=Count("id"))
    )
    from django_celery_beat.models import PeriodicTask

    tick = (
        PeriodicTask.objects.filter(task="connections.tasks.dispatch_due_probes")
        .values_list("last_run_at", flat=True)
        .first()
    )

    results: dict[tuple[str, str], int] = {}
    located: dict[tuple[str, str, str], int] = {}
    for c in counters:
        ok = "true" if c.ok else "false"
        results[(c.kind, ok)] = results.get((c.kind, ok), 0) + c.count
        if c.location:
            located[(c.location, c.kind, ok)] = c.count
    latency: dict[str, dict] = {}
    for counter in counters:
        kind = latency.setdefault(
            counter.kind, {"buckets": [0] * len(LATENCY_BUCKETS_MS), "count": 0, "sum": 0.0}
        )
        kind["count"] += counter.latency_count
        kind["sum"] += counter.latency_sum_ms
        for i, n in enumerate(counter.buckets[: len(LATENCY_BUCKETS_MS)]):
            kind["buckets"][i] += n
    return {
        "connections": {(row["status"], row["kind"]): row["n"] for row in connections},
        "backlog": sum(row["late"] for row in connections),
        "tombstones": sum(row["n"] for row in connections if row["status"] == Status.DELETED),
        "results": results,
        "located": located,
        # the locations' states once any has counted a result (no query more without them)
        "locations": _locations() if located else [],
        "latency": latency,
        "transitions": {row["trigger"]: row["n"] for row in transitions},
        "last_tick": tick.timestamp() if tick else 0,
    }


def _locations() -> list:
    from connections.locating import location_rows

    return location_rows()


class DatabaseCollector:
    def collect(self):
        data = collect_metrics()
        states = GaugeMetricFamily(
            "meshplay_connections", "Connections per state and kind", labels=["state", "kind"]
        )
        for (state, kind), n in sorted(data["connections"].items()):
            states.add_metric([state, kind], n)
        yield states

        results = CounterMetricFamily(
            "meshplay_probe_results",
            "Probe results recorded since the database was created",
            labels=["kind", "ok"],
        )
        for (kind, ok), n in sorted(data["results"].items()):
            results.add_metric([kind, ok], n)
        yield results

        if data["located"] or data["locations"]:
            located = CounterMetricFamily(
                "meshplay_location_probe_results",
                "Probe results recorded per location (probed from several locations)",
                labels=["location", "kind", "ok"],
            )
            for (location, kind, ok), n in sorted(data["located"].items()):
                located.add_metric([location, kind, ok], n)
            yield located
            online = GaugeMetricFamily(
                "meshplay_location_online",
                "1 when a worker of the location reported within LOCATION_STALE_AFTER",
                labels=["location"],
            )
            rate = GaugeMetricFamily(
                "meshplay_location_probes_per_minute",
                "Probes a minute of the location's workers, as their heartbeats report",
                labels=["location"],
            )
            for row in data["locations"]:
                online.add_metric([row.name], 1 if row.online else 0)
                rate.add_metric([row.name], row.probes_per_minute)
            yield online
            yield rate

        latency = HistogramMetricFamily(
            "meshplay_probe_latency_ms",
            "Latency of every probe result recorded, per kind",
            labels=["kind"],
        )
        for kind, values in sorted(data["latency"].items()):
            buckets = [
                (str(bound), n)
                for bound, n in zip(LATENCY_BUCKETS_MS, values["buckets"], strict=True)
            ]
            buckets.append(("+Inf", values["count"]))
            latency.add_metric([kind], buckets, values["sum"])
        yield latency

        transitions = CounterMetricFamily(
            "meshplay_transitions", "State changes recorded, per trigger", labels=["trigger"]
        )
        for trigger, n in sorted(data["transitions"].items()):
            transitions.add_metric([trigger], n)
        yield transitions

        yield GaugeMetricFamily(
            "meshplay_probe_backlog",
            "Connections due for a probe for over three ticks",
            value=data["backlog"],
        )
        yield GaugeMetricFamily(
            "meshplay_last_beat_tick_timestamp_seconds",
            "When beat last ran the probe dispatch (0: never)",
            value=data["last_tick"],
        )
        yield GaugeMetricFamily(
            "meshplay_tombstones", "Deleted connections kept", value=data["tombstones"]
        )


def metrics_allowed(request: HttpRequest) -> bool:
    """The METRICS_TOKEN as a bearer token (when one is set), or an active staff user's session."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(given.strip().encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        response = HttpResponse(status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
