"""The whole path for real: beat -> Redis -> Celery worker -> probes -> PostgreSQL."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connections import creating, lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection, ProbeResult
from tests.services import Prometheus, wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def status_of(conn):
    return Connection.all_objects.get(pk=conn.pk).status


def test_a_prometheus_connection_follows_reality(owner, workers, beat_every_second):
    prometheus = Prometheus().start()
    try:
        conn = creating.create_discovered_connection(
            name="prometheus",
            kind="prometheus",
            url=prometheus.url,
            identity="discovered|test-cluster/monitoring/prometheus:9090",
            owner=owner,
        )
        Connection.objects.filter(pk=conn.pk).update(probe_interval=1, failure_threshold=2)
        worker = workers()

        wait_until(lambda: status_of(conn) == Status.REGISTERED, 30, message=worker.log)
        conn = Connection.objects.get(pk=conn.pk)
        assert conn.metadata["version"].startswith("2.")
        lifecycle.transition(conn, Status.CONNECTED, trigger=Trigger.USER, user=owner)

        prometheus.stop()
        wait_until(lambda: status_of(conn) == Status.DISCONNECTED, 30, message=worker.log)
        prometheus.start()
        wait_until(lambda: status_of(conn) == Status.CONNECTED, 30, message=worker.log)
    finally:
        prometheus.close()

    history = list(conn.history.values_list("from_status", "to_status", "trigger"))
    assert history == [
        ("", Status.DISCOVERED, Trigger.DISCOVERY),
        (Status.DISCOVERED, Status.REGISTERED, Trigger.PROBE),
        (Status.REGISTERED, Status.CONNECTED, Trigger.USER),
        (Status.CONNECTED, Status.DISCONNECTED, Trigger.PROBE),
        (Status.DISCONNECTED, Status.CONNECTED, Trigger.PROBE),
    ]
    lost = conn.history.get(to_status=Status.DISCONNECTED)
    assert lost.reason.endswith("(2 failed probes in a row)")


class SlowEndpoint(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.seen.append(self.path)
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_a_worker_killed_mid_batch_loses_nothing(make_connection, workers, beat_every_second):
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowEndpoint)
    server.seen, server.delay = [], 4.0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    conns = [
        make_connection(Status.CONNECTED, url=f"{base}/{i}", probe_interval=60) for i in range(5)
    ]
    try:
        first = workers(PROBE_CLAIM_LEASE="3")
        wait_until(lambda: len(server.seen) == 5, 30, message=first.log)
        first.kill()  # mid-batch: every probe is in flight
        assert not ProbeResult.objects.exists()
        server.delay = 0

        second = workers(PROBE_CLAIM_LEASE="3")
        wait_until(
            lambda: ProbeResult.objects.values("connection").distinct().count() == 5,
            30,
            message=second.log,
        )
    finally:
        server.shutdown()
        server.server_close()
    for conn in conns:
        conn.refresh_from_db()
        assert conn.last_probe_ok and conn.status == Status.CONNECTED
        # probed once by the next round (interval 60 s): not twice
        assert conn.probe_results.count() == 1


def test_a_tick_claims_no_more_than_fits_beside_the_batches_still_queued(
    make_connection, broker, settings
):
    """Batches still waiting hold their claims: a tick that claimed them again when their
    lease ran out sent them twice, and the batch that finally ran found nothing of its own."""
    import redis

    from connections.tasks import dispatch_due_probes, queued

    settings.PROBE_BATCH_SIZE = 2
    settings.PROBE_BATCHES_PER_TICK = 3
    for _ in range(20):
        make_connection("connected")
    assert dispatch_due_probes() == 6  # no worker: three batches wait in the queue
    assert queued("probes") == 3
    assert dispatch_due_probes() == 0  # nothing fits beside them
    redis.Redis.from_url(broker).delete("probes")  # taken by a worker
    assert queued("probes") == 0
    assert dispatch_due_probes() == 6
