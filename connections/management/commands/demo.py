"""A small local fleet on loopback that goes down and comes back, and connections to it.

Each endpoint follows its own schedule (up for some seconds, then refusing connections or
rejecting the token), so that the background probes move the connections through real
transitions within a minute: discovered -> registered, connected -> disconnected -> connected,
registered -> not found, and a self-connecting provider registration. The demo connects each
endpoint once the probes registered it, as its owner would (the first superuser).

The endpoints listen on 127.0.0.1 from ``--base-port`` (default ``DEMO_BASE_PORT``, else 18080).
"""

import asyncio
import contextlib
import os
import time

from django import db
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand
from django.urls import NoReverseMatch, reverse

from connections import creating, lifecycle
from connections.choices import Status
from connections.models import Connection
from credentials.bounds import origin_of
from credentials.models import Credential

# name, kind, how it behaves: (seconds up, seconds down, what down means)
FLEET = [
    ("payments-api", "http", (10**9, 0, "refuse")),  # always up
    ("orders-api", "http", (40, 25, "refuse")),
    ("search-api", "http", (25, 35, "refuse")),
    ("metrics-prometheus", "prometheus", (45, 30, "refuse")),
    ("grafana-dashboards", "grafana", (60, 20, "refuse")),
    ("inventory-api", "http", (30, 30, "unauthorized")),
    ("legacy-billing", "http", (0, 10**9, "refuse")),  # never up
    ("provider-registration", "remote_provider", (10**9, 0, "refuse")),
]


class Endpoint:
    def __init__(self, name: str, port: int, up: int, down: int, mode: str, offset: float):
        self.name, self.port, self.up, self.down, self.mode = name, port, up, down, mode
        self.offset = offset
        self.server: asyncio.base_events.Server | None = None

    def healthy(self, now: float) -> bool:
        if self.down == 0:
            return True
        if self.up == 0:
            return False
        return (now + self.offset) % (self.up + self.down) < self.up

    async def handle(self, reader, writer) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()
            return
        path = request.split(b" ", 2)[1].decode(errors="replace")
        status, body = self.answer(path)
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
        )
        await writer.drain()
        writer.close()

    def answer(self, path: str) -> tuple[str, str]:
        if not self.healthy(time.time()):  # only "unauthorized" endpoints answer while down
            return "401 Unauthorized", '{"message": "token revoked"}'
        if path.startswith("/api/v1/status/buildinfo"):
            return "200 OK", '{"status": "success", "data": {"version": "2.53.0-demo"}}'
        if path.startswith("/api/health"):
            return "200 OK", '{"database": "ok", "version": "11.0.0-demo"}'
        return "200 OK", '{"status": "ok"}'

    async def run(self) -> None:
        while True:
            should_listen = self.healthy(time.time()) or self.mode == "unauthorized"
            if should_listen and self.server is None:
                self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port)
            elif not should_listen and self.server is not None:
                self.server.close()
                await self.server.wait_closed()
                self.server = None
            await asyncio.sleep(1)


class Command(BaseCommand):
    help = "Run a demo fleet of loopback endpoints and create connections to it."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--base-port", type=int, default=int(os.environ.get("DEMO_BASE_PORT", "18080"))
        )

    def handle(self, *args, base_port: int, **options) -> None:
        owner = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        endpoints = []
        for index, (name, kind, (up, down, mode)) in enumerate(FLEET):
            port = base_port + index
            endpoints.append(Endpoint(name, port, up, down, mode, offset=index * 7))
            self.ensure_connection(name, kind, f"http://127.0.0.1:{port}", owner, index)
        self.announce(len(endpoints), base_port)
        asyncio.run(self.serve(endpoints, owner))

    def announce(self, count: int, base_port: int) -> None:
        """Where to watch: the product's own pages (the overview, the connection table), never
        the admin."""
        self.stdout.write(
            f"demo fleet: {count} endpoints on 127.0.0.1:{base_port}-{base_port + count - 1}; "
            f"watch them change state in {where_to_watch()}"
        )

    async def serve(self, endpoints: list[Endpoint], owner) -> None:
        await asyncio.gather(
            *(endpoint.run() for endpoint in endpoints), self.act_as_owner(endpoints, owner)
        )

    async def act_as_owner(self, endpoints: list[Endpoint], owner) -> None:
        """What the owner would do once: connect each endpoint the probes registered, so that
        its outages move it between Connected and Disconnected (a registration connects itself)."""
        if owner is None:
            return
        names = [e.name for e in endpoints]
        done: set[int] = set()
        while len(done) < len(names):
            done |= await asyncio.to_thread(connect_registered, names, owner, done)
            await asyncio.sleep(2)

    def ensure_connection(self, name, kind, url, owner, index) -> None:
        identity = f"discovered|demo-cluster/demo/{name}:80"
        connection = (
            Connection.all_objects.filter(identity=identity).exclude(status="deleted").first()
        )
        if connection is None:
            connection = creating.create_discovered_connection(
                name=name, kind=kind, url=url, identity=identity, owner=owner
            )
            Connection.objects.filter(pk=connection.pk).update(
                probe_interval=5, failure_threshold=2
            )
        if kind == "remote_provider" and owner is not None:
            # the registration's token, bound to the demo provider's origin: sent nowhere else
            token, _ = Credential.objects.get_or_create(
                name="demo provider token", owner=owner, defaults={"kind": "bearer_token"}
            )
            origin = origin_of(url)
            if not token.has_secret or token.endpoints != [origin]:
                token.set_secret({"token": "demo-provider-token"})
                token.endpoints = [origin]
                token.save()
            Connection.objects.filter(pk=connection.pk).update(credential=token)


def connect_registered(names: list[str], owner, done: set[int]) -> set[int]:
    """Connect the demo's registered connections not connected before; their ids."""
    connected = set()
    candidates = Connection.objects.filter(
        name__in=names, status=Status.REGISTERED, identity__startswith="discovered|demo-cluster/"
    ).exclude(pk__in=done)
    for connection in candidates:
        targets = lifecycle.user_targets(connection, owner)
        if Status.CONNECTED not in targets:
            continue
        try:
            lifecycle.perform_user_action(connection, Status.CONNECTED, user=owner)
        except (lifecycle.TransitionRefused, PermissionDenied):
            continue  # a probe moved it meanwhile: the next pass looks again
        finally:
            db.close_old_connections()
        connected.add(connection.pk)
    return connected


def where_to_watch() -> str:
    pages = [f"the connection table, {reverse('connections:list')}"]
    with contextlib.suppress(NoReverseMatch):  # an overview page, where there is one
        pages.insert(0, f"the overview, {reverse('overview')}")
    return " and ".join(pages)
