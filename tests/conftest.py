import socket
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from django.conf import settings

from connections.models import Connection
from tests.services import LoopbackHTTPServer, UdpSink

# The shared fixtures, by area (tests/fixtures/): a test module names them, never imports them.
pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.notifications",
    "tests.fixtures.trust",
    "tests.fixtures.workers",
]


def pytest_collection_modifyitems(config, items):
    missing = {
        "postgres": not settings.TESTS_ON_POSTGRES,
        "redis": not settings.TESTS_WITH_REDIS,
    }
    for item in items:
        for marker, absent in missing.items():
            if absent and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"needs {marker} (outside CI only)"))


class _Endpoint(BaseHTTPRequestHandler):
    """Answers every GET with the status the server was told to give (200 by default)."""

    def do_GET(self):  # noqa: N802
        status = self.server.status
        # recorded before answering, so a test that looks as soon as the probe returns sees it
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        body = b'{"status": "ok"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_endpoint():
    """A real HTTP server on loopback; set ``.status`` to change its answer."""
    server = LoopbackHTTPServer(("127.0.0.1", 0), _Endpoint)
    server.status = 200
    server.requests = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_url():
    """A loopback URL nothing listens on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", password="pw-owner-123")


@pytest.fixture
def stranger(django_user_model):
    return django_user_model.objects.create_user("stranger", password="pw-stranger-123")


_counter = iter(range(1, 10**9))


@pytest.fixture
def make_connection(owner):
    """A connection created directly in a state (test set-up, as the (new) edges would)."""

    def make(status="registered", *, managed=False, kind="http", resume_status="", **extra):
        n = next(_counter)
        return Connection.objects.create(
            name=extra.pop("name", f"conn-{n}"),
            kind=kind,
            url=extra.pop("url", f"http://127.0.0.1:1/{n}"),
            status=status,
            managed=managed,
            owner=extra.pop("owner", owner),
            resume_status=resume_status,
            **extra,
        )

    return make


@pytest.fixture
def udp_sink():
    """A UDP socket on 127.0.0.1 that records the datagrams it receives (``.received``)."""
    sink = UdpSink()
    yield sink
    sink.close()


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback; ``.messages`` holds (recipients, content)."""
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    handler = Handler()
    with socket.socket() as sock:  # the controller checks its port by connecting to it
        sock.bind(("127.0.0.1", 0))
        handler.port = sock.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()
