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

import json
import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, transaction
from kubernetes import client as k8s

from connections.choices import Status
from connections.discovery import resources, store, sync
from connections.discovery.resources import TIMEOUT, DiscoveryReport, Kept
from connections.metadata import merge_metadata
from connections.models import Connection, DiscoveredResource
from connections.probing.probes.base import ProbeFailed
from connections.probing.probes.kubernetes import api_client_for, failure_from
from core.egress import Session, guarded
from core.sanitize import clean_text
from credentials.bounds import origin_of
from credentials.scrub import scrub

log = logging.getLogger(__name__)


def discover_cluster(cluster: Connection) -> DiscoveryReport:
    """One discovery pass over a connected Kubernetes connection."""
    report = DiscoveryReport()
    deployments = Kept(DiscoveredResource.Kind.DEPLOYMENT)
    services = Kept(DiscoveredResource.Kind.SERVICE)
    try:
        return _discover(cluster, report, deployments, services)
    finally:
        deployments.close()
        services.close()


def _discover(
    cluster: Connection, report: DiscoveryReport, deployments: Kept, services: Kept
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
            namespaces = resources.count_items(
                resources.list_all(core.list_namespace, report, "namespaces")
            )
            nodes = resources.count_items(resources.list_all(core.list_node, report, "nodes"))
            resources.keep_deployments(
                resources.list_all(apps.list_deployment_for_all_namespaces, report, "deployments"),
                deployments,
            )
            resources.keep_services(
                resources.list_all(core.list_service_for_all_namespaces, report, "services"),
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
        if not store.lock_cluster(cluster):
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
        report.rows_written += store.store_resources(cluster, [services, deployments], complete)
        sync.sync_connections(
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
