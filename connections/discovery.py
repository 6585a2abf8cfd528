"""Cluster discovery: read a connected Kubernetes cluster, keep what it holds, and turn the
Prometheus and Grafana it runs into managed connections.

A pass's network phase runs inside the egress guard (``core.egress.guarded``): its sockets are
held to the address rule and shut at ``DISCOVERY_PASS_TIMEOUT``, so an API server that trickles
costs its own pass that long and writes nothing.

One pass per cluster: namespaces, nodes, Deployments and Services are listed in pages (``limit`` /
``continue``), raw JSON (no model objects for thousands of items), and streamed: namespaces and
nodes are counted page by page, Services and Deployments are parsed page by page into compact rows
(spooled to a temporary file past ``SPOOL_MEMORY``), and each page's JSON is dropped once parsed:
what a pass holds is a page, and per object only the key and fingerprint the diff needs (about
half a kilobyte at the peak), never the objects themselves. A 403 on one resource type is
recorded and the pass goes on with the rest. Writes are differences only, set-based per chunk
(one ``UPDATE … FROM (VALUES …)`` per chunk of changed rows on PostgreSQL): a pass over an
unchanged cluster writes nothing. Identities are deterministic (cluster + namespace + name +
port), so the same resource always maps to the same connection; an ignored one is never touched;
a vanished one turns Disconnected (trigger discovery); a deleted one's identity is free to be
discovered afresh. What was found under a cluster connection deleted since is judged (adopted,
or vanished) by the next live connection to the same cluster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db import connection as db
from django.db.models import F
from django.utils import timezone
from kubernetes import client as k8s

from core.egress import Session, guarded, host_problem
from core.sanitize import clean_text
from credentials.bounds import origin_of
from credentials.scrub import scrub
from live import stamp

from . import lifecycle
from .choices import Status, Trigger
from .identity import discovered_identity
from .metadata import merge_metadata
from .models import Connection, DiscoveredResource
from .probes.base import ProbeFailed
from .probes.kubernetes import api_client_for, failure_from

log = logging.getLogger(__name__)

PAGE_SIZE = 500
TIMEOUT = (5.0, 30.0)
WRITE_CHUNK = 1000  # rows per INSERT, UPDATE … FROM (VALUES …) and DELETE
SPOOL_MEMORY = 16 * 1024 * 1024  # bytes of compact rows kept in memory before a temporary file

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


MAX_LIST_RESTARTS = 3
# 2,000 pages of 500: a million objects of one kind, beyond any real cluster's list
MAX_LIST_PAGES = 2000
MAX_LABELS = 64  # labels kept per object (the rest are dropped)


def _list_all(call, report: DiscoveryReport, resource: str) -> Iterator[tuple[bool, list]]:
    """The pages of a paginated list, one at a time, as ``(fresh, items)``.

    ``fresh`` is True on the first page, and again when the list starts over: whoever takes the
    pages drops what it took from the earlier ones. A continue token that expired meanwhile (410
    Gone: the list outlived the API server's compaction window) restarts the list from the
    beginning, a few times at most. When RBAC forbids the list: a note in the report and an empty
    fresh page (so a list refused halfway through is no list at all). The raw JSON of a page is
    dropped before its items are handed on."""
    token = None
    restarts = 0
    fresh = True
    seen_tokens: set[str] = set()
    pages = 0
    while True:
        try:
            response = call(
                limit=PAGE_SIZE, _continue=token, _preload_content=False, _request_timeout=TIMEOUT
            )
        except k8s.exceptions.ApiException as exc:
            if exc.status == 403:
                report.forbidden[resource] = _status_message(exc)
                yield True, []
                return
            if exc.status == 410 and token and restarts < MAX_LIST_RESTARTS:
                restarts += 1
                token, fresh = None, True
                seen_tokens.clear()  # a new list: its tokens are new
                continue
            raise
        page = json.loads(response.data)
        del response  # the raw bytes of the page
        items = page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        del page
        pages += 1
        if token is not None and (not isinstance(token, str) or len(token) > 4096):
            raise ValueError(f"the API server sent an unusable continue token for {resource}")
        if token in seen_tokens or pages > MAX_LIST_PAGES:
            # a server that pages forever (a token seen before, or more pages than any real
            # cluster has) ends the pass with an error instead of holding the worker
            why = "the same continue value came twice" if token in seen_tokens else f"{pages} pages"
            raise ValueError(f"the API server's {resource} list does not end ({why})")
        if token:
            seen_tokens.add(token)
        yield fresh, items
        items = None  # not held while the next page is read
        fresh = False
        if not token:
            return


def _count(pages: Iterable[tuple[bool, list]]) -> int:
    """How many items a list has, counted page by page (nothing kept)."""
    count = 0
    for fresh, items in pages:
        if fresh:
            count = 0
        count += len(items)
    return count


def _status_message(exc: Exception) -> str:
    try:
        return json.loads(exc.body).get("message") or "forbidden"
    except (TypeError, ValueError, AttributeError):
        return "forbidden"


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _name(value: Any) -> str:
    """A Kubernetes name as discovery keeps it; ValueError for anything a cluster cannot mean."""
    if not isinstance(value, str) or not value or len(value) > 253:
        raise ValueError("bad name")
    if any(ord(ch) < 32 for ch in value) or clean_text(value, 253) != value:
        raise ValueError("control character or invalid Unicode in a name")
    if not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError("not a Kubernetes name (RFC 1123)")
    return value


def _dns_label(value: str) -> str:
    """A Service or namespace name, which becomes a DNS label of the in-cluster URL: RFC 1123
    (lower-case letters, digits, '-', at most 63), so it can never carry '@', ':' or '/' into
    the URL's host."""
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError("not a DNS label (RFC 1123)")
    return value


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    kept = {}
    for key, label in value.items():
        if isinstance(key, str) and len(kept) < MAX_LABELS:
            kept[clean_text(key, 317)] = clean_text(label, 63)
    return kept


def _fingerprint(labels: dict, details: dict) -> str:
    return _digest(labels, details).hex()


def _digest(labels: dict, details: dict) -> bytes:
    """The fingerprint as 32 bytes (stored as its 64 hex digits)."""
    raw = json.dumps([labels, details], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).digest()


def _key(namespace: str, name: str) -> bytes:
    """A resource's key within its kind, in 16 bytes (names hold no control character)."""
    return hashlib.blake2b(f"{namespace}\x00{name}".encode(), digest_size=16).digest()


def _service_resource(item: dict, recognised: dict[str, list[tuple[dict, str]]]) -> dict[str, Any]:
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    namespace = _dns_label(_name(meta.get("namespace")))
    name = _dns_label(_name(meta.get("name")))
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
    if external is not None and (not isinstance(external, str) or host_problem(external)):
        external = None  # only a plain name or address becomes a connection's host
    integration = recognise(name, labels)
    selector = _labels(spec.get("selector"))
    if not integration and selector:  # a Service in front of a recognised Deployment
        for pod_labels, kind in recognised.get(namespace, ()):
            if selector.items() <= pod_labels.items():
                integration = kind
                break
    details = {"type": clean_text(spec.get("type", ""), 40), "ports": ports}
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
    namespace, name = _dns_label(_name(meta.get("namespace"))), _name(meta.get("name"))
    template = (spec.get("template") or {}).get("metadata") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    first = containers[0] if containers and isinstance(containers[0], dict) else {}
    image = clean_text(first.get("image", ""), 500)
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


class _Kept:
    """One kind's list as a pass keeps it until the write: each row compact, marshalled a page at
    a time into a temporary file that stays in memory up to ``SPOOL_MEMORY`` bytes; the key of
    each (16 bytes, to drop an object listed twice); the integrable rows whole (connections are
    made of them, and they are few); the recognised Deployments' pod labels (for the Services in
    front of them). ``reset`` when the list starts over."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        # closed by close(), when the pass ends
        self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        self.reset()

    def reset(self) -> None:
        self.spool.seek(0)
        self.spool.truncate()
        self.keys: set[bytes] = set()
        self.count = 0
        self.skipped = 0  # objects too odd to keep, or listed twice
        self.integrable: list[dict[str, Any]] = []
        self.recognised: dict[str, list[tuple[dict, str]]] = {}

    def unique(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """These rows less those whose key was kept already."""
        fresh = []
        for row in rows:
            key = _key(row["namespace"], row["name"])
            if key in self.keys:
                self.skipped += 1
                continue
            self.keys.add(key)
            fresh.append(row)
        return fresh

    def keep(self, rows: list[dict[str, Any]]) -> None:
        page = []
        for row in rows:
            identity = row.get("identity", "")
            digest = _digest(row["labels"], {**row["details"], "i": row["integration"]})
            page.append(
                (
                    row["namespace"],
                    row["name"],
                    row["labels"],
                    row["details"],
                    row["integration"],
                    identity,
                    digest,
                )
            )
            if identity:
                self.integrable.append(row)
        if page:
            data = marshal.dumps(page)
            self.spool.write(len(data).to_bytes(8, "big") + data)
        self.count += len(page)

    def rows(self) -> Iterator[tuple]:
        """(namespace, name, labels, details, integration, identity, fingerprint digest)."""
        self.spool.seek(0)
        while size := int.from_bytes(self.spool.read(8), "big"):
            yield from marshal.loads(self.spool.read(size))

    def close(self) -> None:
        self.spool.close()


def _keep_deployments(pages: Iterable[tuple[bool, list]], kept: _Kept) -> None:
    for fresh, items in pages:
        if fresh:
            kept.reset()
        rows = kept.unique(_parse(items, _deployment_resource, kept))
        del items  # the page's JSON: parsed
        for row in rows:
            pod_labels = row.pop("pod_labels")
            if row["integration"]:
                kept.recognised.setdefault(row["namespace"], []).append(
                    (pod_labels, row["integration"])
                )
        kept.keep(rows)


def _keep_services(
    pages: Iterable[tuple[bool, list]],
    kept: _Kept,
    recognised: dict[str, list[tuple[dict, str]]],
    cluster_id: str,
) -> None:
    def build(item: dict) -> dict[str, Any]:
        return _service_resource(item, recognised)

    for fresh, items in pages:
        if fresh:
            kept.reset()
        rows = kept.unique(_parse(items, build, kept))
        del items
        for row in rows:
            if row["integration"]:
                port, url, _ = _endpoint(row)
                if len(url) > 500:  # too long for a connection: kept as a resource only
                    row["integration"] = ""
                    continue
                row["identity"] = discovered_identity(
                    cluster_id, row["namespace"], row["name"], port
                )
        kept.keep(rows)


def discover_cluster(cluster: Connection) -> DiscoveryReport:
    """One discovery pass over a connected Kubernetes connection."""
    report = DiscoveryReport()
    deployments = _Kept(DiscoveredResource.Kind.DEPLOYMENT)
    services = _Kept(DiscoveredResource.Kind.SERVICE)
    try:
        return _discover(cluster, report, deployments, services)
    finally:
        deployments.close()
        services.close()


def _discover(
    cluster: Connection, report: DiscoveryReport, deployments: _Kept, services: _Kept
) -> DiscoveryReport:
    namespaces = nodes = 0
    # The network phase runs under the egress guard: every socket it opens is held to the
    # address rule, and all of them are shut at the deadline, so an API server that trickles
    # costs this pass DISCOVERY_PASS_TIMEOUT (a per-read timeout never fires on a byte every
    # few seconds), inside Celery or out of it.
    session = Session()
    try:
        with (
            guarded(session, deadline=settings.DISCOVERY_PASS_TIMEOUT),
            api_client_for(cluster) as api,
        ):
            core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
            # the cluster's identity: its kube-system uid, recorded once (at registration, by
            # the reachability check) and never overwritten; if RBAC hides it, the server's
            # origin, which is as stable across a delete and re-add
            cluster_id = cluster.metadata.get("cluster_id") or ""
            if not cluster_id:
                try:
                    raw = core.read_namespace(
                        "kube-system", _preload_content=False, _request_timeout=TIMEOUT
                    )
                    uid = (json.loads(raw.data).get("metadata") or {}).get("uid")
                    if isinstance(uid, str) and uid.strip() and clean_text(uid, 100) == uid:
                        cluster_id = uid
                    else:  # no usable uid: the server's origin, as when RBAC hides it
                        cluster_id = f"server:{origin_of(api.configuration.host)}"
                except k8s.exceptions.ApiException as exc:
                    if exc.status not in (403, 404):
                        raise
                    cluster_id = f"server:{origin_of(api.configuration.host)}"
            # page by page: counted, or parsed into compact rows; no list is held whole.
            # Deployments first: a Service in front of a recognised one is recognised too.
            namespaces = _count(_list_all(core.list_namespace, report, "namespaces"))
            nodes = _count(_list_all(core.list_node, report, "nodes"))
            _keep_deployments(
                _list_all(apps.list_deployment_for_all_namespaces, report, "deployments"),
                deployments,
            )
            _keep_services(
                _list_all(core.list_service_for_all_namespaces, report, "services"),
                services,
                deployments.recognised,
                cluster_id,
            )
    except SoftTimeLimitExceeded:  # the worker's limit, should the deadline not have come first
        report.error = (
            f"the pass did not end within {settings.DISCOVERY_TIME_LIMIT}s "
            "(DISCOVERY_TIME_LIMIT); nothing was changed"
        )
    except DatabaseError:
        raise  # the database's trouble, not the cluster's
    except Exception as exc:  # unreachable, auth, TLS: the probe's business, not a crash here
        if session.aborted:  # whatever the cut-off read raised: the deadline did it
            report.error = (
                "the API server did not finish answering within "
                f"{settings.DISCOVERY_PASS_TIMEOUT} s (DISCOVERY_PASS_TIMEOUT); nothing was changed"
            )
        elif isinstance(exc, ProbeFailed):
            report.error = exc.outcome.summary
        else:
            report.error = failure_from(exc).outcome.summary
    report.error = scrub(report.error, cluster.credential) if report.error else ""
    report.forbidden = {
        resource: scrub(message, cluster.credential)
        for resource, message in report.forbidden.items()
    }
    if report.error:
        if cluster.metadata.get("discovery_error") != report.error:
            merge_metadata(
                Connection.objects.filter(pk=cluster.pk), {"discovery_error": report.error}
            )
            cluster.metadata = {**cluster.metadata, "discovery_error": report.error}
        return report

    deployments.keys, services.keys = set(), set()  # duplicates are dropped: done with
    report.skipped += deployments.skipped + services.skipped
    report.counts = {
        "namespaces": namespaces,
        "nodes": nodes,
        "services": services.count,
        "deployments": deployments.count,
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
        # the cluster as it is now, locked: a pass that raced a Delete (or Ignore, or a
        # disconnect) writes nothing into it
        if not (
            Connection.objects.select_for_update()
            .filter(pk=cluster.pk, status=Status.CONNECTED)
            .exists()
        ):
            report.error = "the cluster is no longer connected; nothing was written"
            return report
        report.rows_written += _store_resources(cluster, [services, deployments], complete)
        _sync_connections(
            cluster,
            services.integrable,
            report,
            judge_vanished=all(complete.values()),
            cluster_id=cluster_id,
        )
        summary = {
            "namespaces": namespaces if "namespaces" not in report.forbidden else None,
            "nodes": nodes if "nodes" not in report.forbidden else None,
            "discovery_forbidden": report.forbidden,
            "discovery_error": "",
        }
        if not cluster.metadata.get("cluster_id"):
            summary["cluster_id"] = cluster_id  # written once, never changed after
        current = {key: cluster.metadata.get(key) for key in summary}
        if current != summary:
            merge_metadata(Connection.objects.filter(pk=cluster.pk), summary)
            cluster.metadata = {**cluster.metadata, **summary}
            report.rows_written += 1
    log.info(
        "discovery cluster=%s services=%d deployments=%d created=%d vanished=%d written=%d",
        cluster.pk,
        services.count,
        deployments.count,
        len(report.created),
        len(report.vanished),
        report.rows_written,
    )
    return report


def _parse(items: list, build, report: Any) -> list[dict[str, Any]]:
    """Each listed object of a page as a row; objects too odd to keep are skipped (counted in
    ``report.skipped``)."""
    rows = []
    for item in items:
        try:
            row = build(item) if isinstance(item, dict) else None
        except (ValueError, TypeError, AttributeError, KeyError):
            row = None
        if row is None:
            report.skipped += 1
            continue
        rows.append(row)
    return rows


def _lock(cluster: Connection) -> bool:
    """One pass per cluster at a time (a redelivered task must not overlap a running one)."""
    if db.vendor != "postgresql":
        return True
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [7301, cluster.pk])
        return bool(cursor.fetchone()[0])


def _store_resources(cluster: Connection, kinds: list[_Kept], complete: dict[str, bool]) -> int:
    """Keep the cluster's resources as seen: insert new, update changed, delete gone (only of
    the kinds whose list was complete); the rows written.

    What is stored is read here, under the pass's lock, compactly (16-byte key, id and 32-byte
    fingerprint); the kept rows stream past it, and the writes go a chunk at a time: a
    ``bulk_create`` of new rows, one ``UPDATE … FROM (VALUES …)`` of changed ones (PostgreSQL;
    ``bulk_update`` elsewhere), a ``DELETE`` of gone ids."""
    stored: dict[str, dict[bytes, bytes]] = {kept.kind: {} for kept in kinds}
    listed = DiscoveredResource.objects.filter(cluster=cluster).values_list(
        "id", "kind", "namespace", "name", "fingerprint"
    )
    for pk, kind, namespace, name, fingerprint in listed.iterator(chunk_size=5000):
        stored.setdefault(kind, {})[_key(namespace, name)] = pk.to_bytes(8, "big") + _unhex(
            fingerprint
        )
    written = 0
    for kept in kinds:
        current = stored.pop(kept.kind)
        new: list[DiscoveredResource] = []
        changed: list[tuple] = []
        for namespace, name, labels, details, integration, identity, digest in kept.rows():
            found = current.pop(_key(namespace, name), None)
            if found is None:
                new.append(
                    DiscoveredResource(
                        cluster=cluster,
                        kind=kept.kind,
                        namespace=namespace,
                        name=name,
                        labels=labels,
                        details=details,
                        integration=integration,
                        identity=identity,
                        fingerprint=digest.hex(),
                    )
                )
                if len(new) >= WRITE_CHUNK:
                    written += _insert(new)
                    new = []
            elif found[8:] != digest:
                pk = int.from_bytes(found[:8], "big")
                changed.append((pk, labels, details, integration, identity, digest.hex()))
                if len(changed) >= WRITE_CHUNK:
                    written += _update(changed)
                    changed = []
        written += _insert(new) + _update(changed)
        if complete.get(kept.kind, False):
            gone = [int.from_bytes(found[:8], "big") for found in current.values()]
            del current
            for start in range(0, len(gone), WRITE_CHUNK):
                written += _delete(gone[start : start + WRITE_CHUNK])
    return written


def _unhex(fingerprint: str) -> bytes:
    try:
        return bytes.fromhex(fingerprint)
    except (TypeError, ValueError):
        return b""  # never equal to a digest: the row is rewritten


def _insert(rows: list[DiscoveredResource]) -> int:
    if rows:
        DiscoveredResource.objects.bulk_create(rows, batch_size=WRITE_CHUNK)
    return len(rows)


def _delete(ids: list[int]) -> int:
    return DiscoveredResource.objects.filter(pk__in=ids).delete()[0] if ids else 0


# One UPDATE … FROM (VALUES …) per chunk of changed rows (as connections/health.py's _BULK_SQL).
# By id alone (ids of the cluster's rows read under the pass's lock): a planner that also had a
# cluster_id condition would scan every row of the cluster for each chunk.
_UPDATE_SQL = """
UPDATE {table} AS r SET
    labels = v.labels, details = v.details, integration = v.integration,
    identity = v.identity, fingerprint = v.fingerprint
FROM (VALUES {rows}) AS v(id, labels, details, integration, identity, fingerprint)
WHERE r.id = v.id
"""
_UPDATE_ROW = "(%s::bigint, %s::jsonb, %s::jsonb, %s::varchar, %s::varchar, %s::varchar)"
UPDATED_FIELDS = ("labels", "details", "integration", "identity", "fingerprint")


def _values_update() -> bool:
    """Whether changed rows are written with UPDATE … FROM (VALUES …) (PostgreSQL)."""
    return db.vendor == "postgresql"


def _update(rows: list[tuple]) -> int:
    """Write a chunk of changed rows ``(id, labels, details, integration, identity,
    fingerprint)``: one statement on PostgreSQL, ``bulk_update`` elsewhere."""
    if not rows:
        return 0
    if not _values_update():
        objs = [
            DiscoveredResource(pk=row[0], **dict(zip(UPDATED_FIELDS, row[1:], strict=True)))
            for row in rows
        ]
        return DiscoveredResource.objects.bulk_update(objs, UPDATED_FIELDS, batch_size=WRITE_CHUNK)
    params: list[Any] = []
    for pk, labels, details, integration, identity, fingerprint in rows:
        params += [pk, json.dumps(labels), json.dumps(details), integration, identity, fingerprint]
    sql = _UPDATE_SQL.format(
        table=db.ops.quote_name(DiscoveredResource._meta.db_table),
        rows=", ".join([_UPDATE_ROW] * len(rows)),
    )
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# A discovered connection follows its resource's address in these states (not once ignored).
URL_FOLLOWING_STATES = (
    Status.DISCOVERED,
    Status.REGISTERED,
    Status.CONNECTED,
    Status.DISCONNECTED,
)


def _sync_connections(
    cluster: Connection,
    services: list[dict[str, Any]],
    report: DiscoveryReport,
    *,
    judge_vanished: bool,
    cluster_id: str,
) -> None:
    integrable = {row["identity"]: row for row in services if row.get("identity")}
    live = {
        c.identity: c
        for c in Connection.objects.filter(identity__in=list(integrable)).select_related("cluster")
    }
    environments = list(cluster.environments.all())
    # a child found under another cluster connection (deleted, or pointing elsewhere) is taken
    # over only if this cluster's owner may change it: anyone can add a cluster whose API
    # server claims another's identity, and must gain nothing by it
    foreign = [c.pk for c in live.values() if c.cluster_id != cluster.pk]
    takeable = set(
        _changeable_by(cluster.owner).filter(pk__in=foreign).values_list("pk", flat=True)
        if foreign
        else ()
    )
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
            continue
        if not existing.managed:
            continue  # a user's own connection is never discovery's
        if existing.cluster_id != cluster.pk:
            parent = existing.cluster
            same_cluster = (parent.metadata or {}).get("cluster_id") if parent else None
            if (
                parent is not None
                and parent.status != Status.DELETED
                and same_cluster == cluster_id
            ) or existing.pk not in takeable:
                continue  # another live connection's, or not this owner's: never taken over
            # its cluster was deleted and added again (same identity), or its old parent now
            # points at another cluster: adopt it, in whatever state it is (an ignored child
            # stays ignored)
            Connection.all_objects.filter(pk=existing.pk).update(cluster=cluster)
            stamp.touch([existing.pk])
            existing.cluster_id = cluster.pk
            report.updated.append(identity)
            report.rows_written += 1
        if existing.status in URL_FOLLOWING_STATES and existing.url != url:
            # the address only, guarded by the state the row has now (a user who ignored it
            # meanwhile wins), never a save of the whole row from the copy loaded at the start
            # of the pass (that would undo metadata and edits written since); as an edit of
            # the endpoint, results in flight are dropped and the new address probed soon
            moved = Connection.objects.filter(
                pk=existing.pk, status__in=URL_FOLLOWING_STATES
            ).update(
                url=url,
                state_version=F("state_version") + 1,
                consecutive_failures=0,
                next_probe_at=timezone.now(),
                probe_claim=None,
                updated_at=timezone.now(),
            )
            if moved:
                stamp.touch([existing.pk])  # a bulk UPDATE: no signal tells the pages
                report.updated.append(identity)
                report.rows_written += 1
    if not judge_vanished:
        return
    # what this cluster's discovery created earlier and is gone now; and what discovery found
    # in this same cluster (its identity is in theirs) under a connection deleted since: the
    # tombstone judges nothing any more, this connection is now the cluster's (as for the
    # children still there, adopted above)
    mine = Connection.objects.filter(cluster=cluster)
    orphans = Connection.objects.filter(
        cluster__status=Status.DELETED,
        identity__startswith=_identity_prefix(cluster_id),
        pk__in=_changeable_by(cluster.owner).values("pk"),
    )
    lost = [
        query.filter(
            managed=True, status__in=[Status.DISCOVERED, Status.REGISTERED, Status.CONNECTED]
        )
        .exclude(identity__in=list(integrable))
        .order_by()
        for query in (mine, orphans)
    ]
    for connection in lost[0].union(lost[1], all=True):  # one statement, each on its index
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
        if connection.cluster_id != cluster.pk:  # found under the tombstone: adopted
            Connection.all_objects.filter(pk=connection.pk).update(cluster=cluster)
            stamp.touch([connection.pk])
            report.rows_written += 1


def _changeable_by(owner: Any):
    """The connections a cluster's owner may change (none for a cluster with no owner)."""
    return Connection.all_objects.restrict(owner, "change")


def _identity_prefix(cluster_id: str) -> str:
    """What the identity of everything discovered in this cluster starts with."""
    return discovered_identity(cluster_id, "", "", "").removesuffix("/:")
