"""What an operator's review of the probe engine found, each pinned: kubeconfigs parsed once
per secret, leases that survive a queue, metadata merged not overwritten, the per-host cap
outside the deadline, clocks that disagree, a batch stopped by its time limit, and a
credential edited while its probe is in flight."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
import yaml
from django.utils import timezone

from connections.choices import Status
from connections.metadata import merge_metadata
from connections.models import Connection
from connections.probing import scheduling
from connections.probing.outcomes import apply_outcomes
from connections.probing.probes import ProbeOutcome, probe_many
from connections.probing.probes import kubernetes as k8s_probe
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.kube_api import FakeKubernetesAPI
from tests.services import LoopbackHTTPServer

pytestmark = pytest.mark.django_db


class Slow(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def slow():
    server = LoopbackHTTPServer(("127.0.0.1", 0), Slow)
    server.delay = 2.0
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_one_kubeconfig_behind_many_connections_is_parsed_once(owner, monkeypatch):
    with FakeKubernetesAPI(tokens={"tok": "admin"}) as api:
        credential = Credential(name="kc", kind="kubeconfig", owner=owner)
        credential.set_secret({"kubeconfig": yaml.safe_dump(api.kubeconfig("tok"))})
        credential.save()
        parsed = []
        real = k8s_probe.parse_kubeconfig
        monkeypatch.setattr(
            k8s_probe, "parse_kubeconfig", lambda *a, **k: parsed.append(1) or real(*a, **k)
        )
        connections = [
            Connection(name=f"k{n}", kind="kubernetes", url=f"{api.url}/{n}", credential=credential)
            for n in range(20)
        ]
        outcomes = probe_many(connections)
    assert all(o.ok for o in outcomes), [o.summary for o in outcomes if not o.ok]
    assert len(parsed) == 1


def test_a_claimed_row_is_not_claimed_again_before_its_lease_runs_out(make_connection, settings):
    settings.PROBE_CLAIM_LEASE = 15
    conn = make_connection(Status.CONNECTED)
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=timezone.now())
    token, ids = scheduling.claim_due(10, horizon=5)
    assert ids == [conn.pk]
    # ten seconds later a tick whose horizon reaches past the lease's end claims nothing
    later = timezone.now() + timedelta(seconds=11)
    assert scheduling.claim_due(10, now=later, horizon=5)[1] == []
    # a batch that waited in the queue starts with a whole lease
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=timezone.now())
    scheduling.load_claimed(token, ids)
    conn.refresh_from_db()
    assert (conn.next_probe_at - timezone.now()).total_seconds() > 13


def test_a_probe_result_never_undoes_metadata_written_while_it_ran(make_connection):
    conn = make_connection(Status.CONNECTED, metadata={"cluster_id": "registered-uid"})
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=timezone.now())
    token, ids = scheduling.claim_due(10)
    (loaded,) = scheduling.load_claimed(token, ids)
    merge_metadata(Connection.objects.filter(pk=conn.pk), {"nodes": 5, "discovery_error": ""})
    outcome = ProbeOutcome(ok=True, metadata={"version": "v2", "cluster_id": "another-uid"})
    assert apply_outcomes([(loaded, outcome)], claim=token)["applied"] == 1
    conn.refresh_from_db()
    assert conn.metadata == {
        "cluster_id": "registered-uid",
        "nodes": 5,
        "discovery_error": "",
        "version": "v2",
    }


def test_waiting_for_a_busy_host_is_not_that_hosts_timeout(slow, settings):
    """60 probes of one host that answers in 2 s, 20 at a time, with a 5 s deadline: the
    waiting happens before the deadline starts, so none times out."""
    settings.PROBE_PER_HOST_CONCURRENCY = 20
    settings.PROBE_TIMEOUTS = {"default": (1.0, 5.0), "kubernetes": (1.0, 5.0)}
    connections = [Connection(name=f"s{n}", kind="http", url=f"{slow.url}/{n}") for n in range(60)]
    outcomes = probe_many(connections)
    assert all(o.ok for o in outcomes), {o.summary for o in outcomes if not o.ok}


def test_a_due_time_far_in_the_future_is_not_waited_for(make_connection, slow, settings):
    """A dispatcher whose clock runs ahead: the batch waits at most a tick."""
    settings.PROBE_TICK = 1
    slow.delay = 0
    conn = make_connection(Status.CONNECTED, url=slow.url)
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=timezone.now())
    token, ids = scheduling.claim_due(10)
    Connection.objects.filter(pk=conn.pk).update(
        probe_due_at=timezone.now() + timedelta(seconds=30)
    )
    started = time.monotonic()
    stats = scheduling.run_batch(token, ids)
    assert stats["applied"] == 1
    assert time.monotonic() - started < 4


def test_a_batch_stopped_by_its_time_limit_gives_its_rows_back(make_connection, slow, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    slow.delay = 4
    conns = [make_connection(Status.CONNECTED, url=f"{slow.url}/{n}") for n in range(5)]
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


def test_a_credential_saved_with_a_new_secret_drops_results_in_flight(make_connection, owner):
    credential = Credential(
        name="t", kind="bearer_token", owner=owner, endpoints=["http://127.0.0.1:1"]
    )
    credential.set_secret({"token": "old-token"})
    credential.save()
    conn = make_connection(Status.CONNECTED, credential=credential, consecutive_failures=2)
    Connection.objects.filter(pk=conn.pk).update(
        next_probe_at=timezone.now() + timedelta(minutes=5)
    )
    conn.refresh_from_db()
    version = conn.state_version
    credential = Credential.objects.get(pk=credential.pk)
    credential.set_secret({"token": "fixed-token"})
    credential.save()
    conn.refresh_from_db()
    assert conn.state_version == version + 1  # a probe that started with the old one: stale
    assert conn.consecutive_failures == 0
    assert conn.next_probe_at <= timezone.now()  # probed again with the new one at once
    # saving it unchanged touches nothing
    Credential.objects.get(pk=credential.pk).save()
    conn.refresh_from_db()
    assert conn.state_version == version + 1


def test_credential_bounds_are_those_it_was_saved_with():
    assert origin_of("http://127.0.0.1:1/x") == "http://127.0.0.1:1"
