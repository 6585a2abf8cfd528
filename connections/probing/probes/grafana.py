"""Grafana: /api/health for liveness and version, /api/org to prove the credential works."""

from __future__ import annotations

from connections.probing.probes.base import HttpProbe, ProbeFailed, ProbeOutcome, auth_headers
from connections.probing.probes.registry import register_probe


class GrafanaProbe(HttpProbe):
    kind = "grafana"

    async def check(self, connection, client) -> ProbeOutcome:
        base = connection.url.rstrip("/")
        headers = auth_headers(connection)
        health = await self.get(client, f"{base}/api/health", headers)
        try:
            body = health.json()
            if not isinstance(body, dict):
                raise ValueError
        except (ValueError, RecursionError):
            raise ProbeFailed(
                "body", "/api/health did not answer JSON", health.status_code
            ) from None
        if health.status_code != 200 or body.get("database") not in (None, "ok"):
            raise ProbeFailed(
                "http", f"unhealthy: database {body.get('database')!r}", health.status_code
            )
        if headers:  # /api/health needs no auth: prove the credential on an endpoint that does
            await self.get(client, f"{base}/api/org", headers)
        return ProbeOutcome(
            ok=True, status_code=health.status_code, metadata={"version": body.get("version", "")}
        )


register_probe(GrafanaProbe())
