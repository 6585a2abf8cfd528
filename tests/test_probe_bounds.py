"""Bounds under hostile endpoints: every network operation ends by its own deadline and frees
its slot only once it has truly ended; one bad value costs only its own row; bursts to one
host are spread; a killed worker's batch is probed again within a lease, nothing twice.

The hostile servers (tests/hostile.py) listen on 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings as django_settings
from django.db import DataError
from django.db import connection as db
from django.utils import timezone

from connections import discovery, tasks
from connections.choices import Status
from connections.models import Connection, DiscoveredResource, MetricSample, ProbeResult
from connections.periodic import ensure_periodic_tasks
from connections.probing import outcomes as health
from connections.probing import scheduling, scrape
from connections.probing.outcomes import apply_outcomes
from connections.probing.probes import ProbeOutcome, check_reachability, probe_many
from connections.probing.probes.kubernetes import encode_ca
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.hostile import (
    GOOD_BUILDINFO,
    SCRAPE_ANSWERS,
    CountingServer,
    FakePrometheus,
    SplitBodyServer,
    TinyBacklogServer,
    TrickleServer,
)
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert
from tests.services import LoopbackHTTPServer, wait_until

TOTAL = 2.0  # the total deadline of every probe in these tests
MARGIN = 2.0  # what "within its deadline" may take beyond it (loop, teardown, a slow CI box)
TOKEN = "bounds-admin-token"
DISPATCH = "connections.tasks.dispatch_due_probes"  # beat's task: claims what is due


@pytest.fixture(scope="module")
def tls_material():
    """(ca_pem, cert_pem, key_pem) for 127.0.0.1."""
    return make_ca_and_cert()


@pytest.fixture
def deadline_timeouts(settings):
    settings.PROBE_TIMEOUTS = {"default": (1.0, TOTAL), "kubernetes": (1.0, TOTAL)}


@pytest.fixture
def trickle(tls_material):
    """trickle(mode, tls=False): a TrickleServer, closed after the test."""
    servers = []

    def make(mode="headers", tls=False):
        _, cert, key = tls_material
        server = TrickleServer(mode, tls=(cert, key) if tls else None)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def k8s_connection(url, ca_pem, token=TOKEN, **metadata):
    credential = Credential(name="k8s token", kind="bearer_token")
    credential.endpoints = [origin_of(url)]  # the owner bound it to this server
    credential.set_secret({"token": token})
    return Connection(
        name="cluster",
        kind="kubernetes",
        url=url,
        credential=credential,
        metadata={"certificate_authority_data": encode_ca(ca_pem), **metadata},
    )


def timed(call, *args):
    started = time.monotonic()
    result = call(*args)
    return result, time.monotonic() - started


def hostile_threads_excluded() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.name.startswith("hostile")}


# --------------------------------------------------------------------------------------------
# 1. Every network operation ends by its own deadline.


@pytest.mark.parametrize("mode", ["status", "headers", "body"])
@pytest.mark.parametrize("kind", ["http", "prometheus"])
def test_an_http_probe_against_a_trickling_server_ends_by_its_deadline(
    kind, mode, trickle, deadline_timeouts
):
    server = trickle(mode)
    outcome, elapsed = timed(check_reachability, Connection(name="t", kind=kind, url=server.url))
    # a body that never ends is no answer: the probe reads the whole body (up to MAX_BODY)
    assert (outcome.ok, outcome.error_class) == (False, "timeout"), outcome
    assert elapsed < TOTAL + MARGIN, f"the probe took {elapsed:.2f}s (deadline {TOTAL}s)"
    assert server.accepted >= 1 and server.bytes_sent >= 1  # it really was trickled to
    assert server.wait_closed(1.5), f"{server.open} connection(s) left open after the probe"


def test_an_http_probe_against_a_trickled_tls_handshake_ends_by_its_deadline(
    trickle, deadline_timeouts
):
    server = trickle("handshake")
    outcome, elapsed = timed(check_reachability, Connection(name="t", kind="http", url=server.url))
    assert (outcome.ok, outcome.error_class) == (False, "timeout"), outcome
    assert elapsed < TOTAL + MARGIN
    assert server.wait_closed(1.5), f"{server.open} connection(s) left open after the probe"


@pytest.mark.parametrize(
    ("mode", "tls"), [("handshake", False), ("status", True), ("headers", True), ("body", True)]
)
def test_a_kubernetes_probe_against_a_trickling_api_server_ends_by_its_deadline(
    mode, tls, trickle, tls_material, deadline_timeouts
):
    server = trickle(mode, tls=tls)
    conn = k8s_connection(server.url, tls_material[0])
    outcome, elapsed = timed(check_reachability, conn)
    assert (outcome.ok, outcome.error_class) == (False, "timeout"), outcome
    assert elapsed < TOTAL + MARGIN, f"the probe took {elapsed:.2f}s (deadline {TOTAL}s)"
    assert server.accepted >= 1
    assert server.wait_closed(1.5), f"{server.open} connection(s) left open after the probe"


def test_a_kubernetes_answer_whose_body_arrives_in_two_pieces_is_read_whole(
    tls_material, deadline_timeouts
):
    """Not hostile at all: a correct /version (and namespace) whose body arrives in two
    pieces 0.2 s apart, well within the deadline, as a body split over TCP segments or TLS
    records does. The probe must read the whole body (up to MAX_BODY), not the first piece."""
    ca, cert, key = tls_material
    routes = {
        "/version": json.dumps(
            {"major": "1", "minor": "31", "gitVersion": "v1.31.2", "platform": "linux/amd64"}
        ).encode(),
        "/livez": b"ok",
        "/api/v1/namespaces/kube-system": json.dumps(
            {"kind": "Namespace", "metadata": {"name": "kube-system", "uid": "uid-split"}}
        ).encode(),
    }
    with SplitBodyServer(routes, tls=(cert, key)) as server:
        outcome = check_reachability(k8s_connection(server.url, ca))
    assert outcome.ok, outcome
    assert outcome.metadata["version"] == "v1.31.2"
    assert outcome.metadata["cluster_id"] == "uid-split"


def test_a_prometheus_build_info_that_arrives_in_two_pieces_is_read_whole(deadline_timeouts):
    routes = {
        "/-/ready": b"Prometheus Server is Ready.\n",
        "/api/v1/status/buildinfo": GOOD_BUILDINFO,
    }
    with SplitBodyServer(routes) as server:
        outcome = check_reachability(Connection(name="p", kind="prometheus", url=server.url))
    assert outcome.ok, outcome
    assert outcome.metadata.get("version") == "2.53.0", outcome.metadata


@pytest.mark.parametrize(("mode", "tls"), [("handshake", False), ("headers", True)])
def test_a_slot_is_free_only_once_its_probe_has_truly_ended(
    mode, tls, trickle, tls_material, settings, deadline_timeouts
):
    """One slot, a trickling cluster first and a healthy one second: the healthy probe gets
    the slot once the first has ended (so its own deadline is whole and it succeeds), the
    batch lasts about one deadline, and nothing of the first probe outlives the batch."""
    settings.PROBE_CONCURRENCY = 1
    server = trickle(mode, tls=tls)
    before = hostile_threads_excluded()
    with FakeKubernetesAPI(tokens={TOKEN: "admin"}) as api:
        batch = [
            k8s_connection(server.url, tls_material[0]),
            k8s_connection(api.url, api.ca_pem),
        ]
        (slow, healthy), elapsed = timed(probe_many, batch)
    assert (slow.ok, slow.error_class) == (False, "timeout"), slow
    assert healthy.ok, healthy
    assert healthy.metadata["version"] == api.git_version
    assert elapsed < TOTAL + MARGIN, f"the batch took {elapsed:.2f}s: more than one deadline"
    # the first probe's socket is closed by the client, not left to the server
    assert server.wait_closed(1.0), f"{server.open} trickle connection(s) outlived the batch"

    def leftover():
        return {
            t for t in hostile_threads_excluded() - before if t.is_alive() and "Dummy" not in t.name
        }

    # the fake API's handler threads end a moment after their connection does
    deadline = time.monotonic() + 2
    while leftover() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leftover(), f"threads left behind by the batch: {leftover()}"


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["headers", "body"])
def test_a_scrape_of_a_trickling_prometheus_ends_bounded(
    mode, trickle, make_connection, deadline_timeouts
):
    server = trickle(mode)
    with FakePrometheus() as healthy:
        slow = make_connection(Status.CONNECTED, kind="prometheus", url=server.url)
        good = make_connection(Status.CONNECTED, kind="prometheus", url=healthy.url)
        stats, elapsed = timed(scrape.scrape_connected)
    # each request is bounded by the total timeout and a whole scrape by four of them
    assert elapsed < 4 * TOTAL + MARGIN, f"the scrape took {elapsed:.2f}s"
    assert (stats["scraped"], stats["failed"]) == (1, 1), stats
    assert MetricSample.objects.filter(connection=good).exists()
    assert not MetricSample.objects.filter(connection=slow).exists()
    assert server.wait_closed(1.5), f"{server.open} connection(s) left open after the scrape"


@pytest.mark.django_db
def test_a_scrape_whose_answers_arrive_in_two_pieces_reads_them_whole(
    make_connection, deadline_timeouts
):
    """A correct Prometheus whose JSON bodies arrive in two pieces 0.2 s apart."""
    routes = {path: body for path, body in SCRAPE_ANSWERS.items()}
    routes["/api/v1/status/buildinfo"] = GOOD_BUILDINFO
    with SplitBodyServer(routes) as server:
        conn = make_connection(Status.CONNECTED, kind="prometheus", url=server.url)
        stats = scrape.scrape_connected()
    assert (stats["scraped"], stats["failed"]) == (1, 0), stats
    conn.refresh_from_db()
    assert conn.metadata.get("version") == "2.53.0"
    samples = dict(MetricSample.objects.filter(connection=conn).values_list("name", "value"))
    assert samples == {"targets_up": 1, "targets_down": 1, "active_targets": 2, "series": 42}


def test_discovery_tasks_have_soft_and_hard_time_limits():
    task = tasks.discover_cluster
    assert task.soft_time_limit == django_settings.DISCOVERY_TIME_LIMIT
    assert task.time_limit and task.time_limit > task.soft_time_limit
    for name in ("probe_batch", "scrape_connected", "discover_clusters", "dispatch_due_probes"):
        each = getattr(tasks, name)
        assert each.soft_time_limit and each.time_limit > each.soft_time_limit, name


@pytest.fixture
def saved_cluster(owner, make_connection):
    names = itertools.count(1)

    def make(url, ca_pem, token=TOKEN, name=None, **metadata):
        credential = Credential(
            name=f"token {next(names)}",
            kind="bearer_token",
            owner=owner,
            endpoints=[origin_of(url)],
        )
        credential.set_secret({"token": token})
        credential.save()
        return make_connection(
            Status.CONNECTED,
            name=name or f"cluster-{next(names)}",
            kind="kubernetes",
            url=url,
            credential=credential,
            metadata={"certificate_authority_data": encode_ca(ca_pem), **metadata},
        )

    return make


@pytest.mark.django_db
def test_a_soft_time_limit_mid_list_is_a_recorded_error_and_writes_nothing(
    trickle, tls_material, saved_cluster
):
    """What the worker's soft limit does, raised here by a timer in this (the main) thread
    while discovery is blocked reading a trickled list."""
    server = trickle("headers", tls=True)
    cluster = saved_cluster(server.url, tls_material[0], cluster_id="uid-of-the-cluster")
    connections_before = Connection.all_objects.count()

    def soft_limit(signum, frame):
        raise SoftTimeLimitExceeded()

    # the client imports its API classes on first use (1-2 s of pydantic models): done before
    # the timer, or a test run alone is stopped inside the import, not the read
    assert discovery.k8s.AppsV1Api and discovery.k8s.CoreV1Api
    previous = signal.signal(signal.SIGALRM, soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 1.5)
    try:
        report, elapsed = timed(discovery.discover_cluster, cluster)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert elapsed < 1.5 + MARGIN
    assert server.accepted >= 1  # it was blocked on the trickling server, not elsewhere
    assert "DISCOVERY_TIME_LIMIT" in report.error
    assert report.rows_written == 0 and not report.created
    cluster.refresh_from_db()
    assert "DISCOVERY_TIME_LIMIT" in cluster.metadata["discovery_error"]
    assert not DiscoveredResource.objects.exists()
    assert Connection.all_objects.count() == connections_before
    assert server.wait_closed(2.0), f"{server.open} connection(s) left open by discovery"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_ends_discovery_of_a_trickling_cluster_at_its_soft_limit(
    trickle, tls_material, saved_cluster, workers
):
    """A real worker (2 processes) with DISCOVERY_TIME_LIMIT=3, sent ``discover_clusters`` as
    beat sends it: it queues one pass per connected cluster (in name order), two over
    trickling API servers and one over a healthy cluster. The two trickled passes take both
    processes; each ends at the soft limit with the error recorded and nothing written, and
    the healthy pass queued behind them runs as soon as a process is free."""
    limit = 3
    worker = workers(queues="celery,discovery", beat=False, DISCOVERY_TIME_LIMIT=str(limit))
    servers = [trickle("headers", tls=True) for _ in range(2)]
    slow = [
        saved_cluster(server.url, tls_material[0], name=f"a-slow-{i}", cluster_id=f"uid-{i}")
        for i, server in enumerate(servers)
    ]

    def error_of(cluster):
        return Connection.objects.get(pk=cluster.pk).metadata.get("discovery_error") or ""

    with FakeKubernetesAPI(tokens={TOKEN: "admin"}) as api:
        api.add_namespace("monitoring")
        api.add_service("monitoring", "prometheus", {"app": "prometheus"}, [9090])
        healthy = saved_cluster(api.url, api.ca_pem, name="z-healthy")
        sent = time.monotonic()
        # the worker queues the passes itself, with its own limits (a sender stamps its own)
        tasks.discover_clusters.apply_async(queue="celery")
        wait_until(
            lambda: all("DISCOVERY_TIME_LIMIT" in error_of(c) for c in slow),
            limit + 10,
            0.05,
            message=worker.log,
        )
        ended = time.monotonic() - sent
        wait_until(
            lambda: Connection.objects.get(pk=healthy.pk).metadata.get("cluster_id"),
            10,
            0.05,
            message=worker.log,
        )
        freed = time.monotonic() - sent
    assert all(server.accepted >= 1 for server in servers)  # both passes reached the trickle
    assert ended < limit + 3, f"the trickled passes ended after {ended:.1f}s (limit {limit}s)"
    assert freed < limit + 5, f"the next pass waited {freed:.1f}s for a free process"
    assert freed > limit - 0.5  # it really was queued behind the two trickled passes
    assert "Soft time limit" in worker.log(), worker.log()
    assert "Hard time limit" not in worker.log()
    assert not DiscoveredResource.objects.filter(cluster__in=slow).exists()
    assert DiscoveredResource.objects.filter(cluster=healthy).exists()
    assert error_of(healthy) == ""
    for server in servers:
        assert server.wait_closed(3.0), f"{server.open} connection(s) left open by the worker"


# --------------------------------------------------------------------------------------------
# 2. Isolation: values sanitised before any write; a failed bulk write falls back to rows.


def _results(conn) -> int:
    return ProbeResult.objects.filter(connection_id=conn.pk).count()


def _run_one_batch(expected: int):
    token, ids = scheduling.claim_due(1000)
    assert len(ids) == expected
    return scheduling.run_batch(token, ids)


def _make_all_due():
    Connection.objects.update(next_probe_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_surrogate_and_nan_endpoint_costs_nothing_in_a_batch_of_healthy_ones(
    make_connection, monkeypatch
):
    with FakePrometheus() as prom:
        healthy = [
            make_connection(Status.CONNECTED, kind="prometheus", url=f"{prom.url}/good/{i}")
            for i in range(50)
        ]
        bad = make_connection(Status.CONNECTED, kind="prometheus", url=f"{prom.url}/bad")
        # the same values on the transition path (discovered -> registered)
        bad_new = make_connection(Status.DISCOVERED, kind="prometheus", url=f"{prom.url}/bad2")
        everyone = [*healthy, bad, bad_new]

        stats = _run_one_batch(len(everyone))
        assert (stats["applied"], stats["ok"], stats.get("broken", 0)) == (52, 52, 0), stats
        for conn in everyone:
            conn.refresh_from_db()
            assert conn.last_probe_at is not None and conn.last_probe_ok, conn.last_probe_error
            assert conn.probe_claim is None
            assert _results(conn) == 1
        assert healthy[0].metadata["version"] == "2.53.0"
        assert bad_new.status == Status.REGISTERED
        for conn in (bad, bad_new):
            version = conn.metadata["version"]
            version.encode("utf-8")  # storable: no lone surrogate left
            assert "\ud800" not in version
            assert "revision" not in conn.metadata  # NaN is no JSON value: dropped
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT metadata::text FROM connections_connection WHERE id IN (%s, %s)",
                [bad.pk, bad_new.pk],
            )
            stored = " ".join(row[0] for row in cursor.fetchall())
        assert "NaN" not in stored and "\\ud800" not in stored

        # The bulk write fails: every row is written one by one, none is lost.
        def bulk_fails(rows, claim):
            raise DataError("the bulk write is refused")

        monkeypatch.setattr(health, "_compare_and_set_many", bulk_fails)
        _make_all_due()
        stats = _run_one_batch(len(everyone))
        assert (stats["applied"], stats.get("broken", 0)) == (52, 0), stats
        for conn in everyone:
            previous = conn.last_probe_at
            conn.refresh_from_db()
            assert conn.last_probe_at > previous and conn.probe_claim is None
            assert _results(conn) == 2


@pytest.fixture
def poison_refused_by_the_database():
    """A CHECK constraint: PostgreSQL refuses any row whose metadata version is 'poison'."""
    with db.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE connections_connection ADD CONSTRAINT bounds_test_no_poison "
            "CHECK ((metadata->>'version') IS DISTINCT FROM 'poison')"
        )
    yield
    with db.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE connections_connection DROP CONSTRAINT IF EXISTS bounds_test_no_poison"
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_the_database_refuses_even_alone_costs_only_that_row(
    make_connection, poison_refused_by_the_database
):
    with FakePrometheus() as prom:
        healthy = [
            make_connection(Status.CONNECTED, kind="prometheus", url=f"{prom.url}/good/{i}")
            for i in range(50)
        ]
        bad = make_connection(Status.CONNECTED, kind="prometheus", url=f"{prom.url}/bad")
        poison = make_connection(Status.CONNECTED, kind="prometheus", url=f"{prom.url}/poison")
        poison_new = make_connection(
            Status.DISCOVERED, kind="prometheus", url=f"{prom.url}/poison2"
        )
        started = timezone.now()
        stats = _run_one_batch(53)
    # the bulk UPDATE fails on the poison row; the rows are then written one by one
    assert stats["broken"] == 2, stats
    assert stats["applied"] == 51, stats
    for conn in [*healthy, bad]:
        conn.refresh_from_db()
        assert conn.last_probe_ok and conn.probe_claim is None
        assert _results(conn) == 1
    for conn in (poison, poison_new):
        conn.refresh_from_db()
        assert conn.last_probe_at is None and _results(conn) == 0
        # released to the scheduler at once, not held for a lease
        assert conn.probe_claim is None and conn.next_probe_at <= timezone.now()
        assert conn.next_probe_at >= started
    assert poison_new.status == Status.DISCOVERED


# --------------------------------------------------------------------------------------------
# 3. A per-host concurrency cap spreads bursts.


def test_the_default_per_host_cap_is_twenty():
    assert django_settings.PROBE_PER_HOST_CONCURRENCY == 20


def test_a_hundred_probes_to_one_host_never_exceed_the_per_host_cap(settings):
    settings.PROBE_PER_HOST_CONCURRENCY = 20
    with CountingServer(delay=0.2) as server:
        batch = [Connection(name=f"c{i}", kind="http", url=f"{server.url}/{i}") for i in range(100)]
        outcomes = probe_many(batch)
    failed = [(i, o.summary) for i, o in enumerate(outcomes) if not o.ok]
    assert not failed, failed[:5]
    assert server.served == 100
    assert server.peak <= 20, f"the server saw {server.peak} requests at once"
    assert server.peak >= 10  # the cap spreads the burst; it does not serialise it


def test_a_tiny_backlog_server_answers_all_of_a_burst_of_150():
    """http.server.HTTPServer as it comes (one at a time, backlog 5) behind 150 connections:
    with the default cap and timeouts every probe succeeds."""
    with TinyBacklogServer() as server:
        batch = [Connection(name=f"c{i}", kind="http", url=f"{server.url}/{i}") for i in range(150)]
        outcomes, elapsed = timed(probe_many, batch)
    failed = [o.summary for o in outcomes if not o.ok]
    assert not failed, f"{len(failed)} of 150 failed in {elapsed:.1f}s, e.g. {failed[:3]}"
    assert server.served == 150


# --------------------------------------------------------------------------------------------
# 4. A killed worker's batch is probed again within a lease, nothing recorded twice.


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_batch_is_probed_again_within_a_lease_and_only_once(
    make_connection, workers, settings
):
    settings.PROBE_TICK = 1
    ensure_periodic_tasks()
    # a lease long enough that a loaded machine's pauses do not end it while renewed (every
    # lease / 3 s); the margin for the new worker's beat, dispatch and pool to start
    lease, tick, margin = 6, 1, 5.0
    with CountingServer(delay=12.0) as server:  # slower than the lease: renewal must hold it
        base = server.url
        conns = [
            make_connection(Status.CONNECTED, url=f"{base}/{i}", probe_interval=60)
            for i in range(5)
        ]
        env = {"PROBE_CLAIM_LEASE": str(lease), "PROBE_TIMEOUT": "15"}
        first = workers(**env)
        wait_until(lambda: server.served == 5, 30, 0.05, message=first.log)
        # longer than a lease while the batch is alive: renewed, so nobody probes them again. The
        # lease it started with has run out by ``lease_over``; a tick after that had its chance
        lease_over = time.monotonic() + lease
        wait_until(lambda: time.monotonic() >= lease_over, lease + 1, 0.05)
        first.wait_for_a_new_run(DISPATCH)
        assert server.served == 5, "a live batch's connections were claimed again"
        assert not ProbeResult.objects.exists()
        first.kill()  # every probe in flight
        killed = timezone.now()
        server.delay = 0.0

        second = workers(**env)
        ready = timezone.now()
        wait_until(
            lambda: ProbeResult.objects.values("connection").distinct().count() == 5,
            lease + tick + 15,
            0.1,
            message=second.log,
        )
        # two ticks after the results, every batch they sent ended: a duplicate would show now
        for _ in range(2):
            second.wait_for_a_new_run(DISPATCH)
        wait_until(
            lambda: (
                not Connection.objects.filter(
                    pk__in=[c.pk for c in conns], probe_claim__isnull=False
                ).exists()
            ),
            30,
            0.05,
            message=second.log,
        )
        served = server.served
    bound = max(killed + timedelta(seconds=lease), ready) + timedelta(seconds=tick + margin)
    for conn in conns:
        conn.refresh_from_db()
        assert conn.last_probe_ok and conn.status == Status.CONNECTED
        results = list(conn.probe_results.values_list("checked_at", flat=True))
        assert len(results) == 1, f"connection {conn.pk} recorded {len(results)} results"
        assert results[0] <= bound, (
            f"re-probed {(results[0] - killed).total_seconds():.1f}s after the kill "
            f"(worker ready after {(ready - killed).total_seconds():.1f}s, lease {lease}s)"
        )
    assert served == 10  # five probes lost with the worker, five again: none twice


# --------------------------------------------------------------------------------------------
# 5. The probe engine's review: the per-host cap outside the deadline, clocks that disagree, a
# batch stopped by its time limit.


class _SlowEndpoint(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    """A loopback HTTP server answering every GET after ``delay`` seconds (2 unless set)."""
    server = LoopbackHTTPServer(("127.0.0.1", 0), _SlowEndpoint)
    server.delay = 2.0
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_waiting_for_a_busy_host_is_not_that_hosts_timeout(slow_server, settings):
    """60 probes of one host that answers in 2 s, 20 at a time, with a 5 s deadline: the
    waiting happens before the deadline starts, so none times out."""
    settings.PROBE_PER_HOST_CONCURRENCY = 20
    settings.PROBE_TIMEOUTS = {"default": (1.0, 5.0), "kubernetes": (1.0, 5.0)}
    connections = [
        Connection(name=f"s{n}", kind="http", url=f"{slow_server.url}/{n}") for n in range(60)
    ]
    outcomes = probe_many(connections)
    assert all(o.ok for o in outcomes), {o.summary for o in outcomes if not o.ok}


@pytest.mark.django_db
def test_a_due_time_far_in_the_future_is_not_waited_for(make_connection, slow_server, settings):
    """A dispatcher whose clock runs ahead: the batch waits at most a tick."""
    settings.PROBE_TICK = 1
    slow_server.delay = 0
    conn = make_connection(Status.CONNECTED, url=slow_server.url)
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=timezone.now())
    token, ids = scheduling.claim_due(10)
    Connection.objects.filter(pk=conn.pk).update(
        probe_due_at=timezone.now() + timedelta(seconds=30)
    )
    started = time.monotonic()
    stats = scheduling.run_batch(token, ids)
    assert stats["applied"] == 1
    assert time.monotonic() - started < 4


@pytest.mark.django_db
def test_a_batch_stopped_by_its_time_limit_gives_its_rows_back(
    make_connection, slow_server, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    slow_server.delay = 4
    conns = [make_connection(Status.CONNECTED, url=f"{slow_server.url}/{n}") for n in range(5)]
    Connection.objects.update(next_probe_at=timezone.now())
    token, ids = scheduling.claim_due(10)
    real_join = threading.Thread.join
    calls = {"n": 0}

    def limit_hits(self, timeout=None):
        if self.name == "probe-loop":
            calls["n"] += 1
            if calls["n"] == 3:
                raise SoftTimeLimitExceeded()
        return real_join(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", limit_hits)
    with pytest.raises(SoftTimeLimitExceeded):
        scheduling.run_batch(token, ids)
    monkeypatch.setattr(threading.Thread, "join", real_join)
    assert not any(t.name == "probe-loop" and t.is_alive() for t in threading.enumerate())
    for conn in conns:
        conn.refresh_from_db()
        assert conn.probe_claim is None  # claimable again at once, not after a lease
        assert conn.next_probe_at <= timezone.now()


# --------------------------------------------------------------------------------------------
# 6. Found in review: one bad result does not block its batch.


@pytest.mark.django_db
def test_one_bad_result_does_not_block_its_batch(make_connection):
    bad = make_connection(Status.CONNECTED, name="bad")
    good = make_connection(Status.CONNECTED, name="good")
    token, ids = scheduling.claim_due(10)
    batch = {c.name: c for c in scheduling.load_claimed(token, ids)}
    weird = ProbeOutcome(
        ok=True, metadata={"version": float("nan"), "note": "a\x00b", "nested": {"x": 1}}
    )
    failed = ProbeOutcome(ok=False, error_class="http", error="bad \x00 byte")
    stats = apply_outcomes([(batch["bad"], weird), (batch["good"], failed)], claim=token)
    assert stats["applied"] == 2
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.metadata == {"note": "ab", "nested": "{'x': 1}"}
    assert good.last_probe_error == "http: bad  byte" and good.probe_claim is None
