"""Data of connected connections: a periodic scrape of a small summary through their APIs.

Prometheus: targets up and down (the ``up`` query), active targets, head series, version.
Grafana: version, dashboards and datasources (with the credential). Only ``connected``
connections are scraped: ignoring one stops the scrape and keeps its samples; deleting it purges
them. Samples older than SCRAPE_RETENTION are removed by the same task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from datetime import timedelta
from typing import Any

import aiohttp
from django.conf import settings
from django.utils import timezone

from connections.choices import Status
from connections.metadata import merge_metadata
from connections.models import Connection, MetricSample
from connections.probing.probes.base import auth_headers, read_body
from connections.probing.probes.registry import run_async
from connections.probing.probes.transport import probe_session
from core.egress import url_refusal
from core.sanitize import clean_metadata
from credentials.scrub import scrub

log = logging.getLogger(__name__)

SCRAPE_MAX_BODY = 16 * 1024 * 1024  # a Prometheus with many targets answers megabytes


def number(value: Any) -> float | None:
    """A finite number from an API's answer, or None (NaN, inf, text, null are not samples)."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


async def _json(client: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Any:
    refusal = url_refusal(url)  # a literal address never reaches the resolver
    if refusal:
        raise RuntimeError(refusal)
    async with client.get(url, headers=headers, allow_redirects=False) as response:
        response.raise_for_status()
        return json.loads(await read_body(response, SCRAPE_MAX_BODY))


async def scrape_prometheus(
    connection: Connection, client: aiohttp.ClientSession
) -> dict[str, Any]:
    base, headers = connection.url.rstrip("/"), auth_headers(connection)
    up = await _json(client, f"{base}/api/v1/query?query=up", headers)
    results = (up.get("data") or {}).get("result") or []
    values = [number((r.get("value") or [None, None])[1]) for r in results if isinstance(r, dict)]
    targets = await _json(client, f"{base}/api/v1/targets?state=active", headers)
    tsdb = await _json(client, f"{base}/api/v1/status/tsdb", headers)
    build = await _json(client, f"{base}/api/v1/status/buildinfo", headers)
    return {
        "samples": {
            "targets_up": sum(1 for v in values if v == 1),
            "targets_down": sum(1 for v in values if v != 1),
            "active_targets": len((targets.get("data") or {}).get("activeTargets") or []),
            "series": number(((tsdb.get("data") or {}).get("headStats") or {}).get("numSeries")),
        },
        "metadata": {"version": (build.get("data") or {}).get("version", "")},
    }


async def scrape_grafana(connection: Connection, client: aiohttp.ClientSession) -> dict[str, Any]:
    base, headers = connection.url.rstrip("/"), auth_headers(connection)
    health = await _json(client, f"{base}/api/health", headers)
    dashboards = await _json(client, f"{base}/api/search?type=dash-db&limit=5000", headers)
    datasources = await _json(client, f"{base}/api/datasources", headers)
    return {
        "samples": {
            "dashboards": len(dashboards) if isinstance(dashboards, list) else None,
            "datasources": len(datasources) if isinstance(datasources, list) else None,
        },
        "metadata": {"version": health.get("version", "")},
    }


SCRAPERS = {"prometheus": scrape_prometheus, "grafana": scrape_grafana}


async def _scrape_all(connections: list[Connection]) -> list[dict[str, Any] | Exception]:
    connect, total = settings.PROBE_TIMEOUTS["default"]
    timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect)
    slots = asyncio.Semaphore(settings.PROBE_CONCURRENCY)

    async def one(connection: Connection, client: aiohttp.ClientSession):
        async with slots:
            refusal = url_refusal(connection.url)  # the session's resolver guards the rest
            if refusal:
                return RuntimeError(refusal)
            try:
                async with asyncio.timeout(total * 4):
                    return await SCRAPERS[connection.kind](connection, client)
            except Exception as exc:  # one failed scrape is its own problem only
                return exc

    async with probe_session(timeout=timeout) as client:
        return await asyncio.gather(*(one(c, client) for c in connections))


def scrape_connected(now=None) -> dict[str, int]:
    """Scrape every connected Prometheus and Grafana once; store samples; prune old ones."""
    now = now or timezone.now()
    connections = list(
        Connection.objects.filter(status=Status.CONNECTED, kind__in=list(SCRAPERS)).select_related(
            "credential"
        )
    )
    results = run_async(_scrape_all(connections)) if connections else []
    samples, scraped, failed = [], 0, 0
    # a connection deleted (or ignored) while it was scraped gets no samples: its data is gone
    still = set(
        Connection.objects.filter(
            pk__in=[c.pk for c in connections], status=Status.CONNECTED
        ).values_list("pk", flat=True)
    )
    for connection, result in zip(connections, results, strict=True):
        if connection.pk not in still:
            continue
        if isinstance(result, Exception) or not isinstance(result, dict):
            failed += 1
            log.info("scrape failed connection=%s error=%s", connection.pk, type(result).__name__)
            continue
        scraped += 1
        samples += [
            MetricSample(connection=connection, name=name, value=value, scraped_at=now)
            for name, value in result["samples"].items()
            if number(value) is not None
        ]
        metadata = {
            key: scrub(value, connection.credential) if isinstance(value, str) else value
            for key, value in clean_metadata(result["metadata"]).items()
        }
        if any(connection.metadata.get(k) != v for k, v in metadata.items()):
            merge_metadata(
                Connection.objects.filter(pk=connection.pk, status=Status.CONNECTED), metadata
            )
    MetricSample.objects.bulk_create(samples, batch_size=1000)
    cutoff = now - timedelta(seconds=settings.SCRAPE_RETENTION)
    # an ignored connection's samples are kept until it is deleted (the lifecycle spec)
    pruned, _ = (
        MetricSample.objects.filter(scraped_at__lt=cutoff)
        .exclude(connection__status=Status.IGNORED)
        .delete()
    )
    return {"scraped": scraped, "failed": failed, "samples": len(samples), "pruned": pruned}
