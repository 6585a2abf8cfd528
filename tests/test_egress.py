"""The egress guard at the socket layer (core.egress): inside ``guarded``, every connect and
datagram goes only to an address the rule allows, whatever the library or protocol; sockets are
shut at the deadline (TLS ones too); ``requests`` follows no redirect and reads a bounded body.
Real sockets and servers on loopback; 127.0.0.2 stands for an address outside the allowed
networks."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests

from core.egress import AddressRefused, Session, guarded, refusal_for
from tests.kube_api import make_ca_and_cert
from tests.services import LoopbackHTTPServer, UdpSink, serving

ALLOWED_ONLY_127_0_0_1 = ["127.0.0.1/32", "::1/128"]


@pytest.fixture
def udp_listener():
    """A UDP socket on 127.0.0.2: outside the networks these tests allow."""
    sink = UdpSink("127.0.0.2")
    yield sink
    sink.close()


def _send_datagram(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.sendto(b"hello", ("127.0.0.2", port))


def _received(listener, count: int = 1, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if len(listener.received) >= count:
            return True
        time.sleep(0.01)
    return False


def test_a_datagram_to_a_refused_address_never_leaves(udp_listener, settings):
    settings.PROBE_ALLOWED_NETWORKS = ALLOWED_ONLY_127_0_0_1
    port = udp_listener.port
    with guarded(Session()), pytest.raises(AddressRefused, match="outside PROBE_ALLOWED"):
        _send_datagram(port)
    # the control: the same datagram, unguarded, arrives; so the refusal above was the guard's
    _send_datagram(port)
    assert _received(udp_listener)
    assert udp_listener.received == [b"hello"]


def test_a_datagram_to_an_allowed_address_goes(udp_listener, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with guarded(Session()):
        _send_datagram(udp_listener.port)
    assert _received(udp_listener)


def test_the_metadata_address_is_refused_for_udp_and_tcp(settings):
    settings.PROBE_ALLOWED_NETWORKS = []
    with guarded(Session()):
        with pytest.raises(AddressRefused, match="link-local metadata"):
            _send_to(("169.254.169.254", 514))
        with pytest.raises(AddressRefused, match="link-local metadata"):
            socket.create_connection(("169.254.169.254", 80), timeout=1)


def _send_to(address):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.sendto(b"x", address)


def test_a_connect_by_name_is_refused_but_a_resolved_one_is_checked(http_endpoint):
    port = http_endpoint.server_address[1]
    with guarded(Session()):
        with socket.socket() as sock, pytest.raises(AddressRefused, match="is a name"):
            sock.connect(("localhost", port))
        # socket.create_connection resolves first: the address it connects to is checked
        socket.create_connection(("localhost", port), timeout=2).close()


def test_unix_sockets_are_refused_inside_the_guard(tmp_path):
    refused = pytest.raises(AddressRefused, match="only internet addresses")
    with guarded(Session()), socket.socket(socket.AF_UNIX) as sock, refused:
        sock.connect(str(tmp_path / "s"))


def test_outside_the_guard_nothing_is_checked(udp_listener, settings):
    settings.PROBE_ALLOWED_NETWORKS = ALLOWED_ONLY_127_0_0_1
    _send_datagram(udp_listener.port)
    assert _received(udp_listener)


def test_the_guard_follows_threads_that_copy_the_context(udp_listener, settings):
    """Apprise sends on its own pool with a copy of the caller's context."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    settings.PROBE_ALLOWED_NETWORKS = ALLOWED_ONLY_127_0_0_1
    port = udp_listener.port
    with guarded(Session()), ThreadPoolExecutor(1) as pool:
        future = pool.submit(contextvars.copy_context().run, _send_datagram, port)
        with pytest.raises(AddressRefused):
            future.result()
    assert udp_listener.received == []  # a refused datagram is never sent: nothing to wait for


# --- deadlines: TLS included ------------------------------------------------------------------


class _Trickle(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            self.server.cut.set()

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_trickler():
    ca, cert, key = make_ca_and_cert()
    folder = Path(tempfile.mkdtemp(prefix="trickle-"))
    (folder / "ca.pem").write_bytes(ca)
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(key)
    server = LoopbackHTTPServer(("127.0.0.1", 0), _Trickle)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.cut = threading.Event()
    server.url = f"https://127.0.0.1:{server.server_address[1]}/"
    server.ca = str(folder / "ca.pem")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_tls_answer_that_trickles_ends_at_the_deadline(tls_trickler):
    started = time.monotonic()
    with guarded(Session(), deadline=1.0), pytest.raises(requests.RequestException):
        requests.get(tls_trickler.url, verify=tls_trickler.ca, timeout=30)
    assert time.monotonic() - started < 10  # the answer would take 5.5 hours
    assert tls_trickler.cut.wait(10), "the server never saw the connection shut"


# --- requests inside the guard: no redirect, a bounded body ----------------------------------


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.paths.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/landed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/endless":
            self.send_response(200)
            self.end_headers()  # no length: the body ends when the connection does
            chunk = b"y" * 65536
            try:
                while self.server.written < 256 * 1024 * 1024:
                    self.wfile.write(chunk)
                    self.server.written += len(chunk)
            except OSError:
                pass
            finally:
                self.server.done.set()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def answers():
    with serving(_Answers, paths=[], written=0, done=threading.Event()) as server:
        yield server


def test_requests_follows_no_redirect_inside_the_guard(answers):
    with guarded(Session()):
        response = requests.get(f"{answers.url}/redirect", timeout=5)
    assert response.status_code == 302
    assert answers.paths == ["/redirect"]
    # outside the guard requests behaves as it always does
    assert requests.get(f"{answers.url}/redirect", timeout=5).status_code == 200
    assert answers.paths[-1] == "/landed"


def test_an_endless_answer_is_read_only_up_to_the_bound(answers):
    with guarded(Session(max_body=4096)):
        response = requests.get(f"{answers.url}/endless", timeout=5)
    assert len(response.content) == 4096
    # the connection was dropped: the server could write only what the socket buffers hold
    assert answers.done.wait(10)
    assert answers.written < 64 * 1024 * 1024


@pytest.mark.parametrize(
    "url",
    ["http://[::ffff:169.254.169.254]/", "http://[::ffff:a9fe:a9fe]/", "http://[fe80::1]/"],
)
def test_disguised_link_local_addresses_are_refused(url):
    assert refusal_for(url)
