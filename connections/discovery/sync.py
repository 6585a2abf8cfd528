"""The connections a discovery pass creates, moves and judges vanished, from the integrable
Services it found."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import F
from django.utils import timezone

from connections import creating, lifecycle
from connections.choices import Status, Trigger
from connections.discovery import resources
from connections.discovery.resources import DiscoveryReport
from connections.identity import discovered_identity
from connections.models import Connection
from live import stamp

log = logging.getLogger(__name__)

URL_FOLLOWING_STATES = (
    Status.DISCOVERED,
    Status.REGISTERED,
    Status.CONNECTED,
    Status.DISCONNECTED,
)


def sync_connections(
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
        _, url, in_cluster = resources.endpoint(row)
        existing = live.get(identity)
        if existing is None:
            connection = creating.create_discovered_connection(
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
