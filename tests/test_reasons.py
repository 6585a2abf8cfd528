"""Why a probe failed, said so a person can act on it: each failure's class is set where it
happened, and each class has one sentence with a hint (connections/probing/reasons.py). The
probes below fail for real against local servers; the raw error stays in ``detail``."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connections.models import Connection
from connections.probing.probes import check_reachability
from connections.probing.probes.kubernetes import encode_ca
from connections.probing.reasons import explain, of_summary
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.hostile import server_tls_context
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert

pytestmark = pytest.mark.django_db

TOKEN = "reasons-token"


def said(connection: Connection):
    outcome = check_reachability(connection)
    assert not outcome.ok
    return outcome, explain(outcome.error_class, outcome.error, connection.url, outcome.status_code)


def http(url: str, kind: str = "http") -> Connection:
    return Connection(name="c", kind=kind, url=url)


class Answering(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"no")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A plain HTTP server on loopback answering ``server.status``; ``tls=...`` wraps it."""
    made = []

    def start(status=200, tls=None):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answering)
        httpd.status = status
        if tls:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        made.append(httpd)
        return httpd

    yield start
    for httpd in made:
        httpd.shutdown()
        httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_says_so_and_asks_whether_the_service_runs():
    port = closed_port()
    outcome, text = said(http(f"http://127.0.0.1:{port}/health"))
    assert outcome.error_class == "refused"
    assert text.sentence == (
        f"Nothing listens on 127.0.0.1:{port}: is the service running, on this port?"
    )
    assert text.title == "Connection refused"
    assert "Connect call failed" in text.detail or "111" in text.detail


@pytest.mark.parametrize(
    ("status", "sentence"),
    [
        (503, "answered 503 Service Unavailable: the service runs but is failing."),
        (500, "answered 500 Internal Server Error: the service runs but is failing."),
    ],
)
def test_a_failing_status_is_named_with_its_phrase(server, status, sentence):
    httpd = server(status)
    port = httpd.server_address[1]
    outcome, text = said(http(f"http://127.0.0.1:{port}/"))
    assert (outcome.error_class, outcome.status_code) == ("http", status)
    assert text.sentence == f"127.0.0.1:{port} {sentence}"


def test_a_refused_credential_says_to_check_or_renew_it(server):
    httpd = server(401)
    port = httpd.server_address[1]
    outcome, text = said(http(f"http://127.0.0.1:{port}/"))
    assert outcome.error_class == "auth"
    assert text.sentence == "127.0.0.1 refused the credential (HTTP 401): check it, or renew it."


def test_https_to_a_plain_http_port_asks_about_the_scheme(server):
    httpd = server(200)
    port = httpd.server_address[1]
    outcome, text = said(http(f"https://127.0.0.1:{port}/"))
    assert outcome.error_class == "tls"
    assert text.sentence == (
        f"127.0.0.1:{port} does not speak TLS: is it http:// rather than https://?"
    )


def test_a_certificate_no_trusted_authority_signed_says_so(server):
    _, cert, key = make_ca_and_cert()
    httpd = server(200, tls=server_tls_context(cert, key))
    port = httpd.server_address[1]
    outcome, text = said(http(f"https://127.0.0.1:{port}/"))
    assert outcome.error_class == "tls"
    assert text.sentence == (
        "The certificate of 127.0.0.1 is not signed by a trusted authority: trust its CA."
    )


def test_an_expired_certificate_says_to_renew_it():
    with FakeKubernetesAPI(tokens={TOKEN: "admin"}, tls=make_ca_and_cert(expired=True)) as api:
        credential = Credential(name="t", kind="bearer_token")
        credential.endpoints = [origin_of(api.url)]
        credential.set_secret({"token": TOKEN})
        connection = Connection(
            name="k",
            kind="kubernetes",
            url=api.url,
            credential=credential,
            metadata={"certificate_authority_data": encode_ca(api.ca_pem)},
        )
        outcome, text = said(connection)
    assert outcome.error_class == "tls"
    assert text.sentence == "The certificate of 127.0.0.1 has expired: renew it."


def test_a_name_that_does_not_resolve_says_to_check_it():
    outcome, text = said(http("http://no-such-host.invalid/"))
    assert outcome.error_class == "dns"
    assert text.sentence == (
        "no-such-host.invalid does not resolve: check the name, or the DNS the workers use."
    )


def test_an_address_outside_what_may_be_probed_is_not_sent_and_says_why():
    outcome, text = said(http("http://169.254.169.254/latest/meta-data/"))
    assert outcome.error_class == "bounds"
    assert text.sentence.startswith("Not probed: ") and "link-local" in text.sentence


def test_a_stored_summary_reads_as_the_same_sentence():
    """Rows store "class: text" (last_probe_error): read back, the same sentence."""
    text = of_summary("http", "http: server error (HTTP 502)", "https://api.example:8443/x")
    assert text.sentence == (
        "api.example:8443 answered 502 Bad Gateway: the service runs but is failing."
    )
    assert of_summary("", "something odd", "http://a/").sentence == "something odd"
    # IPv6 hosts keep their brackets; a URL without a port gets the scheme's
    assert explain("refused", "", "http://[::1]/").sentence.startswith(
        "Nothing listens on [::1]:80"
    )


def test_the_reason_of_a_transition_is_the_sentence_with_the_count(make_connection):
    from connections.choices import Status
    from connections.probing.outcomes import decide
    from connections.probing.probes import ProbeOutcome

    connection = make_connection(Status.CONNECTED, url="http://db.internal:5432/")
    connection.consecutive_failures = 2
    connection.failure_threshold = 3
    outcome = ProbeOutcome(ok=False, error_class="refused", error="cannot connect: [Errno 111]")
    decision = decide(connection, outcome)
    assert decision.target == Status.DISCONNECTED
    assert decision.reason == (
        "Nothing listens on db.internal:5432: is the service running, on this port?"
        " (3 failed probes in a row)"
    )
    assert decision.cause == "refused"
