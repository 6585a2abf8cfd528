"""Discovery of large clusters: first, no-change and all-changed passes, and a 200,000-object one.

    python bench/discovery.py [--objects 20000] [--large 200000] [--integrable 200]

Serves a cluster of ``--objects`` Services and Deployments (half each, 100 namespaces, one node
per 1,000 objects), with ``--integrable`` Prometheus/Grafana among them, from the in-suite
Kubernetes API server (tests/kube_api.py: HTTPS, bearer token, paginated lists) and runs
connections.discovery through the official client against PostgreSQL (database
``bench_discovery``):

1. the first pass (everything is new),
2. a second pass over the unchanged cluster (target: writes nothing),
3. an all-changed pass: every object's labels changed in the server first (target: each row
   written once, under 5 s for 20,000 objects),

then the same three passes over a cluster of ``--large`` objects (target: each under 60 s, peak
RSS under 300 MB).

The API server runs in a process of its own: it holds every object's JSON, which would otherwise
be counted in the pass's memory, and would compete with the pass for the GIL. It sets
TCP_NODELAY on its connections as a real API server (Go) does: the in-suite server writes a
response's head and body apart, and with Nagle on, each page then waits about 40 ms for a delayed
ACK (16 s of a 200,000-object pass's 400 pages); ``--nagle`` serves as it does.
Each pass runs in a fresh Python process that sets Django up as a worker does, so the peak RSS
printed (``ru_maxrss``) is the whole of a worker's process running that pass, Django, the
Kubernetes client and psycopg included; "base" is that process's RSS before the pass. Printed per
pass: wall time (and the part spent writing), rows written, connections created, queries (and per
1,000 objects), base and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import time

from _setup import PG_URL, ROOT, django_on_postgres

DB_NAME = "bench_discovery"
TOKEN = "bench-token"


# ----------------------------------------------------------------- the API server's process


def _fill(api, objects: int, integrable: int, rev: int) -> None:
    """Add (or replace, with new labels: ``rev``) every object of the cluster."""
    half = objects // 2
    every = max(1, half // integrable) if integrable else 0
    for i in range(half):
        namespace = f"ns-{i % 100:03d}"
        special = every and i % every == 0
        kind = ("prometheus", "grafana")[(i // max(every, 1)) % 2] if special else "app"
        labels = {"app.kubernetes.io/name": kind} if special else {"app": f"app-{i}"}
        if rev:
            labels["rev"] = str(rev)
        port = {"prometheus": 9090, "grafana": 3000}.get(kind, 8080)
        api.add_service(namespace, f"svc-{i:06d}", labels, [port])
        api.add_deployment(namespace, f"dep-{i:06d}", labels, f"example/{kind}:1")
    for n in range(max(3, objects // 1000)):
        api.add_node(f"node-{n:04d}")


def _serve(pipe, objects: int, integrable: int, nodelay: bool) -> None:
    """The API server's process: fill the cluster, then answer the bench's commands."""
    sys.path.insert(0, str(ROOT))
    from tests import kube_api
    from tests.kube_api import FakeKubernetesAPI

    if nodelay:  # as a real API server (Go's net/http) does: no Nagle on its connections
        accept = kube_api._Server.get_request

        def get_request(self):
            sock, address = accept(self)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, address

        kube_api._Server.get_request = get_request

    with FakeKubernetesAPI(tokens={TOKEN: "admin"}) as api:
        started = time.perf_counter()
        _fill(api, objects, integrable, 0)
        pipe.send((api.url, api.ca_pem, time.perf_counter() - started))
        while True:
            command, value = pipe.recv()
            if command == "stop":
                return
            started = time.perf_counter()
            _fill(api, objects, integrable, value)  # "relabel": every object changes
            pipe.send(time.perf_counter() - started)


class Cluster:
    """An API server in a process of its own."""

    def __init__(self, objects: int, integrable: int, nodelay: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, objects, integrable, nodelay))
        self.process.start()
        self.url, self.ca_pem, self.filled_in = self.pipe.recv()

    def relabel(self, rev: int) -> float:
        self.pipe.send(("relabel", rev))
        return self.pipe.recv()

    def stop(self) -> None:
        self.pipe.send(("stop", None))
        self.process.join(30)


# -------------------------------------------------------------------- one pass, in a process


def run_pass(cluster_pk: int) -> None:
    """One discovery pass in this (fresh) process; its figures as one JSON line on stdout."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{PG_URL}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshplay.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection as db

    from connections import discovery
    from connections.models import Connection

    settings.DEBUG = False  # as in production: no query log kept in memory
    cluster = Connection.objects.get(pk=cluster_pk)
    base = _rss_now()
    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    writing = [0.0]
    store = discovery.store.store_resources

    def timed_store(*args, **kwargs):
        started = time.perf_counter()
        try:
            return store(*args, **kwargs)
        finally:
            writing[0] += time.perf_counter() - started

    discovery.store.store_resources = timed_store
    with db.execute_wrapper(count):
        started = time.perf_counter()
        report = discovery.discover_cluster(cluster)
        wall = time.perf_counter() - started
    figures = {
        "wall": wall,
        "writing": writing[0],
        "rows_written": report.rows_written,
        "created": len(report.created),
        "queries": queries[0],
        "counts": report.counts,
        "error": report.error,
        "base_mb": base,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def _rss_now() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def one_pass(cluster_pk: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--pass-of", str(cluster_pk)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------------------- the bench


def bench_cluster(objects: int, integrable: int, owner, nodelay: bool) -> list[tuple[str, dict]]:
    from connections.models import Connection, DiscoveredResource
    from connections.probing.probes.kubernetes import encode_ca
    from credentials.bounds import origin_of
    from credentials.models import Credential

    print(f"\n{objects:,} objects ({integrable} Prometheus/Grafana)")
    server = Cluster(objects, integrable, nodelay)
    print(f"  served in {server.filled_in:.1f}s by an API server in its own process")
    credential = Credential(
        name=f"bench {objects}",
        kind="bearer_token",
        owner=owner,
        endpoints=[origin_of(server.url)],
    )
    credential.set_secret({"token": TOKEN})
    credential.save()
    cluster = Connection.objects.create(
        name=f"bench-cluster-{objects}",
        kind="kubernetes",
        url=server.url,
        status="connected",
        owner=owner,
        credential=credential,
        metadata={"certificate_authority_data": encode_ca(server.ca_pem)},
    )
    results = []
    try:
        for label in ("first", "second (no change)", "all changed"):
            if label == "all changed":
                took = server.relabel(1)
                print(f"  every object's labels changed in the server ({took:.1f}s)")
            figures = one_pass(cluster.pk)
            assert not figures["error"], figures["error"]
            per_1000 = figures["queries"] / (objects / 1000)
            print(
                f"  {label:<19} {figures['wall']:6.2f}s (writing {figures['writing']:5.2f}s)  "
                f"rows written {figures['rows_written']:7,d}  "
                f"created {figures['created']:4d}  "
                f"queries {figures['queries']:5d} ({per_1000:4.1f} per 1,000 objects)  "
                f"RSS base {figures['base_mb']:4.0f} MB peak {figures['peak_mb']:4.0f} MB",
                flush=True,
            )
            results.append((label, figures))
        stored = DiscoveredResource.objects.filter(cluster=cluster).count()
        made = Connection.objects.filter(cluster=cluster).count()
        print(f"  stored {stored:,} resources, {made} connections")
    finally:
        server.stop()
    Connection.all_objects.filter(pk=cluster.pk).delete()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=200_000, help="0: no large cluster")
    parser.add_argument("--integrable", type=int, default=200)
    parser.add_argument(
        "--nagle",
        action="store_true",
        help="serve as the in-suite server does (Nagle on: about 40 ms of delayed ACK per page)",
    )
    parser.add_argument("--pass-of", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pass_of:
        run_pass(args.pass_of)
        return
    django_on_postgres(DB_NAME, LOG_LEVEL="WARNING")

    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    owner = users.filter(username="bench").first() or users.create_user("bench", password="x")

    verdicts = []
    small = bench_cluster(args.objects, args.integrable, owner, not args.nagle)
    passes = dict(small)
    verdicts.append(
        ("no-change pass writes nothing", passes["second (no change)"]["rows_written"] == 0)
    )
    changed = passes["all changed"]
    verdicts.append(
        (
            f"all-changed pass of {args.objects:,}: each row once, under 5 s",
            changed["rows_written"] == args.objects and changed["wall"] < 5,
        )
    )
    if args.large:
        large = dict(bench_cluster(args.large, args.integrable, owner, not args.nagle))
        verdicts.append(
            (
                f"{args.large:,} objects: every pass under 60 s and 300 MB peak RSS",
                all(f["wall"] < 60 and f["peak_mb"] < 300 for f in large.values()),
            )
        )
        verdicts.append(
            ("no-change pass writes nothing", large["second (no change)"]["rows_written"] == 0)
        )
    print()
    for what, met in verdicts:
        print(f"target {'met' if met else 'MISSED'}: {what}")


if __name__ == "__main__":
    main()
