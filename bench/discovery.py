"""Discovery of a large cluster: a first and a second (no-change) pass.

    python bench/discovery.py [--objects 20000] [--integrable 200]

Serves a cluster of ``--objects`` Services and Deployments (half each, 100 namespaces), with
``--integrable`` Prometheus/Grafana among them, from the in-suite Kubernetes API server
(tests/kube_api.py: HTTPS, bearer token, paginated lists) and runs connections.discovery through
the official client against PostgreSQL (database ``bench_discovery``). Prints the wall time of each
pass, the rows it wrote and the queries per 1,000 objects. Target: the second pass writes nothing,
and both stay well under a minute.
"""

from __future__ import annotations

import argparse
import time

from _setup import django_on_postgres

DB_NAME = "bench_discovery"


def prepare() -> None:
    django_on_postgres(DB_NAME, LOG_LEVEL="WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--integrable", type=int, default=200)
    args = parser.parse_args()
    prepare()

    from django.contrib.auth import get_user_model
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    from connections import discovery
    from connections.models import Connection, Credential, DiscoveredResource
    from connections.probes.kubernetes import encode_ca
    from tests.kube_api import FakeKubernetesAPI

    Connection.all_objects.all().delete()
    Credential.objects.all().delete()
    users = get_user_model().objects
    owner = users.filter(username="bench").first() or users.create_user("bench", password="x")

    with FakeKubernetesAPI(tokens={"bench-token": "admin"}) as api:
        half = args.objects // 2
        every = max(1, half // args.integrable) if args.integrable else 0
        started = time.perf_counter()
        for i in range(half):
            namespace = f"ns-{i % 100:03d}"
            special = every and i % every == 0
            kind = ("prometheus", "grafana")[(i // max(every, 1)) % 2] if special else "app"
            labels = {"app.kubernetes.io/name": kind} if special else {"app": f"app-{i}"}
            port = {"prometheus": 9090, "grafana": 3000}.get(kind, 8080)
            api.add_service(namespace, f"svc-{i:05d}", labels, [port])
            api.add_deployment(namespace, f"dep-{i:05d}", labels, f"example/{kind}:1")
        print(f"cluster of {args.objects} objects served in {time.perf_counter() - started:.1f}s")

        credential = Credential(name="bench", kind="bearer_token", owner=owner)
        credential.set_secret({"token": "bench-token"})
        credential.save()
        cluster = Connection.objects.create(
            name="bench-cluster",
            kind="kubernetes",
            url=api.url,
            status="connected",
            owner=owner,
            credential=credential,
            metadata={"certificate_authority_data": encode_ca(api.ca_pem)},
        )
        for label in ("first pass", "second pass"):
            with CaptureQueriesContext(db) as queries:
                started = time.perf_counter()
                report = discovery.discover_cluster(cluster)
                wall = time.perf_counter() - started
            assert not report.error, report.error
            per_1000 = len(queries.captured_queries) / (args.objects / 1000)
            print(
                f"{label}: {wall:6.2f}s  rows written {report.rows_written:6d}  "
                f"connections created {len(report.created):4d}  "
                f"queries {len(queries.captured_queries):4d} ({per_1000:.1f} per 1,000 objects)"
            )
        stored = DiscoveredResource.objects.filter(cluster=cluster).count()
        made = Connection.objects.filter(cluster=cluster).count()
        verdict = "met" if report.rows_written == 0 and wall < 60 else "MISSED"
        print(f"stored {stored} resources, {made} connections; target: {verdict}")


if __name__ == "__main__":
    main()
