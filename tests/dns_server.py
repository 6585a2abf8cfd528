"""A minimal authoritative DNS server over UDP on 127.0.0.1, for the probes' resolver tests.

Standard library only. It parses the question of each query and answers:

* ``A`` for a known name: the name's next answer (its list of answers is returned in turn, the
  last one repeated), so a name can change its answer between two lookups;
* ``AAAA`` (or any other type) for a known name: no records (NOERROR, empty answer);
* any query for an unknown name: NXDOMAIN.

Each name may have a delay: answers are sent by a scheduler thread when due, so a slow name
does not hold up the others. The server counts queries per name and type, and keeps the
highest number of queries (and of distinct names) it had received and not yet answered.
Answers carry TTL 0 by default and no SOA, so c-ares caches neither them nor NXDOMAIN (it does
cache an empty NOERROR answer). A name may also leave its first few A queries unanswered, as a
server that loses packets does.

Typical use::

    with DNSServer() as dns:
        dns.add("svc.test", "127.0.0.1", delay=0.05)
        dns.add("flip.test", "127.0.0.1", "10.0.0.1")  # first lookup, then every later one
        resolver = aiodns.DNSResolver(nameservers=[dns.nameserver])  # "127.0.0.1:PORT"
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["DNSServer"]

TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
_TYPE_NAMES = {TYPE_A: "A", TYPE_AAAA: "AAAA"}
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN = 0, 1, 3


@dataclass
class _Name:
    answers: list[list[str]]  # each answer: the A records of one lookup
    delay: float = 0.0
    ttl: int = 0
    served: int = 0  # A answers given so far (which answer comes next)
    silent: int = 0  # A queries still to leave unanswered


@dataclass(order=True)
class _Reply:
    due: float
    seq: int
    packet: bytes = field(compare=False)
    peer: tuple = field(compare=False)
    key: tuple[str, str] = field(compare=False)


class DNSServer:
    """An authoritative DNS server for tests; ``nameserver`` is its ``"127.0.0.1:PORT"``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._names: dict[str, _Name] = {}
        self._lock = threading.Condition()
        self._pending: list[_Reply] = []
        self._seq = 0
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._closed = False
        self.queries: Counter[tuple[str, str]] = Counter()  # (name, "A"/"AAAA"/...) -> count
        self.log: list[tuple[str, str]] = []  # every query, in order of arrival
        self.max_in_flight = 0  # queries received and not yet answered, at most
        self.max_names_in_flight = 0  # distinct names with a query not yet answered, at most
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self.host, self.port = self._sock.getsockname()[:2]
        self._threads = [
            threading.Thread(target=self._receive, name="dns-receive", daemon=True),
            threading.Thread(target=self._send, name="dns-send", daemon=True),
        ]

    # ----------------------------------------------------------------- configuration

    @property
    def nameserver(self) -> str:
        """The form c-ares accepts for a server on another port than 53."""
        return f"{self.host}:{self.port}"

    def add(
        self,
        name: str,
        *answers: str | list[str],
        delay: float = 0.0,
        ttl: int = 0,
        silent: int = 0,
    ):
        """Serve ``name``: each positional answer (an address, or a list of addresses) is the
        A answer of one lookup, in turn, the last one repeated; none means an empty answer.
        The first ``silent`` A queries for it get no answer at all."""
        turns = [[a] if isinstance(a, str) else list(a) for a in answers] or [[]]
        for turn in turns:
            for address in turn:
                ipaddress.IPv4Address(address)  # A records only
        with self._lock:
            self._names[_key(name)] = _Name(turns, delay=delay, ttl=ttl, silent=silent)

    def remove(self, name: str) -> None:
        with self._lock:
            self._names.pop(_key(name), None)

    def count(self, name: str, qtype: str | None = "A") -> int:
        """Queries seen for ``name`` of type ``qtype`` (of every type with None)."""
        with self._lock:
            if qtype is not None:
                return self.queries[(_key(name), qtype)]
            return sum(n for (k, _), n in self.queries.items() if k == _key(name))

    def reset_counts(self) -> None:
        with self._lock:
            self.queries.clear()
            self.log.clear()
            self.max_in_flight = self.max_names_in_flight = 0

    # ----------------------------------------------------------------- life cycle

    def start(self) -> DNSServer:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        try:  # wakes the receiving thread: a datagram to itself, then the socket is closed
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", (self.host, self.port))
        except OSError:
            pass
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> DNSServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- serving

    def _receive(self) -> None:
        while True:
            try:
                data, peer = self._sock.recvfrom(4096)
            except OSError:
                return
            with self._lock:
                if self._closed:
                    return
            try:
                reply, delay, key = self._answer(data)
            except (ValueError, IndexError, struct.error, UnicodeDecodeError):
                continue  # not a query this server understands: no answer
            if reply is None:
                continue
            with self._lock:
                self._seq += 1
                heapq.heappush(
                    self._pending, _Reply(time.monotonic() + delay, self._seq, reply, peer, key)
                )
                self._in_flight[key] += 1
                self.max_in_flight = max(self.max_in_flight, sum(self._in_flight.values()))
                names = {name for (name, _), n in self._in_flight.items() if n}
                self.max_names_in_flight = max(self.max_names_in_flight, len(names))
                self._lock.notify_all()

    def _send(self) -> None:
        while True:
            with self._lock:
                while not self._closed:
                    now = time.monotonic()
                    if self._pending and self._pending[0].due <= now:
                        break
                    timeout = self._pending[0].due - now if self._pending else None
                    self._lock.wait(timeout)
                if self._closed:
                    return
                reply = heapq.heappop(self._pending)
                # answered from now on: the client cannot send its next query before this
                # answer reaches it, so that query is never counted alongside this one
                self._in_flight[reply.key] -= 1
            with contextlib.suppress(OSError):  # the client may be gone
                self._sock.sendto(reply.packet, reply.peer)

    def _answer(self, data: bytes) -> tuple[bytes | None, float, tuple[str, str]]:
        ident, flags, qdcount = struct.unpack("!HHH", data[:6])
        if flags & 0x8000 or qdcount != 1:  # a response, or not exactly one question
            return None, 0.0, ("", "")
        labels, offset = [], 12
        while True:
            length = data[offset]
            if length == 0:
                offset += 1
                break
            if length & 0xC0:  # compression has no place in a query's only question
                raise ValueError("compressed question")
            labels.append(data[offset + 1 : offset + 1 + length].decode("ascii"))
            offset += 1 + length
        qtype, qclass = struct.unpack("!HH", data[offset : offset + 4])
        question = data[12 : offset + 4]  # echoed as received (case included)
        name = _key(".".join(labels))
        kind = _TYPE_NAMES.get(qtype, str(qtype))
        key = (name, kind)
        with self._lock:
            self.queries[key] += 1
            self.log.append(key)
            entry = self._names.get(name)
            records: list[str] = []
            delay, ttl = 0.0, 0
            if entry is None:
                rcode = RCODE_NXDOMAIN
            else:
                rcode, delay, ttl = RCODE_NOERROR, entry.delay, entry.ttl
                if qtype == TYPE_A and qclass == CLASS_IN:
                    if entry.silent > 0:
                        entry.silent -= 1
                        return None, 0.0, key
                    records = entry.answers[min(entry.served, len(entry.answers) - 1)]
                    entry.served += 1
        opcode_rd = flags & 0x7900  # opcode and RD, copied from the query
        header = struct.pack(
            "!HHHHHH", ident, 0x8000 | 0x0400 | opcode_rd | rcode, 1, len(records), 0, 0
        )
        answers = b"".join(
            struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, ttl, 4) + socket.inet_aton(address)
            for address in records
        )
        return header + question + answers, delay, key


def _key(name: str) -> str:
    return name.rstrip(".").lower()
