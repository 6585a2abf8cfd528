"""The notifications' test kit: a signed-webhook receiver on loopback that records what it is
sent (and can answer slowly, endlessly or with any status), and the steps of a notification: a
connection going down and up as a probe would move it, and one beat tick of the notify task.
The fixtures built on it (``receiver``, ``webhook``) are in tests/fixtures/notifications.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from connections import lifecycle
from connections.choices import Status, Trigger
from notifications import delivery, routing
from tests.services import LoopbackHTTPServer


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        signature = self.headers.get("X-Meshplay-Signature", "")
        expected = "sha256=" + hmac.new(server.secret.encode(), body, hashlib.sha256).hexdigest()
        with server.lock:
            server.received.append(
                {
                    "body": json.loads(body),
                    "key": self.headers.get("X-Meshplay-Idempotency-Key"),
                    "signed": hmac.compare_digest(signature, expected),
                    "path": self.path,
                }
            )
        if server.trickle:  # a status line, then a header every 0.3 s, never the end
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(100):
                time.sleep(0.3)
                self.wfile.write(b"X-Slow: 1\r\n")
                self.wfile.flush()
            return
        status = server.status
        if server.endless:  # no length: the answer ends when the connection does
            self.send_response(status)
            self.end_headers()
            try:
                while server.written < 256 * 1024 * 1024:
                    self.wfile.write(b"y" * 65536)
                    server.written += 65536
            except OSError:
                pass
            finally:
                server.finished.set()
            return
        answer = server.answer.replace("{path}", self.path).encode()  # "{path}": echo it
        self.send_response(status)
        if server.location:
            self.send_header("Location", server.location)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


_ReceiverServer = LoopbackHTTPServer  # two workers' pools connect at once


def start_receiver() -> _ReceiverServer:
    """A receiver on loopback, serving on its own thread; ``shutdown`` and ``server_close``
    it when done."""
    server = _ReceiverServer(("127.0.0.1", 0), _Receiver)
    server.lock = threading.Lock()
    server.received, server.status, server.answer, server.trickle = [], 200, "ok", False
    server.secret, server.location, server.endless = "", "", False
    server.written, server.finished = 0, threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook/s3cr3t-path-token"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def down(conn, reason="unreachable after 3 consecutive failed probes (connect: refused)"):
    conn.refresh_from_db()
    return lifecycle.transition(conn, Status.DISCONNECTED, trigger=Trigger.PROBE, reason=reason)


def up(conn):
    conn.refresh_from_db()
    return lifecycle.transition(conn, Status.CONNECTED, trigger=Trigger.PROBE, reason="reachable")


def run(now=None):
    """One beat tick of the notify task, in process."""
    routing.route_events(now=now)
    routing.sweep_alerts(now=now)
    return delivery.deliver_due(now=now)
