"""Prometheus: readiness, then the build info (its version goes into metadata)."""

from __future__ import annotations

from connections.probing.probes.base import HttpProbe, ProbeFailed, ProbeOutcome, auth_headers
from connections.probing.probes.registry import register_probe


class PrometheusProbe(HttpProbe):
    kind = "prometheus"

    async def check(self, connection, client) -> ProbeOutcome:
        base = connection.url.rstrip("/")
        headers = auth_headers(connection)
        ready = await self.get(client, f"{base}/-/ready", headers)
        if ready.status_code == 404:  # very old servers only have /-/healthy
            ready = await self.get(client, f"{base}/-/healthy", headers)
        if ready.status_code != 200:
            raise ProbeFailed(
                "http", f"not ready (HTTP {ready.status_code})", status_code=ready.status_code
            )
        info = await self.get(client, f"{base}/api/v1/status/buildinfo", headers)
        metadata = {}
        try:
            data = info.json().get("data") or {}
            metadata = {"version": data.get("version", ""), "revision": data.get("revision", "")}
        except (ValueError, AttributeError, RecursionError):
            pass
        return ProbeOutcome(ok=True, status_code=ready.status_code, metadata=metadata)


register_probe(PrometheusProbe())
