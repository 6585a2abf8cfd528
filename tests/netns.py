"""Test hosts with addresses of their own: Linux network namespaces joined to this one by veth
pairs (iproute2), for probes sent from several locations.

    with Network() as net:
        eu = net.add("eu")                    # a namespace, its veth pair, a default route here
        net.serve_address                     # an address of this namespace every host reaches
        eu.cut(net.serve_address)             # a real partition: that address is unreachable
        eu.mend(net.serve_address)
        eu.command(["python", ...])           # a command line run inside the namespace
        forward = net.forward(eu, 5432, ("127.0.0.1", 5432))  # a service of this host, there

Every address is in 10.<n>.0.0/16 (``n`` from this process's id, so that two test runs on one
machine do not meet); everything is removed on exit, and namespaces left by a run that died are
removed at the next. Nothing is routed beyond this machine: the namespaces' only link is their
veth pair to this namespace, which has no route for their addresses elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import subprocess
import threading
from dataclasses import dataclass, field

PREFIX = "mpt"  # namespace names: mpt<pid>-<name>


class NetnsUnavailable(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def remove_leftovers() -> None:
    """Remove the namespaces of test runs whose process is gone."""
    try:
        listed = _ip("netns", "list", check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return
    for line in listed.splitlines():
        found = re.match(rf"{PREFIX}(\d+)-\S+", line)
        if not found:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
            continue  # its run is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _ip("netns", "del", found.group(0), check=False)


@dataclass
class Host:
    network: Network
    name: str
    index: int
    namespace: str
    outside: str  # this namespace's end of the pair: the host's gateway
    inside: str  # the host's own address
    cuts: set[str] = field(default_factory=set)

    def cut(self, address: str) -> None:
        """A partition: ``address`` becomes unreachable from this host (an "unreachable" route:
        connects fail at once with EHOSTUNREACH, as behind a router that has no way there)."""
        _ip("-n", self.namespace, "route", "replace", "unreachable", f"{address}/32")
        self.cuts.add(address)

    def mend(self, address: str) -> None:
        _ip("-n", self.namespace, "route", "del", "unreachable", f"{address}/32", check=False)
        self.cuts.discard(address)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), capture_output=True, text=True, **kwargs)


class Network:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.base = 100 + self.pid % 100  # 10.<base>.0.0/16
        self.hosts: list[Host] = []
        self.forwards: list[Forward] = []
        self.serve_address = f"10.{self.base}.0.1"
        self._lo_address = False

    def __enter__(self) -> Network:
        remove_leftovers()
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root")
        try:
            _ip("addr", "replace", f"{self.serve_address}/32", "dev", "lo")
            self._lo_address = True
        except (OSError, subprocess.SubprocessError) as exc:
            raise NetnsUnavailable(f"cannot add an address: {exc}") from exc
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, name: str) -> Host:
        index = len(self.hosts) + 1
        namespace = f"{PREFIX}{self.pid}-{name}"
        outside_if, inside_if = f"mo{self.pid % 100000}{index}", f"mi{self.pid % 100000}{index}"
        outside, inside = f"10.{self.base}.{index}.1", f"10.{self.base}.{index}.2"
        try:
            _ip("netns", "add", namespace)
        except subprocess.CalledProcessError as exc:
            raise NetnsUnavailable(f"ip netns add: {exc.stderr.strip()}") from exc
        host = Host(self, name, index, namespace, outside, inside)
        self.hosts.append(host)
        try:
            _ip("link", "add", outside_if, "type", "veth", "peer", "name", inside_if)
            _ip("link", "set", inside_if, "netns", namespace)
            _ip("addr", "add", f"{outside}/24", "dev", outside_if)
            _ip("link", "set", outside_if, "up")
            _ip("-n", namespace, "addr", "add", f"{inside}/24", "dev", inside_if)
            _ip("-n", namespace, "link", "set", inside_if, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "route", "add", "default", "via", outside)
        except subprocess.CalledProcessError as exc:
            raise NetnsUnavailable(f"veth set-up: {exc.stderr.strip()}") from exc
        host.outside_if = outside_if
        return host

    def forward(self, host: Host, port: int, target: tuple[str, int]) -> Forward:
        """``target`` (a service on this namespace's loopback) reachable from ``host`` at
        ``host.outside:port``."""
        forward = Forward((host.outside, port), target)
        self.forwards.append(forward)
        return forward

    def close(self) -> None:
        for forward in self.forwards:
            forward.close()
        for host in self.hosts:
            # deleting the namespace deletes its end of the pair, and with it the other end
            _ip("netns", "del", host.namespace, check=False)
            _ip("link", "del", getattr(host, "outside_if", "-"), check=False)
        if self._lo_address:
            _ip("addr", "del", f"{self.serve_address}/32", "dev", "lo", check=False)
        self.hosts.clear()


class Forward:
    """A TCP forwarder in a thread: every connection to ``listen`` is joined to ``target``."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen, reuse_port=False)
        self.address = self.server.getsockname()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        try:
            while not self.closed.is_set():
                ready, _, _ = select.select(list(pair), [], [], 0.5)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.server.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
