"""Cluster discovery: read a connected Kubernetes cluster, keep what it holds, and turn the
Prometheus and Grafana it runs into managed connections.

One pass per cluster: namespaces, Services and Deployments are listed in pages (``limit`` /
``continue``), raw JSON (no model objects for thousands of items). A 403 on one resource type is
recorded and the pass goes on with the rest. Writes are differences only: a pass over an unchanged
cluster writes nothing. Identities are deterministic (cluster + namespace + name + port), so the
same resource always maps to the same connection; an ignored one is never touched; a vanished one
turns Disconnected (trigger discovery); a deleted one's identity is free to be discovered afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from kubernetes import client as k8s

from . import lifecycle
from .choices import Status, Trigger
from .identity import discovered_identity
from .models import Connection, DiscoveredResource
from .probes.base import ProbeFailed
from .probes.kubernetes import api_client_for, failure_from

log = logging.getLogger(__name__)

PAGE_SIZE = 500
TIMEOUT = (5.0, 30.0)

# What makes a resource integrable: well-known label values, names, images; the usual port.
INTEGRATIONS: dict[str, dict[str, Any]] = {
    "prometheus": {"words": ("prometheus",), "port": 9090, "exclude": ("operator", "exporter")},
    "grafana": {"words": ("grafana",), "port": 3000, "exclude": ("operator", "agent")},
}
LABEL_KEYS = ("app.kubernetes.io/name", "app")


def recognise(name: str, labels: dict[str, str], image: str = "") -> str:
    """The integration a resource is, from its labels first, then its name or image; or ""."""
    for kind, rule in INTEGRATIONS.items():
        values = [str(labels.get(key, "")).lower() for key in LABEL_KEYS]
        if kind in values:
            return kind
        text = f"{name} {image}".lower()
        if any(word in text for word in rule["words"]) and not any(
            bad in text for bad in rule["exclude"]
        ):
            return kind
    return ""


@dataclass
class DiscoveryReport:
    counts: dict[str, int] = field(default_factory=dict)
    forbidden: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    rows_written: int = 0
    skipped: int = 0  # objects too odd to keep (bad names, shapes, duplicates)
    error: str = ""


def _list_all(call, report: DiscoveryReport, resource: str) -> list[dict[str, Any]]:
    """Every item of a paginated list; [] and a note in the report when RBAC forbids it."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        try:
            response = call(
                limit=PAGE_SIZE, _continue=token, _preload_content=False, _request_timeout=TIMEOUT
            )
        except k8s.exceptions.ApiException as exc:
            if exc.status == 403:
                report.forbidden[resource] = _status_message(exc)
                return []
            raise
        page = json.loads(response.data)
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def _status_message(exc: Exception) -> str:
    try:
        return json.loads(exc.body).get("message") or "forbidden"
    except (TypeError, ValueError, AttributeError):
        return "forbidden"


def _name(value: Any) -> str:
    """A Kubernetes name as discovery keeps it; ValueError for anything a cluster cannot mean."""
    if not isinstance(value, str) or not value or len(value) > 253:
        raise ValueError("bad name")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("control character in a name")
    return value


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        str(k)[:317].replace("\x00", ""): str(v)[:63].replace("\x00", "")
        for k, v in value.items()
        if isinstance(k, str)
    }


def _fingerprint(labels: dict, details: dict) -> str:
    raw = json.dumps([labels, details], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _service_resource(item: dict, recognised: dict[str, list[tuple[dict, str]]]) -> dict[str, Any]:
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    namespace, name = _name(meta.get("namespace")), _name(meta.get("name"))
    labels = _labels(meta.get("labels"))
    ports = [
        p["port"]
        for p in spec.get("ports") or []
        if isinstance(p, dict) and isinstance(p.get("port"), int) and 0 < p["port"] < 65536
    ]
    ingress = ((item.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = next(
        (i.get("ip") or i.get("hostname") for i in ingress if isinstance(i, dict) and i), None
    )
    if external is not None and (not isinstance(external, str) or len(external) > 253):
        external = None
    integration = recognise(name, labels)
    selector = _labels(spec.get("selector"))
    if not integration and selector:  # a Service in front of a recognised Deployment
        for pod_labels, kind in recognised.get(namespace, ()):
            if selector.items() <= pod_labels.items():
                integration = kind
                break
    details = {"type": spec.get("type", ""), "ports": ports}
    if external:
        details["external"] = external
    return {
        "kind": DiscoveredResource.Kind.SERVICE,
        "namespace": namespace,
        "name": name,
        "labels": labels,
        "details": details,
        "integration": integration if ports else "",
    }


def _deployment_resource(item: dict) -> dict[str, Any]:
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    namespace, name = _name(meta.get("namespace")), _name(meta.get("name"))
    template = (spec.get("template") or {}).get("metadata") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    first = containers[0] if containers and isinstance(containers[0], dict) else {}
    image = str(first.get("image", ""))[:500].replace("\x00", "")
    labels = _labels(meta.get("labels"))
    replicas = spec.get("replicas") if isinstance(spec.get("replicas"), int) else None
    return {
        "kind": DiscoveredResource.Kind.DEPLOYMENT,
        "namespace": namespace,
        "name": name,
        "labels": labels,
        "details": {"image": image, "replicas": replicas},
        "integration": recognise(name, labels, image),
        "pod_labels": _labels(template.get("labels")) or labels,
    }


def _endpoint(resource: dict[str, Any]) -> tuple[int, str, str]:
    """(port, url, in-cluster url) of an integrable Service: its kind's usual port if it has it."""
    ports = resource["details"]["ports"]
    usual = INTEGRATIONS[resource["integration"]]["port"]
    port = usual if usual in ports else ports[0]
    in_cluster = f"http://{resource['name']}.{resource['namespace']}.svc:{port}"
    external = resource["details"].get("external")
    host = f"[{external}]" if external and ":" in external else external
    return port, (f"http://{host}:{port}" if external else in_cluster), in_cluster


def discover_cluster(cluster: Connection) -> DiscoveryReport:
    """One discovery pass over a connected Kubernetes connection."""
    report = DiscoveryReport()
    try:
        with api_client_for(cluster) as api:
            core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
            cluster_id = cluster.metadata.get("cluster_id") or ""
            if not cluster_id:
                try:
                    raw = core.read_namespace(
                        "kube-system", _preload_content=False, _request_timeout=TIMEOUT
                    )
                    cluster_id = json.loads(raw.data)["metadata"]["uid"]
                except k8s.exceptions.ApiException as exc:
                    if exc.status not in (403, 404):
                        raise
                    cluster_id = f"connection-{cluster.pk}"  # RBAC hides kube-system
            namespaces = _list_all(core.list_namespace, report, "namespaces")
            nodes = _list_all(core.list_node, report, "nodes")
            services = _list_all(core.list_service_for_all_namespaces, report, "services")
            deployments = _list_all(apps.list_deployment_for_all_namespaces, report, "deployments")
    except ProbeFailed as failed:
        report.error = failed.outcome.summary
    except Exception as exc:  # unreachable, auth, TLS: the probe's business, not a crash here
        report.error = failure_from(exc).outcome.summary
    if report.error:
        if cluster.metadata.get("discovery_error") != report.error:
            cluster.metadata = {**cluster.metadata, "discovery_error": report.error}
            Connection.objects.filter(pk=cluster.pk).update(metadata=cluster.metadata)
        return report

    deployment_rows = _parse(deployments, _deployment_resource, report)
    recognised: dict[str, list[tuple[dict, str]]] = {}
    for row in deployment_rows:
        pod_labels = row.pop("pod_labels")
        if row["integration"]:
            recognised.setdefault(row["namespace"], []).append((pod_labels, row["integration"]))
    service_rows = _parse(services, lambda item: _service_resource(item, recognised), report)
    for row in service_rows:
        if row["integration"]:
            port, url, _ = _endpoint(row)
            if len(url) > 500:  # too long for a connection: kept as a resource only
                row["integration"] = ""
                continue
            row["identity"] = discovered_identity(cluster_id, row["namespace"], row["name"], port)
    report.counts = {
        "namespaces": len(namespaces),
        "nodes": len(nodes),
        "services": len(service_rows),
        "deployments": len(deployment_rows),
    }
    # A list RBAC refused is not an empty list: nothing of that kind is deleted, and no
    # connection is called vanished when its Service (or the Deployment that marks it) is unseen.
    complete = {
        DiscoveredResource.Kind.SERVICE: "services" not in report.forbidden,
        DiscoveredResource.Kind.DEPLOYMENT: "deployments" not in report.forbidden,
    }
    with transaction.atomic():
        if not _lock(cluster):
            report.error = "another discovery pass of this cluster is running"
            return report
        report.rows_written += _store_resources(cluster, service_rows + deployment_rows, complete)
        _sync_connections(cluster, service_rows, report, judge_vanished=all(complete.values()))
        summary = {
            "cluster_id": cluster_id,
            "namespaces": len(namespaces) if "namespaces" not in report.forbidden else None,
            "nodes": len(nodes) if "nodes" not in report.forbidden else None,
            "discovery_forbidden": report.forbidden,
            "discovery_error": "",
        }
        current = {key: cluster.metadata.get(key) for key in summary}
        if current != summary:
            cluster.metadata = {**cluster.metadata, **summary}
            Connection.objects.filter(pk=cluster.pk).update(metadata=cluster.metadata)
            report.rows_written += 1
    log.info(
        "discovery cluster=%s services=%d deployments=%d created=%d vanished=%d written=%d",
        cluster.pk,
        len(service_rows),
        len(deployment_rows),
        len(report.created),
        len(report.vanished),
        report.rows_written,
    )
    return report


def _parse(items: list, build, report: DiscoveryReport) -> list[dict[str, Any]]:
    """Each listed object as a row; objects too odd to keep (or listed twice) are skipped."""
    rows, seen = [], set()
    for item in items:
        try:
            row = build(item) if isinstance(item, dict) else None
        except (ValueError, TypeError, AttributeError, KeyError):
            row = None
        key = row and (row["kind"], row["namespace"], row["name"])
        if row is None or key in seen:
            report.skipped += 1
            continue
        seen.add(key)
        rows.append(row)
    return rows


def _lock(cluster: Connection) -> bool:
    """One pass per cluster at a time (a redelivered task must not overlap a running one)."""
    from django.db import connection as db

    if db.vendor != "postgresql":
        return True
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [7301, cluster.pk])
        return bool(cursor.fetchone()[0])


def _store_resources(
    cluster: Connection, rows: list[dict[str, Any]], complete: dict[str, bool]
) -> int:
    """Keep the cluster's resources as seen: insert new, update changed, delete gone (only of
    the kinds whose list was complete)."""
    existing = {
        (r.kind, r.namespace, r.name): r
        for r in DiscoveredResource.objects.filter(cluster=cluster).only(
            "id", "kind", "namespace", "name", "fingerprint"
        )
    }
    new, changed, seen = [], [], set()
    for row in rows:
        key = (row["kind"], row["namespace"], row["name"])
        seen.add(key)
        fingerprint = _fingerprint(row["labels"], {**row["details"], "i": row["integration"]})
        current = existing.get(key)
        fields = {
            "labels": row["labels"],
            "details": row["details"],
            "integration": row["integration"],
            "identity": row.get("identity", ""),
            "fingerprint": fingerprint,
        }
        if current is None:
            kind, namespace, name = key
            new.append(
                DiscoveredResource(
                    cluster=cluster, kind=kind, namespace=namespace, name=name, **fields
                )
            )
        elif current.fingerprint != fingerprint:
            for name, value in fields.items():
                setattr(current, name, value)
            changed.append(current)
    gone = [r.pk for key, r in existing.items() if key not in seen and complete[key[0]]]
    DiscoveredResource.objects.bulk_create(new, batch_size=2000)
    DiscoveredResource.objects.bulk_update(
        changed, ["labels", "details", "integration", "identity", "fingerprint"], batch_size=1000
    )
    if gone:
        DiscoveredResource.objects.filter(pk__in=gone).delete()
    return len(new) + len(changed) + len(gone)


def _sync_connections(
    cluster: Connection,
    services: list[dict[str, Any]],
    report: DiscoveryReport,
    *,
    judge_vanished: bool,
) -> None:
    integrable = {row["identity"]: row for row in services if row.get("identity")}
    live = {c.identity: c for c in Connection.objects.filter(identity__in=list(integrable))}
    environments = list(cluster.environments.all())
    for identity, row in integrable.items():
        _, url, in_cluster = _endpoint(row)
        existing = live.get(identity)
        if existing is None:
            connection = lifecycle.create_discovered_connection(
                name=f"{row['name']} ({row['namespace']})"[:200],
                kind=row["integration"],
                url=url,
                identity=identity,
                owner=cluster.owner,
                cluster=cluster,
                metadata={"in_cluster_url": in_cluster, "namespace": row["namespace"]},
            )
            if environments:  # whoever shares the cluster sees what runs in it
                connection.environments.add(*environments)
            report.created.append(identity)
            report.rows_written += 2  # the connection and its history row
        elif (
            existing.cluster_id == cluster.pk  # never another cluster's (or user's) connection
            and existing.managed
            and existing.status in (Status.DISCOVERED, Status.REGISTERED, Status.CONNECTED)
            and existing.url != url
        ):
            existing.url = url  # an edit of the endpoint: results in flight are dropped
            existing.save()
            report.updated.append(identity)
            report.rows_written += 1
    if not judge_vanished:
        return
    # what this cluster's discovery created earlier and is gone now
    lost = Connection.objects.filter(
        cluster=cluster,
        managed=True,
        status__in=[Status.DISCOVERED, Status.REGISTERED, Status.CONNECTED],
    ).exclude(identity__in=list(integrable))
    for connection in lost:
        try:
            lifecycle.transition(
                connection,
                Status.DISCONNECTED,
                trigger=Trigger.DISCOVERY,
                reason="vanished from its cluster",
            )
        except lifecycle.TransitionRefused:  # someone acted on it meanwhile
            continue
        report.vanished.append(connection.identity)
        report.rows_written += 2
