"""What a discovery pass reads from a cluster: its lists, page by page, each page parsed into
compact rows of what the pass keeps (and the integrations it recognises), spooled to a
temporary file past ``SPOOL_MEMORY``."""

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

from kubernetes import client as k8s

from connections.identity import discovered_identity
from connections.models import DiscoveredResource
from core.egress import host_problem
from core.sanitize import clean_text

log = logging.getLogger(__name__)


PAGE_SIZE = 500
TIMEOUT = (5.0, 30.0)
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


def list_all(call, report: DiscoveryReport, resource: str) -> Iterator[tuple[bool, list]]:
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
                report.forbidden[resource] = status_message(exc)
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


def count_items(pages: Iterable[tuple[bool, list]]) -> int:
    """How many items a list has, counted page by page (nothing kept)."""
    count = 0
    for fresh, items in pages:
        if fresh:
            count = 0
        count += len(items)
    return count


def status_message(exc: Exception) -> str:
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


def _digest(labels: dict, details: dict) -> bytes:
    """The fingerprint as 32 bytes (stored as its 64 hex digits)."""
    raw = json.dumps([labels, details], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).digest()


def resource_key(namespace: str, name: str) -> bytes:
    """A resource's key within its kind, in 16 bytes (names hold no control character)."""
    return hashlib.blake2b(f"{namespace}\x00{name}".encode(), digest_size=16).digest()


def service_resource(item: dict, recognised: dict[str, list[tuple[dict, str]]]) -> dict[str, Any]:
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


def deployment_resource(item: dict) -> dict[str, Any]:
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


def endpoint(resource: dict[str, Any]) -> tuple[int, str, str]:
    """(port, url, in-cluster url) of an integrable Service: its kind's usual port if it has it."""
    ports = resource["details"]["ports"]
    usual = INTEGRATIONS[resource["integration"]]["port"]
    port = usual if usual in ports else ports[0]
    in_cluster = f"http://{resource['name']}.{resource['namespace']}.svc:{port}"
    external = resource["details"].get("external")
    host = f"[{external}]" if external and ":" in external else external
    return port, (f"http://{host}:{port}" if external else in_cluster), in_cluster


class Kept:
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
            key = resource_key(row["namespace"], row["name"])
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


def keep_deployments(pages: Iterable[tuple[bool, list]], kept: Kept) -> None:
    for fresh, items in pages:
        if fresh:
            kept.reset()
        rows = kept.unique(parse_page(items, deployment_resource, kept))
        del items  # the page's JSON: parsed
        for row in rows:
            pod_labels = row.pop("pod_labels")
            if row["integration"]:
                kept.recognised.setdefault(row["namespace"], []).append(
                    (pod_labels, row["integration"])
                )
        kept.keep(rows)


def keep_services(
    pages: Iterable[tuple[bool, list]],
    kept: Kept,
    recognised: dict[str, list[tuple[dict, str]]],
    cluster_id: str,
) -> None:
    def build(item: dict) -> dict[str, Any]:
        return service_resource(item, recognised)

    for fresh, items in pages:
        if fresh:
            kept.reset()
        rows = kept.unique(parse_page(items, build, kept))
        del items
        for row in rows:
            if row["integration"]:
                port, url, _ = endpoint(row)
                if len(url) > 500:  # too long for a connection: kept as a resource only
                    row["integration"] = ""
                    continue
                row["identity"] = discovered_identity(
                    cluster_id, row["namespace"], row["name"], port
                )
        kept.keep(rows)


def parse_page(items: list, build, report: Any) -> list[dict[str, Any]]:
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
