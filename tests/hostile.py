"""Hostile servers on 127.0.0.1 for the bounds tests: they accept and then trickle a byte a
second forever, count how many requests they serve at once, or listen with a tiny backlog.

Nothing here binds or contacts anything but loopback.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

# What each mode sends at once, then what it trickles (cycled) one byte a second.
_STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
_HEADERS = _STATUS_LINE + b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
# A TLS record header (handshake, TLS 1.2, 16 KiB long) and the start of a ServerHello: a
# client waits for the rest of the record, which never comes.
_TLS_RECORD = b"\x16\x03\x03\x40\x00\x02\x00\x3f\xfc\x03\x03"
MODES = {
    # the status line itself, one byte a second
    "status": (b"", _STATUS_LINE + b"X-Trickle: " + b"a" * 64),
    # a valid status line at once, then a header that never ends
    "headers": (_STATUS_LINE, b"X-Trickle: " + b"a" * 64),
    # complete headers at once, then a body that never ends
    "body": (_HEADERS, b'{"data": "' + b"a" * 64),
    # no TLS at all: a TLS record trickled one byte a second (the handshake never ends)
    "handshake": (b"", _TLS_RECORD + b"\x00" * 64),
}


def server_tls_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    folder = tempfile.mkdtemp(prefix="hostile-tls-")
    try:
        cert, key = os.path.join(folder, "c.pem"), os.path.join(folder, "k.pem")
        with open(cert, "wb") as handle:
            handle.write(cert_pem)
        with open(key, "wb") as handle:
            handle.write(key_pem)
        context.load_cert_chain(cert, key)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return context


class TrickleServer:
    """Accepts TCP on 127.0.0.1 and trickles one byte a second, forever, on each connection.

    ``mode`` is one of MODES. With ``tls=(cert_pem, key_pem)`` the TLS handshake completes at
    once and the trickle is inside TLS; mode "handshake" speaks no TLS and trickles a TLS
    record instead. ``open`` counts the connections the server still holds: one ends when the
    client closes (or resets) it, seen within ~50 ms.
    """

    def __init__(
        self, mode: str = "headers", tls: tuple[bytes, bytes] | None = None, interval: float = 1.0
    ) -> None:
        self.prefix, self.trickle = MODES[mode]
        self.mode = mode
        self.interval = interval
        self.tls = server_tls_context(*tls) if tls else None
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        scheme = "https" if (tls or mode == "handshake") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.accepted = 0
        self.open = 0
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)
        self._acceptor.start()

    def __enter__(self) -> TrickleServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _accept(self) -> None:
        counter = itertools.count(1)
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
                self._sockets.add(sock)
            thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"hostile-conn-{next(counter)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        sock = raw
        try:
            if self.tls is not None:
                raw.settimeout(5)
                sock = self.tls.wrap_socket(raw, server_side=True)
            sock.settimeout(0.05)
            if self.prefix:
                sock.sendall(self.prefix)
                self.bytes_sent += len(self.prefix)
            trickle = itertools.cycle(self.trickle)
            next_send = time.monotonic()
            while not self._stop.is_set():
                try:
                    if not sock.recv(4096):  # the client closed its end
                        return
                except (TimeoutError, ssl.SSLWantReadError):
                    pass
                if time.monotonic() >= next_send:
                    sock.sendall(bytes([next(trickle)]))
                    self.bytes_sent += 1
                    next_send += self.interval
        except (OSError, ssl.SSLError, ValueError):
            return  # reset, broken pipe, a failed handshake: the connection is over
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(OSError):
                raw.close()
            with self._lock:
                self.open -= 1
                self._sockets.discard(raw)

    def wait_closed(self, timeout: float = 2.0) -> bool:
        """True once every accepted connection has been closed by its client."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.open == 0:
                return True
            time.sleep(0.02)
        return self.open == 0

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(2)
        for thread in self._threads:
            thread.join(2)


class _InBackground:
    """A loopback test server serving on a daemon thread; ``with`` shuts it down."""

    def _serve(self, name: str) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()
        self.server_close()


class _Counting(BaseHTTPRequestHandler):
    """Counts the requests in progress; each takes ``server.delay`` seconds."""

    def do_GET(self):  # noqa: N802
        server = self.server
        with server.lock:
            server.active += 1
            server.peak = max(server.peak, server.active)
            server.served += 1
        try:
            time.sleep(server.delay)
        finally:
            # done before answering: once the client has the answer it may send the next
            # request, and a count lowered after the write would see both at once
            with server.lock:
                server.active -= 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class CountingServer(_InBackground, ThreadingHTTPServer):
    """A threaded HTTP server that records the most requests it ever served at once."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, delay: float = 0.2) -> None:
        super().__init__(("127.0.0.1", 0), _Counting)
        self.delay = delay
        self.lock = threading.Lock()
        self.active = self.peak = self.served = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._serve("hostile-counting")


class _Plain(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.served += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class TinyBacklogServer(_InBackground, HTTPServer):
    """``http.server.HTTPServer`` as it comes: one request at a time, a listen backlog of 5."""

    request_queue_size = 5

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Plain)
        self.served = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._serve("hostile-backlog")


# Prometheus answers. The bad build info is raw JSON text: a lone surrogate escape and NaN,
# both accepted by Python's json, neither storable as they are.
BAD_BUILDINFO = b'{"status":"success","data":{"version":"\\ud800","revision":NaN}}'
POISON_BUILDINFO = b'{"status":"success","data":{"version":"poison","revision":"p"}}'
GOOD_BUILDINFO = b'{"status":"success","data":{"version":"2.53.0","revision":"abc123"}}'
SCRAPE_ANSWERS = {
    "/api/v1/query": b'{"status":"success","data":{"resultType":"vector","result":'
    b'[{"metric":{},"value":[0,"1"]},{"metric":{},"value":[0,"0"]}]}}',
    "/api/v1/targets": b'{"status":"success","data":{"activeTargets":[{},{}]}}',
    "/api/v1/status/tsdb": b'{"status":"success","data":{"headStats":{"numSeries":42}}}',
}


class _Prometheus(BaseHTTPRequestHandler):
    """Prometheus under any path prefix: /bad... answers BAD_BUILDINFO, /poison... the
    POISON one, the rest a good one."""

    def do_GET(self):  # noqa: N802
        path = self.path.split("?")[0]
        self.server.requests.append(path)
        if path.endswith("/-/ready"):
            body = b"Prometheus Server is Ready.\n"
        elif path.endswith("/api/v1/status/buildinfo"):
            if path.startswith("/bad"):
                body = BAD_BUILDINFO
            elif path.startswith("/poison"):
                body = POISON_BUILDINFO
            else:
                body = GOOD_BUILDINFO
        else:
            body = next((v for k, v in SCRAPE_ANSWERS.items() if path.endswith(k)), None)
            if body is None:
                self.send_error(404)
                return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class FakePrometheus(_InBackground, ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Prometheus)
        self.requests: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._serve("hostile-prometheus")


class _Split(BaseHTTPRequestHandler):
    """Answers ``server.routes[path]`` with a complete, correct response whose body is sent
    in two writes ``server.pause`` seconds apart (as a body split over TCP segments or TLS
    records arrives)."""

    def do_GET(self):  # noqa: N802
        path = self.path.split("?")[0]
        body = self.server.routes.get(path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        time.sleep(self.server.pause)
        self.wfile.write(body[half:])

    def log_message(self, *args):
        pass


class SplitBodyServer(_InBackground, ThreadingHTTPServer):
    """Serves ``routes`` (path -> body), each body in two pieces; over TLS with ``tls``."""

    daemon_threads = True

    def __init__(
        self,
        routes: dict[str, bytes],
        tls: tuple[bytes, bytes] | None = None,
        pause: float = 0.2,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Split)
        self.routes, self.pause = routes, pause
        self.tls = server_tls_context(*tls) if tls else None
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server_address[1]}"
        self._serve("hostile-split")

    def finish_request(self, request, client_address):
        if self.tls is not None:
            request.settimeout(5)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)
