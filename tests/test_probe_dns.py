"""The probes' own resolver against a local DNS server (tests/dns_server.py) that delays, fails
and changes its answer: one lookup per name and batch, bounded concurrency, a short cache, the
guard on every resolved address and the connection made to the address it allowed, with the
name kept for Host and SNI.

Nothing here leaves 127.0.0.1: the DNS server and every endpoint listen there, and a tripwire
(the session's socket factory) records every address a probe connects to and refuses to open a
socket to any other address, so a refused or rebound address is never contacted even if the
guard failed.
"""

import asyncio
import functools
import socket
import threading
import time
import types
from http.server import BaseHTTPRequestHandler

import aiodns
import pytest

from connections.models import Connection
from connections.probing.probes import check_reachability, probe_many, registry, transport
from connections.probing.probes.kubernetes import encode_ca
from connections.probing.probes.transport import GuardedResolver
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.dns_server import DNSServer
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert
from tests.services import LoopbackHTTPServer

TOKEN = "dns-test-token-5b1f"


@pytest.fixture(autouse=True)
def connects(monkeypatch):
    """Every address a probe opens a socket to; only 127.0.0.1 gets one."""
    attempts: list[str] = []

    def socket_factory(addr_info):
        family, type_, proto, _, sockaddr = addr_info
        attempts.append(sockaddr[0])
        if sockaddr[0] != "127.0.0.1":
            raise OSError(f"test tripwire: no socket is opened to {sockaddr[0]}")
        return socket.socket(family, type_, proto)

    session = functools.partial(transport.probe_session, socket_factory=socket_factory)
    monkeypatch.setattr(registry, "probe_session", session)
    return attempts


@pytest.fixture
def dns(settings):
    with DNSServer() as server:
        settings.PROBE_DNS_SERVERS = [server.nameserver]  # "127.0.0.1:<port>"
        settings.PROBE_TIMEOUTS = {"default": (1.0, 2.0), "kubernetes": (1.0, 2.0)}
        yield server


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        # recorded before answering: the probe may return (and the test look) as soon as the
        # body is written
        with self.server.lock:
            local = self.connection.getsockname()[0]
            self.server.requests.append((self.headers.get("Host"), self.path, local))
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    """An HTTP server on 127.0.0.1; ``requests`` holds (Host header, path, local address)."""
    server = LoopbackHTTPServer(("127.0.0.1", 0), _Handler)  # 400 probes at once
    server.lock = threading.Lock()
    server.requests = []
    server.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def http(url: str) -> Connection:
    return Connection(name="dns", kind="http", url=url)


def cluster(url: str, ca_pem: bytes) -> Connection:
    credential = Credential(name="token", kind="bearer_token")
    credential.endpoints = [origin_of(url)]
    credential.set_secret({"token": TOKEN})
    return Connection(
        name="cluster",
        kind="kubernetes",
        url=url,
        credential=credential,
        metadata={"certificate_authority_data": encode_ca(ca_pem)},
    )


def test_c_ares_takes_a_nameserver_with_a_port(dns):
    """The form PROBE_DNS_SERVERS documents: "host:port" (a bare host means port 53)."""
    dns.add("plain.test", "127.0.0.1")

    async def lookup():
        resolver = aiodns.DNSResolver(nameservers=[f"127.0.0.1:{dns.port}"], timeout=1.0)
        try:
            answer = await resolver.getaddrinfo("plain.test", family=socket.AF_INET)
        finally:
            await resolver.close()
        return [node.addr[0] for node in answer.nodes]

    assert asyncio.run(lookup()) == [b"127.0.0.1"]
    assert dns.count("plain.test") == 1


def test_four_hundred_healthy_endpoints_behind_slow_dns_all_succeed(
    dns, endpoint, connects, settings
):
    # the DNS timeout stays 1 s; the probes' own deadline is longer, so waiting for one of the
    # 64 lookup slots on a loaded machine is not a failure
    settings.PROBE_TIMEOUTS = {"default": (1.0, 10.0), "kubernetes": (1.0, 10.0)}
    names = [f"svc-{n}.test" for n in range(400)]
    for n, name in enumerate(names):
        dns.add(name, "127.0.0.1", delay=0.03 + (n % 8) * 0.01)  # 30 to 100 ms
    connections = [
        http(f"http://{name}:{endpoint.port}/health/{n}") for n, name in enumerate(names)
    ]
    started = time.monotonic()
    outcomes = probe_many(connections)
    elapsed = time.monotonic() - started
    failed = [(c.url, o.summary) for c, o in zip(connections, outcomes, strict=True) if not o.ok]
    assert not failed, failed[:5]
    # one lookup per name; c-ares may re-send a lookup's query whose answer the load delayed
    # (its tries, never a second lookup: the next test counts exactly, unloaded)
    assert all(1 <= dns.count(name) <= 3 for name in names), dns.queries.most_common(3)
    assert {host for host, _, _ in endpoint.requests} == {f"{n}:{endpoint.port}" for n in names}
    assert len(endpoint.requests) == 400
    assert set(connects) == {"127.0.0.1"} and len(connects) == 400
    assert elapsed < 15, elapsed  # one lookup at a time would take 26 s


def test_one_lookup_per_name_however_many_probes_of_the_batch_use_it(dns, endpoint):
    dns.add("shared.test", "127.0.0.1", delay=0.05)
    url = f"http://shared.test:{endpoint.port}"
    outcomes = probe_many([http(f"{url}/{n}") for n in range(25)])
    assert all(o.ok for o in outcomes), [o.summary for o in outcomes if not o.ok]
    assert dns.count("shared.test") == 1
    assert len(endpoint.requests) == 25


def test_a_six_second_lookup_ends_its_probe_at_the_deadline_and_no_other(dns, endpoint):
    """The 6 s answer costs its own probe at most its 2 s deadline. (Either the deadline ends
    it, "timeout: no answer within 2s", or c-ares gives up first, "cannot resolve slow.test:
    Timeout while contacting DNS servers": see the next test.)"""
    dns.add("slow.test", "127.0.0.1", delay=6.0)
    fast = [f"fast-{n}.test" for n in range(20)]
    for name in fast:
        dns.add(name, "127.0.0.1", delay=0.05)
    connections = [http(f"http://slow.test:{endpoint.port}/")]
    connections += [http(f"http://{name}:{endpoint.port}/") for name in fast]
    started = time.monotonic()
    slow, *others = probe_many(connections)
    elapsed = time.monotonic() - started
    assert not slow.ok
    assert "timeout" in slow.summary.lower(), slow.summary
    assert slow.latency_ms < 3000, slow.latency_ms
    assert elapsed < 5.5, elapsed  # the batch is not held for the 6 s answer
    assert all(o.ok for o in others), [o.summary for o in others if not o.ok]
    assert max(o.latency_ms for o in others) < 2000  # within their own deadline
    assert {host for host, _, _ in endpoint.requests} == {f"{n}:{endpoint.port}" for n in fast}


def test_an_answer_slower_than_the_others_but_within_the_dns_timeout_is_accepted(
    dns, endpoint, settings
):
    """The DNS timeout is PROBE_TIMEOUTS["default"][0] (1 s here). c-ares 1.34 shortens a
    query's timeout from the latency it has measured, so once names have answered in 50 ms a
    name answering in 600 ms would be given up after ~0.65 s with two tries; the resolver's
    three tries let it through. The probe's own deadline is 5 s here (the DNS one stays 1 s): on
    a loaded machine three tries and the GET took just over the fixture's 2 s once."""
    settings.PROBE_TIMEOUTS = {"default": (1.0, 5.0), "kubernetes": (1.0, 5.0)}
    fast = [f"quick-{n}.test" for n in range(20)]
    for name in fast:
        dns.add(name, "127.0.0.1", delay=0.05)
    dns.add("patient.test", "127.0.0.1", delay=0.6)
    connections = [http(f"http://{name}:{endpoint.port}/") for name in [*fast, "patient.test"]]
    *others, patient = probe_many(connections, concurrency=20)  # fast names are answered first
    assert all(o.ok for o in others), [o.summary for o in others if not o.ok]
    assert patient.ok, patient.summary
    # c-ares may re-send a query it timed out early (3 tries), and the resolver asks once more
    # when c-ares gives up with a timeout or "no data": never more than 2 x 3 queries
    assert 1 <= dns.count("patient.test") <= 6


def test_a_lookup_that_c_ares_gives_up_on_is_asked_once_more(dns, endpoint, settings):
    """c-ares gives up on an A query after its tries while the AAAA query has answered empty
    (and reports a timeout or "no data"): the resolver asks once more, and the name resolves."""
    settings.PROBE_TIMEOUTS = {"default": (0.2, 5.0), "kubernetes": (0.2, 5.0)}
    dns.add("lossy.test", "127.0.0.1", silent=3)  # c-ares's three tries all go unanswered
    outcome = check_reachability(http(f"http://lossy.test:{endpoint.port}/"))
    assert outcome.ok, outcome.summary
    # three unanswered tries, then the resolver's own; on a loaded machine c-ares may re-send
    # that one too before its (0.2 s) answer arrives
    assert 4 <= dns.count("lossy.test") <= 6


def test_a_name_without_an_address_is_a_clear_failure(dns, connects):
    dns.add("bare.test")  # known, no A record
    outcome = check_reachability(http("http://bare.test:8080/"))
    assert (outcome.ok, outcome.error_class) == (False, "dns"), outcome.summary
    assert "cannot resolve bare.test" in outcome.error, outcome.error
    assert dns.count("bare.test") == 1  # asked again, but c-ares keeps the empty answer
    assert connects == []


@pytest.mark.parametrize("rebound", ["169.254.169.254", "10.0.0.1"])
def test_a_name_that_rebinds_is_contacted_only_at_the_checked_address(
    dns, endpoint, connects, rebound
):
    dns.add("flip.test", "127.0.0.1", rebound)  # the first lookup, then every later one
    url = f"http://flip.test:{endpoint.port}/probe"
    outcome = check_reachability(http(url))
    assert outcome.ok, outcome.summary
    assert endpoint.requests == [(f"flip.test:{endpoint.port}", "/probe", "127.0.0.1")]
    assert connects == ["127.0.0.1"]
    assert dns.count("flip.test") == 1  # resolved once: no second lookup to rebind
    # the server does change its answer: the next batch resolves again and is refused
    again = check_reachability(http(url))
    assert (again.ok, again.error_class) == (False, "bounds"), again.summary
    assert rebound in again.error
    assert dns.count("flip.test") == 2
    assert connects == ["127.0.0.1"] and len(endpoint.requests) == 1


@pytest.mark.parametrize(
    ("address", "reason"),
    [("169.254.169.254", "link-local"), ("10.0.0.1", "outside PROBE_ALLOWED_NETWORKS")],
)
def test_a_name_resolving_only_to_refused_addresses_is_refused_without_a_connection(
    dns, connects, address, reason
):
    dns.add("metadata.test", address)
    outcome = check_reachability(http("http://metadata.test/latest/meta-data/"))
    assert (outcome.ok, outcome.error_class) == (False, "bounds"), outcome.summary
    assert reason in outcome.error and "metadata.test" in outcome.error
    assert dns.count("metadata.test") == 1
    assert connects == []  # no socket was opened anywhere


def test_of_several_addresses_only_the_allowed_one_is_contacted(dns, endpoint, connects):
    dns.add("mixed.test", ["10.0.0.1", "169.254.169.254", "127.0.0.1"])
    outcome = check_reachability(http(f"http://mixed.test:{endpoint.port}/"))
    assert outcome.ok, outcome.summary
    assert connects == ["127.0.0.1"]
    assert endpoint.requests == [(f"mixed.test:{endpoint.port}", "/", "127.0.0.1")]


def test_dns_lookups_are_bounded_by_their_own_concurrency(dns, endpoint, settings):
    settings.PROBE_DNS_CONCURRENCY = 4
    settings.PROBE_TIMEOUTS = {"default": (1.0, 5.0), "kubernetes": (1.0, 5.0)}
    names = [f"bounded-{n}.test" for n in range(40)]
    for name in names:
        dns.add(name, "127.0.0.1", delay=0.1)
    outcomes = probe_many([http(f"http://{name}:{endpoint.port}/") for name in names])
    assert all(o.ok for o in outcomes), [o.summary for o in outcomes if not o.ok]
    assert dns.max_names_in_flight == 4  # reached, never passed
    assert dns.max_in_flight <= 8  # an A and an AAAA query per lookup
    assert all(dns.count(name) == 1 for name in names)


def test_an_unknown_name_is_a_clear_failure(dns, connects):
    outcome = check_reachability(http("http://missing.test:8080/"))
    assert not outcome.ok
    assert outcome.error_class == "dns", outcome.summary
    assert "cannot resolve missing.test" in outcome.error, outcome.error
    assert dns.count("missing.test") == 1
    assert connects == []


@pytest.fixture
def clock(monkeypatch):
    """The resolver's clock (only its module's), moved forward by ``advance(seconds)``."""
    offset = [0.0]
    fake = types.SimpleNamespace(monotonic=lambda: time.monotonic() + offset[0])
    monkeypatch.setattr(transport, "time", fake)
    return lambda seconds: offset.__setitem__(0, offset[0] + seconds)


def test_answers_are_cached_for_the_cache_time_and_name_errors_briefly(dns, settings, clock):
    settings.PROBE_DNS_CACHE_SECONDS = 10.0
    dns.add("cached.test", "127.0.0.1", "127.0.0.2")

    async def resolve(resolver, host):
        try:
            return [r["host"] for r in await resolver.resolve(host, 80, family=socket.AF_UNSPEC)]
        except OSError as exc:
            return str(exc)

    async def scenario():
        resolver = GuardedResolver()
        try:
            seen = [
                await resolve(resolver, "missing.test"),
                await resolve(resolver, "missing.test"),
            ]
            seen.append(await resolve(resolver, "cached.test"))
            clock(3)  # past the name error's few seconds, within the answer's ten
            seen += [
                await resolve(resolver, "missing.test"),
                await resolve(resolver, "cached.test"),
            ]
            clock(8)
            seen.append(await resolve(resolver, "cached.test"))
            return seen, resolver.lookups
        finally:
            await resolver.close()

    seen, lookups = asyncio.run(scenario())
    nx = "cannot resolve missing.test: Domain name not found"
    assert seen == [nx, nx, ["127.0.0.1"], nx, ["127.0.0.1"], ["127.0.0.2"]]
    assert (dns.count("missing.test"), dns.count("cached.test"), lookups) == (2, 2, 4)


def test_https_by_name_keeps_sni_and_checks_the_certificate_by_name(dns, connects):
    with FakeKubernetesAPI(
        tokens={TOKEN: "admin"}, tls=make_ca_and_cert(hostnames=("secure.test",))
    ) as api:
        names = []
        api._ssl_context.sni_callback = lambda sock, name, context: names.append(name)
        dns.add("secure.test", "127.0.0.1")
        outcome = check_reachability(cluster(f"https://secure.test:{api.port}", api.ca_pem))
    assert outcome.ok, outcome.summary
    assert outcome.metadata["version"] == api.git_version
    assert names and set(names) == {"secure.test"}
    assert set(connects) == {"127.0.0.1"}
    assert dns.count("secure.test") == 1


def test_https_to_a_certificate_for_the_address_but_not_the_name_is_a_tls_failure(dns):
    with FakeKubernetesAPI(tokens={TOKEN: "admin"}) as api:  # certificate for 127.0.0.1 only
        dns.add("wrong.test", "127.0.0.1")
        outcome = check_reachability(cluster(f"https://wrong.test:{api.port}", api.ca_pem))
    assert (outcome.ok, outcome.error_class) == (False, "tls"), outcome.summary
    assert api.requests == []


def test_a_probe_cancelled_during_a_shared_lookup_does_not_cancel_the_others(dns):
    """Two tasks wait for one lookup; the one that started it is cancelled (its deadline):
    the other must still get the addresses, not a CancelledError of its own."""
    dns.add("shared.test", "127.0.0.1", delay=0.5)

    async def scenario():
        resolver = GuardedResolver()
        try:
            first = asyncio.create_task(resolver.resolve("shared.test", 80, family=0))
            second = asyncio.create_task(resolver.resolve("shared.test", 80, family=0))
            await asyncio.sleep(0.1)
            first.cancel()
            return await asyncio.gather(first, second, return_exceptions=True)
        finally:
            await resolver.close()

    first, second = asyncio.run(scenario())
    assert isinstance(first, asyncio.CancelledError)
    assert not isinstance(second, BaseException), repr(second)
    assert [r["host"] for r in second] == ["127.0.0.1"]


def test_a_short_probe_timing_out_in_a_shared_lookup_does_not_take_its_batch_down(dns, settings):
    """An http probe (0.3 s) and a Kubernetes probe (3 s) of the same slow name (0.6 s) in
    one batch: the first times out, the second is reachable; the batch itself returns."""
    settings.PROBE_TIMEOUTS = {"default": (1.0, 0.3), "kubernetes": (1.0, 3.0)}
    with FakeKubernetesAPI(
        tokens={TOKEN: "admin"}, tls=make_ca_and_cert(hostnames=("both.test",))
    ) as api:
        dns.add("both.test", "127.0.0.1", delay=0.6)
        url = f"https://both.test:{api.port}"
        try:
            short, long = probe_many([http(f"{url}/"), cluster(url, api.ca_pem)])
        except asyncio.CancelledError:
            pytest.fail("the whole batch was cancelled when one probe's deadline passed")
    assert (short.ok, short.error_class) == (False, "timeout"), short.summary
    assert long.ok, long.summary
