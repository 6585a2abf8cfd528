"""What a discovery pass writes: the resources it keeps, as differences only, set-based per
chunk; a pass over an unchanged cluster writes nothing."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import connection as db

from connections.discovery.resources import Kept, resource_key
from connections.models import Connection, DiscoveredResource

log = logging.getLogger(__name__)

WRITE_CHUNK = 1000  # rows per INSERT, UPDATE … FROM (VALUES …) and DELETE


def lock_cluster(cluster: Connection) -> bool:
    """One pass per cluster at a time (a redelivered task must not overlap a running one)."""
    if db.vendor != "postgresql":
        return True
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [7301, cluster.pk])
        return bool(cursor.fetchone()[0])


def store_resources(cluster: Connection, kinds: list[Kept], complete: dict[str, bool]) -> int:
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
        stored.setdefault(kind, {})[resource_key(namespace, name)] = pk.to_bytes(8, "big") + _unhex(
            fingerprint
        )
    written = 0
    for kept in kinds:
        current = stored.pop(kept.kind)
        new: list[DiscoveredResource] = []
        changed: list[tuple] = []
        for namespace, name, labels, details, integration, identity, digest in kept.rows():
            found = current.pop(resource_key(namespace, name), None)
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
