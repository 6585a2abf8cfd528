"""Each kind's probe against a real server speaking its protocol; probes never touch the DB."""

import base64
import socket
import threading
from http.server import ThreadingHTTPServer

import pytest

from connections.models import Connection
from connections.probing.probes import check_reachability, probe_many
from connections.probing.reasons import explain
from core.egress import refusal_for
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.helpers import FakeGrafana
from tests.services import Prometheus


@pytest.fixture(scope="module")
def prometheus():
    server = Prometheus().start()
    yield server
    server.close()


def connection(kind, url, credential=None, **metadata):
    if credential is not None:  # its owner bound it to this endpoint
        credential.endpoints = [origin_of(url)]
    return Connection(name="probe", kind=kind, url=url, credential=credential, metadata=metadata)


def credential(kind, **secret):
    cred = Credential(name="c", kind=kind)
    cred.set_secret(secret)
    return cred


@pytest.fixture
def silent_url():
    """Accepts TCP connections and never answers: a hung server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def fast_timeouts(settings):
    settings.PROBE_TIMEOUTS = {"default": (0.5, 1.0), "kubernetes": (0.5, 2.0)}


def test_prometheus_probe_reads_readiness_and_version(prometheus):
    outcome = check_reachability(connection("prometheus", prometheus.url))
    assert outcome.ok, outcome
    assert outcome.status_code == 200
    assert outcome.metadata["version"].startswith("2.")
    assert outcome.latency_ms > 0


def test_prometheus_probe_fails_when_prometheus_is_down(prometheus):
    prometheus.stop()
    try:
        outcome = check_reachability(connection("prometheus", prometheus.url))
    finally:
        prometheus.start()
    assert not outcome.ok
    assert outcome.error_class == "refused"  # nothing listens on its port


def test_http_probe_classifies_answers(http_endpoint):
    assert check_reachability(connection("http", http_endpoint.url)).ok
    http_endpoint.status = 503
    failed = check_reachability(connection("http", http_endpoint.url))
    assert (failed.ok, failed.error_class, failed.status_code) == (False, "http", 503)
    http_endpoint.status = 401
    auth = check_reachability(connection("http", http_endpoint.url))
    assert (auth.auth_failure, auth.status_code) == (True, 401)
    http_endpoint.status = 404  # the server answers: reachable
    assert check_reachability(connection("http", http_endpoint.url)).ok


def test_a_hung_server_times_out_within_the_bound(silent_url, fast_timeouts):
    outcome = check_reachability(connection("http", silent_url))
    assert (outcome.ok, outcome.error_class) == (False, "timeout")
    assert outcome.latency_ms < 2000


def test_a_port_nothing_listens_on_is_refused_and_said_so(dead_url):
    outcome = check_reachability(connection("http", dead_url))
    assert (outcome.ok, outcome.error_class) == (False, "refused")
    said = explain(outcome.error_class, outcome.error, dead_url, outcome.status_code)
    host_port = dead_url.split("://", 1)[1].rstrip("/")
    assert said.sentence == f"Nothing listens on {host_port}: is the service running, on this port?"
    assert "111" in said.detail or "refused" in said.detail.lower()  # the raw text kept


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ],
)
def test_link_local_metadata_addresses_are_refused_without_any_traffic(url):
    outcome = check_reachability(connection("http", url))
    assert (outcome.ok, outcome.error_class) == (False, "bounds")
    assert "link-local" in outcome.error


def test_link_local_refusal_can_be_lifted_by_a_setting(settings):
    settings.PROBE_ALLOWED_NETWORKS = []
    settings.PROBE_ALLOW_LINK_LOCAL = True
    assert refusal_for("http://169.254.169.254/") is None
    settings.PROBE_ALLOW_LINK_LOCAL = False
    assert refusal_for("http://169.254.169.254/")
    assert refusal_for("http://127.0.0.1:1/") is None


def test_remote_provider_probe_sends_the_token(http_endpoint):
    conn = connection(
        "remote_provider",
        http_endpoint.url + "/api/registration",
        credential("bearer_token", token="provider-token-1"),
    )
    assert check_reachability(conn).ok
    assert http_endpoint.requests[-1] == ("/api/registration", "Bearer provider-token-1")


@pytest.fixture
def grafana_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_grafana_probe_checks_health_and_the_credential(grafana_url):
    basic = credential("basic_auth", username="admin", password="grafana-pw")
    outcome = check_reachability(connection("grafana", grafana_url, basic))
    assert outcome.ok and outcome.metadata == {"version": "11.2.0"}
    api_key = credential("api_key", key="glsa_testkey")
    assert check_reachability(connection("grafana", grafana_url, api_key)).ok
    wrong = credential("basic_auth", username="admin", password="nope")
    outcome = check_reachability(connection("grafana", grafana_url, wrong))
    assert (outcome.ok, outcome.error_class) == (False, "auth")


def test_probes_run_concurrently_and_keep_their_order(http_endpoint, silent_url, fast_timeouts):
    conns = [connection("http", silent_url) for _ in range(20)]
    conns.insert(3, connection("http", http_endpoint.url))
    outcomes = probe_many(conns, concurrency=50)
    assert [o.ok for o in outcomes] == [i == 3 for i in range(21)]
    # 20 hung servers in parallel cost one timeout, not twenty
    assert max(o.latency_ms for o in outcomes) < 2000


def test_the_allow_list_refuses_every_address_outside_it(settings):
    """A literal address is judged before any traffic; a name by the addresses it resolves to
    (the probes' resolver hands the client only those it checked)."""
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert refusal_for("http://127.0.0.1:9/") is None
    assert refusal_for("http://localhost:9/") is None
    assert "outside PROBE_ALLOWED_NETWORKS" in refusal_for("http://10.1.2.3/")
    unresolvable = check_reachability(connection("http", "http://example.invalid/"))
    assert (unresolvable.ok, unresolvable.error_class) == (False, "dns")
    assert "resolve" in unresolvable.error
    outcome = check_reachability(connection("http", "http://192.0.2.7/"))
    assert (outcome.ok, outcome.error_class) == (False, "bounds")


@pytest.mark.django_db
def test_a_basic_auth_password_beyond_latin_1_is_sent_as_utf8_not_quoted(
    json_echo, make_connection
):
    credential = Credential(name="b", kind="basic_auth", endpoints=[origin_of(json_echo.url)])
    credential.set_secret({"username": "admin", "password": "pässwörd€-CANARY"})
    conn = Connection(name="b", kind="http", url=json_echo.url, credential=credential)
    outcome = check_reachability(conn)
    assert outcome.ok, outcome.summary
    sent = json_echo.seen[-1][1]
    assert base64.b64decode(sent.split()[1]).decode() == "admin:pässwörd€-CANARY"
