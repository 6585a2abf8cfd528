"""How deliveries reach the network: behind the probes' address guard, in bounded wall time.

Webhooks (requests) and Apprise's plugins (requests, smtplib) open their sockets through
``urllib3.util.connection.create_connection`` or ``socket.create_connection``. While a delivery
runs inside ``guarded()``, both act, for that delivery, as a function that resolves
the name once, drops every address the guard refuses (link-local, outside
PROBE_ALLOWED_NETWORKS) and connects to an allowed address itself: there is no second lookup to
rebind. "That delivery" is a context variable, not a thread-local: Apprise sends on its own
worker threads, and it copies the caller's context into them, so the guard follows it there.
Every socket so opened is remembered, so ``Session.abort()`` can shut them all when the
delivery's deadline passes: a server that trickles bytes costs its deadline, not a worker.
"""

from __future__ import annotations

import contextvars
import socket
import threading
from contextlib import contextmanager, suppress
from typing import Any

import urllib3.util.connection as urllib3_connection

from connections.probes.transport import AddressRefused, address_refusal
from credentials.bounds import host_problem

_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "notify_session", default=None
)
_installed = False
_install_lock = threading.Lock()
_original_urllib3 = urllib3_connection.create_connection
_original_socket = socket.create_connection


class Session:
    """One delivery's sockets; ``abort`` shuts them from another thread."""

    def __init__(self, check: bool) -> None:
        self.check = check
        self.sockets: list[socket.socket] = []
        self.aborted = False
        self._lock = threading.Lock()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            if self.aborted:
                sock.close()
                raise TimeoutError("the delivery ran out of time")
            self.sockets.append(sock)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            for sock in self.sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _allowed_addresses(host: str, port: int) -> list[str]:
    problem = host_problem(host)
    if problem:
        raise AddressRefused(problem)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    allowed, refusals = [], []
    for info in infos:
        address = info[4][0]
        refusal = address_refusal(host, address)
        (refusals if refusal else allowed).append(refusal or address)
    if not allowed:
        raise AddressRefused(refusals[0] if refusals else f"cannot resolve {host}")
    return list(dict.fromkeys(allowed))


def _connect(original: Any, address: tuple, *args: Any, **kwargs: Any) -> socket.socket:
    session = _current.get()
    if session is None:
        return original(address, *args, **kwargs)
    host, port = address[0], address[1]
    targets = _allowed_addresses(host, port) if session.check else [host]
    error: Exception | None = None
    for target in targets:
        try:
            sock = original((target, port), *args, **kwargs)
        except OSError as exc:
            error = exc
            continue
        session.track(sock)
        return sock
    raise error or OSError(f"cannot connect to {host}")


def _urllib3_create_connection(address: tuple, *args: Any, **kwargs: Any) -> socket.socket:
    return _connect(_original_urllib3, address, *args, **kwargs)


def _socket_create_connection(address: tuple, *args: Any, **kwargs: Any) -> socket.socket:
    return _connect(_original_socket, address, *args, **kwargs)


def install() -> None:
    """Put the guarded functions in place (they act only on threads inside ``guarded()``)."""
    global _installed
    with _install_lock:
        if not _installed:
            urllib3_connection.create_connection = _urllib3_create_connection
            socket.create_connection = _socket_create_connection
            _installed = True


@contextmanager
def guarded(session: Session):
    """Run the block's connections through ``session`` (and its guard, when it checks)."""
    install()
    token = _current.set(session)
    try:
        yield session
    finally:
        _current.reset(token)
