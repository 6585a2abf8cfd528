"""Which addresses this server may contact, and the guard that holds every blocking sender to it.

The rule (``address_refusal``): never the link-local metadata service (unless
``PROBE_ALLOW_LINK_LOCAL``), and only ``PROBE_ALLOWED_NETWORKS`` when that is set. Probes apply
it in their resolver (``connections.probing.probes.transport``); everything else that sends from a
thread (notifications, discovery) runs inside ``guarded(session)``, where it is enforced at the
socket layer by an audit hook (PEP 578) that sees every ``connect``, ``sendto`` and ``sendmsg``
whatever the library or the protocol, UDP included:

- only internet sockets, and only to a literal address the rule allows: a name given to
  ``connect`` would be resolved again out of sight, so it is refused (every client we use
  resolves first and connects to the address, which is then the one checked: no rebinding);
- every socket is tracked, so ``Session.abort`` can shut them all when the sender's deadline
  passes (a receiver that trickles bytes costs its deadline, not a worker);
- ``requests`` follows no redirect, takes no proxy or ``.netrc`` from the environment, and reads
  at most ``Session.max_body`` bytes of an answer.

Outside ``guarded`` the hook returns at once: it costs a set lookup per audited event.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")
_LABELS = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$")

DEFAULT_MAX_BODY = 64 * 1024


class AddressRefused(OSError):
    """The guard refused an address (or every address of a host); the text says why."""


def host_problem(host: str) -> str | None:
    """Why ``host`` (as urlsplit gives it) is not one every client reads the same way, or None.

    Only ASCII names and plain IP addresses: a non-ASCII name is encoded differently by
    different IDNA codecs (``ß`` is ``ss`` to one and ``xn--…`` to another), and ``%`` is
    decoded into the name by some clients and not by others; either would let the checked
    host and the contacted host differ."""
    if not host:
        return "the URL has no host"
    if "%" in host:
        return "a host may not contain '%'"
    if not host.isascii():
        return "write the host in ASCII (its punycode form, xn--…)"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if len(host) > 253 or not _LABELS.match(host.lower()):
        return "the host is not a valid name or address"
    return None


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def address_refusal(host: str, address: str) -> str | None:
    """Why ``address`` (which ``host`` resolved to) may not be contacted, or None."""
    try:
        ip = _ip(address)
    except ValueError:
        return f"{host} resolved to something that is not an address"
    metadata = ip.is_link_local or ip in _LINK_LOCAL_V4 or ip == _METADATA_V6
    if metadata and not settings.PROBE_ALLOW_LINK_LOCAL:
        return f"{host} is the link-local metadata address {ip}, which is refused"
    if settings.PROBE_ALLOWED_NETWORKS:
        networks = [ipaddress.ip_network(net) for net in settings.PROBE_ALLOWED_NETWORKS]
        if not any(ip.version == n.version and ip in n for n in networks):
            return f"{host} ({ip}) is outside PROBE_ALLOWED_NETWORKS"
    return None


def host_refusal(host: str) -> str | None:
    """What can be said of a host before any lookup: its form, and a literal address (a name
    is checked on every address it resolves to, when it is contacted)."""
    problem = host_problem(host)
    if problem:
        return problem
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return address_refusal(host, host)


def url_refusal(url: str) -> str | None:
    """What can be said of an http(s) URL before any lookup: scheme, parse, a literal address."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises for a bad port)
    except ValueError:
        return "the URL cannot be parsed"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs are probed"
    return host_refusal(host)


def refusal_for(url: str) -> str | None:
    """``url_refusal``, then every address the host resolves to now: a clear early answer for
    blocking callers (the socket guard still checks the address actually contacted)."""
    refusal = url_refusal(url)
    if refusal:
        return refusal
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return None  # the client itself reports the name error
    for address in addresses:
        refusal = address_refusal(host, address)
        if refusal:
            return refusal
    return None


class Session:
    """One sender's sockets under the guard (``check``: the address rule applies; email to the
    operator's own server does not need it). ``abort`` shuts them from another thread."""

    def __init__(self, check: bool = True, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.check = check
        self.max_body = max_body
        self.aborted = False
        self._handles: list[socket.socket] = []
        self._lock = threading.Lock()
        self._names = threading.local()  # the name each thread looked up last, for messages

    def looked_up(self, host: Any) -> None:
        self._names.last = host if isinstance(host, str) else None

    def name_of(self, address: str) -> str:
        name = getattr(self._names, "last", None)
        return name if name and name != address else address

    def track(self, sock: socket.socket) -> None:
        """Keep a duplicate of the socket's descriptor: TLS wrapping detaches the original
        object, and a shutdown through the duplicate still ends the connection."""
        with self._lock:
            if self.aborted:
                raise TimeoutError("the sender ran out of time")
            with suppress(OSError):
                self._handles.append(socket.socket(fileno=os.dup(sock.fileno())))

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            for handle in self._handles:
                with suppress(OSError):
                    handle.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            with suppress(OSError):
                handle.close()


_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "egress_session", default=None
)
_SOCKET_EVENTS = frozenset(
    {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"}
)
_INET = (socket.AF_INET, socket.AF_INET6)
_installed = False
_install_lock = threading.Lock()


def _audit(event: str, args: tuple) -> None:
    if event not in _SOCKET_EVENTS:
        return
    session = _current.get()
    if session is None:
        return
    if event == "socket.getaddrinfo":
        session.looked_up(args[0])
        return
    sock, address = args[0], args[1]
    if address is None:  # sendmsg on a connected socket: its connect was checked
        return
    if session.check:
        if getattr(sock, "family", None) not in _INET:
            raise AddressRefused("only internet addresses may be contacted from here")
        host = str(address[0])
        try:
            ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            raise AddressRefused(
                f"{host[:100]} is a name: it is contacted only by an address the guard checked"
            ) from None
        refusal = address_refusal(session.name_of(host), host)
        if refusal:
            raise AddressRefused(refusal)
    if event == "socket.connect" or session.aborted:
        session.track(sock)


def _bounded_send(original: Any):
    """``requests.Session.send`` inside ``guarded``: no redirect followed, the body read up to
    the session's bound (the rest is dropped with the connection)."""

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        session = _current.get()
        if session is None:
            return original(self, request, **kwargs)
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        response = original(self, request, **kwargs)
        try:
            body = response.raw.read(session.max_body + 1, decode_content=True) or b""
        except Exception as exc:  # cut short (the deadline's abort included), or malformed
            from requests.exceptions import ConnectionError

            raise ConnectionError(f"the answer was cut short: {type(exc).__name__}") from None
        finally:
            response.close()
        response._content = body[: session.max_body]
        response._content_consumed = True
        return response

    return send


def _no_environment(original: Any):
    """``requests.Session.request`` inside ``guarded``: no proxy from the environment and no
    ``.netrc`` (a proxy would be the only address the guard sees, and it would receive what is
    meant for the target)."""

    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _current.get() is not None:
            self.trust_env = False
        return original(self, *args, **kwargs)

    return request


def install() -> None:
    """Add the audit hook and the bounded ``requests`` send, once per process (the hook acts
    only inside ``guarded``)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import requests

        requests.Session.request = _no_environment(requests.Session.request)
        requests.Session.send = _bounded_send(requests.Session.send)
        sys.addaudithook(_audit)
        _installed = True


@contextmanager
def guarded(session: Session, deadline: float | None = None) -> Iterator[Session]:
    """Run the block's network traffic under ``session``; with ``deadline`` (seconds), its
    sockets are shut when that time has passed."""
    install()
    timer = None
    if deadline is not None:
        timer = threading.Timer(deadline, session.abort)
        timer.daemon = True
        timer.start()
    token = _current.set(session)
    try:
        yield session
    finally:
        _current.reset(token)
        if timer is not None:
            timer.cancel()
        session.close()
