"""Probing from several locations with real workers, each location's worker in a network
namespace of its own (tests/netns.py), on Redis and on RabbitMQ: a partition is a real one (an
endpoint unreachable from one namespace), a location whose worker is killed is left out, and
neither ever produces a false Disconnected.

With CI=true these fail, never skip, when namespaces or RabbitMQ cannot be had."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from django.conf import settings
from django.db import connection as db

from connections.choices import Status
from connections.models import Connection, Location, LocationWorker, ProbeResult
from connections.periodic import ensure_periodic_tasks
from tests.netns import NetnsUnavailable, Network
from tests.services import CeleryWorker, LoopbackHTTPServer, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RABBITMQ = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
# every process of the test: a tick a second, a heartbeat a second, stale after 4 s, and
# probe timeouts short enough that a round ends in a few seconds
TIMING = {
    "PROBE_TICK": "1",
    "LOCATION_HEARTBEAT": "1",
    "LOCATION_STALE_AFTER": "4",
    "ROUND_GRACE": "1",
    "PROBE_CONNECT_TIMEOUT": "1",
    "PROBE_TIMEOUT": "2",
    "PROBE_KUBERNETES_TIMEOUT": "2",
}


def _unavailable(why: str):
    if CI:
        pytest.fail(f"CI=true: {why}")
    pytest.skip(why)


@pytest.fixture
def network():
    try:
        with Network() as net:
            yield net
    except NetnsUnavailable as exc:
        _unavailable(f"network namespaces cannot be made here: {exc}")


def _rabbitmq_vhost() -> str:
    """A virtual host of this test database's own (two test runs on one broker never meet),
    emptied: created afresh."""
    vhost = f"meshplay-test-{db.settings_dict['NAME']}"
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        _unavailable("rabbitmqctl is needed to make the test's virtual host")
    for args in (
        ["delete_vhost", vhost],
        ["add_vhost", vhost],
        ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
    ):
        done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60)
        if done.returncode and args[0] != "delete_vhost":
            _unavailable(f"RabbitMQ: rabbitmqctl {args[0]} failed: {done.stderr.strip()}")
    return vhost


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request):
    if request.param == "redis":
        import redis

        url = settings.CELERY_BROKER_URL
        redis.Redis.from_url(url).flushdb()
        yield url
        redis.Redis.from_url(url).flushdb()
        return
    vhost = _rabbitmq_vhost()
    url = f"{RABBITMQ.rstrip('/')}/{vhost}"
    try:
        import kombu

        with kombu.Connection(url, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is "unavailable"
        _unavailable(f"RabbitMQ is not reachable at {RABBITMQ}: {exc}")
    yield url
    subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)


class _Up(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Endpoint:
    """An HTTP service on the network's shared address that can go away and come back on the
    same port (nothing listens meanwhile: connections are refused)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.port = 0
        self.server = None
        self.up()

    def up(self) -> None:
        self.server = LoopbackHTTPServer((self.address, self.port), _Up)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/"


class Fleet:
    """A beat and dispatcher here, and one worker per location, each in its namespace."""

    def __init__(self, network: Network, broker: str) -> None:
        self.network = network
        self.broker = broker
        self.workers: dict[str, CeleryWorker] = {}
        self.hosts = {}
        self.inside: dict[str, dict[str, str]] = {}
        self.broker_forwards = {}
        self.started: list[CeleryWorker] = []
        allowed = f"10.{network.base}.0.0/16"
        self.env = {**TIMING, "PROBE_ALLOWED_NETWORKS": allowed}

    def start_beat(self) -> None:
        worker = CeleryWorker(db.settings_dict["NAME"], self.broker, **self.env)
        self.started.append(worker.start(queues="celery", beat=True))

    def add_location(self, name: str) -> None:
        """The location, its namespace, the database and the broker forwarded into it (all a
        location needs: nothing listens there), and its worker."""
        from urllib.parse import urlsplit, urlunsplit

        Location.objects.create(name=name)
        host = self.network.add(name)
        self.hosts[name] = host
        database = self.network.forward(
            host, 0, ("127.0.0.1", int(db.settings_dict["PORT"] or 5432))
        )
        parts = urlsplit(self.broker)
        broker = self.network.forward(host, 0, (parts.hostname, parts.port or 5672))
        self.broker_forwards[name] = broker
        netloc = f"{host.outside}:{broker.address[1]}"
        if parts.username:
            netloc = f"{parts.username}:{parts.password}@{netloc}"
        self.inside[name] = {
            "CELERY_BROKER_URL": urlunsplit((parts.scheme, netloc, parts.path, "", "")),
            "DATABASE_URL": (
                f"postgres://{db.settings_dict['USER']}@{host.outside}:{database.address[1]}/"
                f"{db.settings_dict['NAME']}"
            ),
        }
        self.start_location(name)

    def start_location(self, name: str) -> None:
        host = self.hosts[name]
        env = {**self.env, **self.inside[name], "PROBE_LOCATION": name}
        worker = CeleryWorker(db.settings_dict["NAME"], env.pop("CELERY_BROKER_URL"), **env)
        self.workers[name] = worker
        self.started.append(
            worker.start(
                queues=f"probes.{name}", beat=False, prefix=host.command([]), name=f"{name}@test"
            )
        )

    def cut_broker(self, name: str) -> None:
        """The location's way to the broker is gone (its connections dropped, none accepted)."""
        self.broker_forwards[name].close()

    def mend_broker(self, name: str) -> None:
        old = self.broker_forwards[name]
        self.broker_forwards[name] = self.network.forward(
            self.hosts[name], old.address[1], old.target
        )

    def stop(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def fleet(network, broker_url, settings):
    settings.PROBE_TICK = 1
    settings.LOCATION_STALE_AFTER = float(TIMING["LOCATION_STALE_AFTER"])  # as the workers
    ensure_periodic_tasks()
    made = Fleet(network, broker_url)
    yield made
    made.stop()


def _fresh(conn: Connection) -> Connection:
    return Connection.objects.get(pk=conn.pk)


def _states(conn: Connection) -> list[tuple[str, str]]:
    return list(conn.history.order_by("pk").values_list("from_status", "to_status"))


def _three_locations(fleet: Fleet, owner, name: str):
    """A service on the shared address, beat, three locations with a worker each, and a
    connection to the service (interval 5 s, retry 1 s, threshold 2)."""
    endpoint = Endpoint(fleet.network.serve_address)
    tag = f"{os.getpid() % 100000}"
    names = (f"eu{tag}", f"us{tag}", f"ap{tag}")
    fleet.start_beat()
    for location in names:
        fleet.add_location(location)
    conn = Connection.objects.create(
        name=name,
        kind="http",
        url=endpoint.url,
        status=Status.CONNECTED,
        owner=owner,
        probe_interval=5,
        retry_interval=1,
        failure_threshold=2,
    )
    return endpoint, names, conn


def test_a_partition_is_partial_a_lost_location_is_left_out_an_outage_is_down(fleet, owner):
    endpoint, (eu, us, ap), conn = _three_locations(fleet, owner, "checkout")

    def note() -> str:
        return _fresh(conn).locations_note

    def heard_from() -> set[str]:
        return set(
            ProbeResult.objects.filter(connection=conn, round__isnull=False).values_list(
                "location__name", flat=True
            )
        )

    wait_until(lambda: LocationWorker.objects.count() == 3, 60, message="three heartbeats")
    wait_until(lambda: heard_from() == {eu, us, ap}, 60, message="a round from every location")
    assert _fresh(conn).status == Status.CONNECTED and note() == ""

    # a real partition: ap cannot reach the service; the others can
    fleet.hosts[ap].cut(fleet.network.serve_address)
    wait_until(lambda: note().startswith(f"down in 1 of 3 locations ({ap}: "), 30)
    assert "10." in note()
    assert _fresh(conn).status == Status.CONNECTED

    # ap's worker is killed: it goes stale and is left out of the count (never a failure)
    fleet.workers[ap].kill()
    wait_until(lambda: note() == "", 30, message=note)
    assert _fresh(conn).status == Status.CONNECTED

    # us is cut off too: one of the two that answer fails, not a majority of them
    fleet.hosts[us].cut(fleet.network.serve_address)
    wait_until(lambda: note().startswith(f"down in 1 of 2 locations ({us}: "), 30, message=note)
    assert _fresh(conn).status == Status.CONNECTED
    assert _states(conn) == []  # no false Disconnected at any point

    # the service itself goes down: both that answer fail, for two rounds
    endpoint.down()
    wait_until(lambda: _fresh(conn).status == Status.DISCONNECTED, 40, message=note)
    reason = conn.history.latest("pk").reason
    assert "(in 2 of 2 locations)" in reason and "2 failed rounds in a row" in reason

    # everything comes back: the service, the routes, ap's worker (it catches up at once)
    endpoint.up()
    fleet.hosts[us].mend(fleet.network.serve_address)
    fleet.hosts[ap].mend(fleet.network.serve_address)
    fleet.start_location(ap)
    wait_until(lambda: _fresh(conn).status == Status.CONNECTED, 40, message=note)
    wait_until(lambda: note() == "", 30, message=note)
    assert _states(conn) == [
        (Status.CONNECTED, Status.DISCONNECTED),
        (Status.DISCONNECTED, Status.CONNECTED),
    ]
    endpoint.down()


def test_a_location_cut_off_from_its_broker_is_left_out_and_comes_back(fleet, owner):
    endpoint, (eu, us, ap), conn = _three_locations(fleet, owner, "search")

    def note() -> str:
        return _fresh(conn).locations_note

    def online() -> set[str]:
        from connections.probing.rounds import online_locations

        return set(online_locations().values())

    wait_until(lambda: online() == {eu, us, ap}, 60, message="three locations online")
    fleet.cut_broker(ap)
    # it stops saying it is there, goes stale, and the others decide without it
    wait_until(lambda: online() == {eu, us}, 30, message=lambda: str(online()))
    wait_until(lambda: note() == "", 30, message=note)
    assert _fresh(conn).status == Status.CONNECTED and _states(conn) == []
    # the service goes down meanwhile: the two that answer are a quorum
    endpoint.down()
    wait_until(lambda: _fresh(conn).status == Status.DISCONNECTED, 40, message=note)
    endpoint.up()
    from django.utils import timezone

    mended_at = timezone.now()
    fleet.mend_broker(ap)
    wait_until(lambda: online() == {eu, us, ap}, 60, message=lambda: str(online()))
    wait_until(lambda: _fresh(conn).status == Status.CONNECTED, 40, message=note)
    wait_until(lambda: note() == "", 30, message=note)
    # it probes again once back: its results are in the rounds since
    assert ProbeResult.objects.filter(
        connection=conn, location__name=ap, checked_at__gte=mended_at
    ).exists()
    endpoint.down()
