"""Fuzzing: every HTML form of the app and every JSON API operation, with hostile input.

Whatever is typed or sent, the answer is below 500. Nobody lists the targets: they are read
from the project (tests/fuzz_targets.py), so a new route, form or field is fuzzed as soon as
it exists:

- the API: every operation of the OpenAPI schema; its body fields drawn from the request
  schema (type, format, enum, nullable, readOnly; ``$ref`` resolved), its query parameters
  likewise, its ``{id}``-like path parameters filled with the world's ids of the resource the
  path names (or with hostile ones);
- the forms: every ``<form method="post">`` the pages render to their owner (every GET-able URL
  pattern, its parameters filled with the world's ids), one target per action and field set,
  each field drawn by input type (its options, the page's value, hostile text, …);
- the query strings of every page, with the names its GET forms and links use.

The hand-made descriptions (``FORMS``, ``OPERATIONS``) refine what they know better: valid
values that reach deep code (a signed edit snapshot, a kubeconfig of this world's servers).
Two tests fail naming any schema operation the fuzz cannot derive and any URL pattern that
takes a POST but that no form reaches (``NOT_FORMS`` lists those that are no forms, with why).

Hostile values: huge, negative and non-numeric numbers, ids in Unicode digits, any Unicode,
lone surrogates sent as the invalid UTF-8 a browser could send, very long strings, NUL bytes,
CR/LF and bidi controls in names, broken URLs, ``javascript:``, times at the edges of the
calendar, time zones that are no IANA names, Apprise destinations smuggling a second URL,
foreign cursors; mixed with the world's real ids so that valid paths are walked too.

Every example runs in a savepoint rolled back afterwards: each starts from the same world.

How many inputs: ``FUZZ_EXAMPLES`` (environment) is the total across the fuzz tests of this
module, shared out between them (default ``DEFAULT_TOTAL``); the number that ran (shrinking
included) is printed at the end of the session with how they were answered (2xx, 3xx, 4xx:
how deep they went), every target with ``FUZZ_VERBOSE=1``, and with ``-s`` after each group.
The shapes the last security review found also go once each, every run (``review_requests``).

No network: the settings pin PROBE_ALLOWED_NETWORKS to loopback, so no probe connects past it;
the probes' DNS (c-ares) is pointed at a stub on loopback that refuses every query
(``loopback_dns``); and a guard refuses (and fails the test on) any lookup or connection through
Python's socket module that is not loopback (``loopback_only``).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import socket
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import yaml
from django.conf import settings as django_settings
from django.contrib.auth.tokens import default_token_generator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts import invitations
from accounts.models import ApiToken
from connections.choices import BULK_ACTIONS, Status, Trigger
from connections.kinds import kind_choices
from connections.models import Connection, ConnectionTransition, Dependency, Location
from core.wsgi import readable_charset
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from maintenance import windows as maintenance_windows
from maintenance.models import Window
from notifications import channels as notify_channels
from notifications.models import Delivery, Event, Message, Watch
from tests.fuzz_targets import (
    ApiOperation,
    ApiParameter,
    HtmlField,
    Underivable,
    api_operations,
    forms_of,
    openapi_schema,
    page_patterns,
    pattern_key,
    query_names_of,
)
from tests.services import serving
from tests.url_patterns import Pattern, all_patterns

pytestmark = pytest.mark.django_db

DEFAULT_TOTAL = 1200  # across every fuzz test of the module: the suite stays fast
TOTAL = int(os.environ.get("FUZZ_EXAMPLES") or DEFAULT_TOTAL)
# of TOTAL, per group: the hand-made forms, the forms read from the pages, the API, the queries
SHARES = {"forms": 0.17, "page-forms": 0.23, "api": 0.45, "queries": 0.15}
RUNS: Counter[str] = Counter()  # inputs that ran, per case
ANSWERS: Counter[tuple[str, str]] = Counter()  # (case, "2xx"…) how deep the inputs went
STRICT = os.environ.get("FUZZ_STRICT", "") not in ("", "0")
ROOT = Path(__file__).resolve().parent.parent

# 500s found by this fuzz and not fixed yet, by (file, function where the exception is raised,
# exception) -> the minimal input: counted and reported, failing only with FUZZ_STRICT=1. The
# file is the innermost of the project's own code; when none of it ran, the innermost of a
# library that is not Django's or the database driver's (else Django's), relative to
# site-packages. Once fixed, remove the entry.
KNOWN_500S: dict[tuple[str, str, str], str] = {}
KNOWN_HITS: Counter[str] = Counter()
# where an exception passes rather than starts, and the test client (not the server)
INFRASTRUCTURE = ("django/", "psycopg/", "psycopg2/", "rest_framework/test.py")


def known_bug(exc: BaseException) -> str | None:
    """The KNOWN_500S entry the exception is, or None."""
    frames = traceback.extract_tb(exc.__traceback__)
    key = None
    for frame in reversed(frames):
        path = Path(frame.filename).resolve()
        if ROOT in path.parents and ".venv" not in path.parts and "tests" not in path.parts:
            key = (path.relative_to(ROOT).as_posix(), frame.name, type(exc).__name__)
            break
    else:
        libraries = [
            (Path(f.filename).as_posix().rpartition("site-packages/")[2], f.name)
            for f in frames
            if "site-packages/" in f.filename
        ]
        served = [
            lib for lib in libraries if not lib[0].startswith(("django/test/", "hypothesis/"))
        ]
        chosen = [lib for lib in served if not lib[0].startswith(INFRASTRUCTURE)] or served
        if chosen:
            key = (*chosen[-1], type(exc).__name__)
    return f"{key[0]}:{key[1]} {key[2]}" if key in KNOWN_500S else None


def examples_for(group: str, weight: float, total_weight: float) -> int:
    """A case's part of its group's share of TOTAL, by its weight among the group's cases."""
    return max(2, round(TOTAL * SHARES[group] * weight / max(total_weight, 1)))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # nothing written into the tree
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


# --- the session summary and the network guard -----------------------------------------------


class _Summary:
    def pytest_terminal_summary(self, terminalreporter):
        if not RUNS:
            return
        groups, cases = Counter(), Counter()
        for case, n in RUNS.items():
            group = case.split(" ", 1)[0]
            groups[group] += n
            cases[group] += 1
        terminalreporter.write_sep("-", "fuzz inputs")
        answers = Counter()
        for (case, kind), n in ANSWERS.items():
            answers[case.split(" ", 1)[0], kind] += n
        for group, n in sorted(groups.items()):
            kinds = ", ".join(f"{k} {answers[g, k]}" for g, k in sorted(answers) if g == group)
            terminalreporter.write_line(
                f"{group}: {n} inputs over {cases[group]} targets ({kinds})"
            )
        if os.environ.get("FUZZ_VERBOSE"):
            for case, n in sorted(RUNS.items()):
                kinds = ", ".join(f"{k} {ANSWERS[c, k]}" for c, k in sorted(ANSWERS) if c == case)
                terminalreporter.write_line(f"  {case}: {n} ({kinds})")
        for bug, n in sorted(KNOWN_HITS.items()):
            terminalreporter.write_line(f"known 500 (reported, not failed): {bug}: {n} inputs")
        terminalreporter.write_line(
            f"total: {sum(RUNS.values())} inputs over {len(RUNS)} targets "
            f"(FUZZ_EXAMPLES={TOTAL}, {'set' if os.environ.get('FUZZ_EXAMPLES') else 'default'})"
        )


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary(request):
    manager = request.config.pluginmanager
    if not manager.has_plugin("fuzz-inputs-summary"):
        manager.register(_Summary(), "fuzz-inputs-summary")
    yield
    print(f"\nfuzz inputs run in this module: {sum(RUNS.values())}")  # shown with -s


def _loopback(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%")[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Refuse any name lookup or connection past loopback, and fail the test if one is tried."""
    attempts: list[str] = []
    lookup, connect, connect_ex = (
        socket.getaddrinfo,
        socket.socket.connect,
        socket.socket.connect_ex,
    )

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _loopback(host):
            attempts.append(f"getaddrinfo({host!r})")
            raise socket.gaierror(socket.EAI_NONAME, "refused by the fuzz tests' network guard")
        return lookup(host, *args, **kwargs)

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            attempts.append(f"connect({address!r})")
            raise ConnectionRefusedError("refused by the fuzz tests' network guard")

    def guarded_connect(sock, address):
        check(sock, address)
        return connect(sock, address)

    def guarded_connect_ex(sock, address):
        check(sock, address)
        return connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield
    assert not attempts, f"network past loopback was tried: {attempts[:10]}"


@pytest.fixture(scope="module")
def refusing_dns():
    """A DNS stub on loopback that answers every query at once with REFUSED (one for the
    module: stopping it waits for its socket's timeout)."""
    stub = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stub.bind(("127.0.0.1", 0))
    stub.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                query, client = stub.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(query) >= 12:  # same id and question; a response, rcode REFUSED
                flags = (0x8000 | (query[2] & 0x78) << 8 | 5).to_bytes(2, "big")
                stub.sendto(query[:2] + flags + query[4:6] + bytes(6) + query[12:], client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{stub.getsockname()[1]}"
    stop.set()
    thread.join()
    stub.close()


@pytest.fixture(autouse=True)
def loopback_dns(settings, refusing_dns):
    """Probes resolve names with c-ares (aiodns), not through Python's socket module, and
    before PROBE_ALLOWED_NETWORKS judges the addresses: their DNS server is the refusing stub
    on loopback here, so no lookup leaves the machine."""
    settings.PROBE_DNS_SERVERS = [refusing_dns]


class _Answers200(BaseHTTPRequestHandler):
    """Every GET and POST: 200 with a small JSON body (a probe's or a webhook's target)."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(min(length, 1 << 20))
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def live_endpoint():
    """A live HTTP server on loopback for the whole module (one per test would pay its
    half-second shutdown poll a hundred times)."""
    with serving(_Answers200) as server:
        yield server


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    owner: Any
    viewer: Any
    environment: Environment
    other_environment: Environment
    connections: list[int]
    credentials: list[int]
    memberships: list[int]
    tokens: list[int]
    channels: list[int]
    rules: list[int]
    windows: list[int]
    events: list[int]
    deliveries: list[int]
    dead_url: str
    live_url: str
    clients: dict[str, Client] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)

    @property
    def environments(self) -> list[int]:
        return [self.environment.pk, self.other_environment.pk]

    def ids(self, name: str) -> list[int] | None:
        """The world's ids of what a path segment, parameter or field names ("channels",
        "member_id", "rule-environments", "credential"), or None when it names nothing known."""
        resource = RESOURCES.get(name.rsplit("-", 1)[-1])
        return getattr(self, resource) if resource else None

    def client(self, persona: str) -> Client:
        """The persona's client, signed in again if the last input signed it out (a sign-out,
        a password change or a sign-in rolled back with its session)."""
        client = self.clients[persona]
        cookie = client.cookies.get(django_settings.SESSION_COOKIE_NAME)
        if cookie is None or cookie.value != self.sessions.get(persona):
            client.force_login(self.viewer if persona.endswith("viewer") else self.owner)
            self.sessions[persona] = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        return client


# What names a kind of the world's rows: a path's resource segment, a parameter, a field.
RESOURCES = {
    **dict.fromkeys(["connections", "connection", "ids", "depends_on", "parent"], "connections"),
    **dict.fromkeys(["credentials", "credential"], "credentials"),
    **dict.fromkeys(["environments", "environment"], "environments"),
    **dict.fromkeys(["members", "member", "member_id"], "memberships"),
    **dict.fromkeys(["tokens", "token"], "tokens"),
    **dict.fromkeys(["channels", "channel"], "channels"),
    **dict.fromkeys(["rules", "rule", "rule_pk"], "rules"),
    **dict.fromkeys(["windows", "window"], "windows"),
    **dict.fromkeys(["events", "event"], "events"),
    **dict.fromkeys(["deliveries", "delivery"], "deliveries"),
}


@pytest.fixture
def fuzz_world(owner, stranger, make_connection, dead_url, live_endpoint) -> World:
    """The owner's connections, credential, environments (the stranger views "prod"), a
    dependency, a token; notification channels (a webhook of "prod", an email of the owner's
    own) with their rules, an event, a delivery and a watch; maintenance windows (one active
    now, one recurring)."""
    live_url = live_endpoint.url
    credential = Credential(name="token", kind="bearer_token", owner=owner)
    credential.endpoints = [dead_url, live_url]
    credential.set_secret({"token": "fuzz-secret-token"})
    credential.save()
    environment = Environment.objects.create(name="prod", owner=owner, description="p")
    other = Environment.objects.create(name="stage", owner=owner)
    one = make_connection(Status.CONNECTED, name="api", url=f"{dead_url}/api")
    two = make_connection(Status.REGISTERED, name="db", url=f"{live_url}/db")
    three = make_connection(Status.MAINTENANCE, name="old", resume_status=Status.CONNECTED)
    environment.connections.add(one, two)
    environment.credentials.add(credential)
    membership = EnvironmentMembership.objects.create(
        environment=environment, user=stranger, role="viewer"
    )
    token, _ = ApiToken.issue(owner, "fuzz")
    Dependency.objects.create(child=two, parent=one, created_by=owner)
    transition = ConnectionTransition.objects.create(
        connection=one,
        from_status=Status.REGISTERED,
        to_status=Status.CONNECTED,
        trigger=Trigger.PROBE,
        reason="fuzz",
    )
    hook, _ = notify_channels.create_channel(
        owner,
        name="hook",
        kind="webhook",
        destination=f"{dead_url}/hook?token=fuzz-secret-token",
        environment=environment,
    )
    mail, _ = notify_channels.create_channel(
        owner, name="mail", kind="email", destination="ops@example.com"
    )
    message = Message.objects.create(channel=hook, key="fuzz", kind="test", title="t", body="b")
    delivery = Delivery.objects.create(
        message=message, channel=hook, attempt=1, ok=False, error="refused"
    )
    Watch.objects.create(user=owner, connection=one)
    now = timezone.now()
    active = maintenance_windows.save_window(
        owner,
        Window(),
        name="now",
        kind="one_off",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        connections=[Connection.objects.get(pk=two.pk)],
        environment=environment,
    )
    weekly = maintenance_windows.save_window(
        owner,
        Window(),
        name="weekly",
        kind="recurring",
        weekdays=[0, 3],
        start_time=now.time().replace(microsecond=0),
        duration_minutes=60,
        timezone="Europe/Amsterdam",
        environments=[other],
    )
    fuzz_world = World(
        owner=owner,
        viewer=stranger,
        environment=environment,
        other_environment=other,
        connections=[one.pk, two.pk, three.pk],
        credentials=[credential.pk],
        memberships=[membership.pk],
        tokens=[token.pk],
        channels=[hook.pk, mail.pk],
        rules=[rule.pk for channel in (hook, mail) for rule in channel.rules.all()],
        windows=[active.pk, weekly.pk],
        events=list(Event.objects.filter(transition=transition).values_list("pk", flat=True)),
        deliveries=[delivery.pk],
        dead_url=dead_url,
        live_url=live_url,
    )
    # the owner is staff, and has invited someone: the users page's forms are fuzzed too
    type(owner).objects.filter(pk=owner.pk).update(is_staff=True)
    owner.is_staff = True
    invitations.invite(
        owner, email="invited@example.com", username="invited", first_name="", last_name=""
    )
    for name in ("owner", "viewer"):
        fuzz_world.clients[name] = Client()
        fuzz_world.clients[f"api-{name}"] = APIClient()
    return fuzz_world


# --- values: valid ones (to reach deep code), hostile ones (to break it) ----------------------

MAX_ID = 2**63 - 1
HUGE_INTS = st.one_of(
    st.integers(MAX_ID - 2, MAX_ID + 3),
    st.integers(10**18, 10**40),
    st.integers(-(10**40), -1),
    st.sampled_from([0, 2**31, 2**32, 2**64, -(2**63), -(2**63) - 1, 10**100]),
)
SPECIAL_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\t\r\n ",
        "\u00a0",
        "\u200b",
        "\ufeff",
        "\x00",
        "a\x00b",
        "0",
        "-0",
        "00",
        "007",
        "1e5",
        "1e999",
        "NaN",
        "inf",
        "-1",
        "1.5",
        "0x10",
        "1_000",
        "\u0663",
        "\u00b2",
        "\uff11",
        "true",
        "null",
        "None",
        "[]",
        "{}",
        "a",
        "http://a b/",
        "http://[::1",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:-1/",
        "http://127.0.0.1:0/",
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://",
        "http:///x",
        "//127.0.0.1/",
        "http://user:pw@127.0.0.1:1/",
        "http://[fe80::1%25eth0]:1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/",
        "http://example.com/",
        "http://\u0661\u0662\u0667.0.0.1/",
        "http://xn--/",
        "http://127.0.0.1:1/\r\nX-Injected: 1",
        "http://127.0.0.1:1/\x00",
        "ftp://127.0.0.1/",
        "https://[::1]:1/" + "a" * 600,
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "../../etc/passwd",
        "%00",
        "%",
        "\\",
        '"',
        "{{ 7*7 }}",
        "{% debug %}",
        "${jndi:ldap://x}",
        "\ud800",
        "\udfff",
        "a\ud83d",
        "\U0001f600" * 50,
        "e\u0301" * 100,
    ]
)
LONE_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
ANY_TEXT = st.text(max_size=120)
SURROGATE_TEXT = st.lists(st.one_of(st.characters(), LONE_SURROGATES), max_size=12).map("".join)
LONG_STRINGS = st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(["a", "\u00e9", "[", "\x00", " ", "9", "\U0001f600", "<a>", "%"]),
    st.integers(250, 70_000),
)
WITH_NUL = ANY_TEXT.map(lambda s: s + "\x00" + s)
WHITESPACE = st.text(alphabet=" \t\r\n\x0b\x0c\u00a0\u2028\u3000\u200b", min_size=1, max_size=20)
NUMBER_STRINGS = st.one_of(st.integers().map(str), HUGE_INTS.map(str), st.floats().map(str))
NAMES = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=30)
LOCATION_NAMES = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?", fullmatch=True)
USERNAMES = st.sampled_from(["owner", "stranger", "nobody", "OWNER", " stranger "])
HOSTS = st.sampled_from(
    [
        "127.0.0.1",
        "localhost",
        "LOCALHOST",
        "[::1]",
        "127.1",
        "0x7f.1",
        "2130706433",
        "[::ffff:127.0.0.1]",
        "127.0.0.1.",
        "a b",
        "[::1",
        "\u4f8b\u3048.\u30c6\u30b9\u30c8",
        "example.com",
        "169.254.169.254",
        "10.1.2.3",
        "",
        "%00",
    ]
)


# The shapes the last security review found, each a 500 or worse somewhere once.
REVIEW_NAMES = st.sampled_from(
    [
        "ops\r\nBcc: x@example.com",
        "ops\nBcc: x@example.com",
        "ops\rSubject: x",
        "a\u2028b",
        "a\u2029b",
        "\u202eexe.txt",
        "\u202dx\u202c",
        "\u2066a\u2069",
        "a\x85b",
        "a\x1b[31mb",
    ]
)
REVIEW_IDS = st.one_of(
    st.sampled_from(
        [
            "\u00b2",
            "\u2460",
            "\u0663",
            "\uff11",
            "1_0",
            " 1",
            "1\n",
            "+1",
            "0",
            "-1",
            "1.0",
            "1e3",
            "0x1",
            str(2**63),
            str(2**63 - 1),
            str(2**64),
            "9" * 19,
        ]
    ),
    st.integers(10**19, 10**20 - 1).map(str),  # 20 digits
)
EDGE_TIMES = st.sampled_from(
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999+00:00",
        "0001-01-01T00:00",
        "9999-12-31T23:59",
        "0001-01-01 00:00",
        "2024-02-30T10:00",
        "2024-03-31T02:30",
        "2024-10-27T02:30",
        "2024-13-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+14:01",
        "2024-01-01",
        "-62135596800",
        "now",
    ]
)
EDGE_CLOCK_TIMES = st.sampled_from(
    ["24:00", "23:59:60", "-1:00", "12:00+14:00", "\u00b2:00", "25:61", "00:00:00.9999999", "12"]
)
VALID_TIMEZONES = st.sampled_from(
    ["UTC", "Europe/Amsterdam", "Asia/Kathmandu", "Pacific/Kiritimati", "America/St_Johns"]
)
HOSTILE_TIMEZONES = st.sampled_from(
    [
        "localtime",
        "Factory",
        "posixrules",
        "UTC0",
        "EST5EDT",
        "Etc/GMT+14",
        "right/UTC",
        "posix/Europe/Amsterdam",
        "US/Pacific-New",
        "europe/amsterdam",
        "Europe/Amsterdam ",
        "../../../etc/passwd",
        "/etc/localtime",
        "Europe/../UTC",
        "UTC\x00",
        "+14:00",
        "Z",
        "A" * 65,
    ]
)
HOSTILE_DESTINATIONS = st.sampled_from(
    [
        "json://127.0.0.1:1/ok,rsyslog://169.254.169.254",
        "json://127.0.0.1:1/ok rsyslog://169.254.169.254",
        "json://127.0.0.1:1/ok;json://169.254.169.254/",
        "json://127.0.0.1:1/?x=a,rsyslog://169.254.169.254",
        "json://127.0.0.1:1/ok\njson://10.0.0.1/",
        "json://user:s3cr3t@127.0.0.1:1/?token=s3cr3t",
        "json://[::ffff:169.254.169.254]/",
        "json://2130706433/",
        "form://169.254.169.254/",
        "ntfy://169.254.169.254/topic",
        "windows://",
        "http://127.0.0.1:1/hook?token=s3cr3t-in-query&api_key=AKIAFUZZ",
        "http://user:s3cr3t@127.0.0.1:1/hook?sig=s3cr3t",
        "http://127.0.0.1:1/hook#s3cr3t",
        "ops@example.com,\r\nBcc: x@example.com",
        "ops@example.com\r\nBcc: x@example.com",
        ",".join(["a@example.com"] * 11),
    ]
)


def cursor_of(values: Any, pk: Any) -> str:
    raw = json.dumps([values, pk], ensure_ascii=False).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# base64url cursors of the table's keyset pager (connections.listing), foreign or at the edges
CURSORS = st.one_of(
    st.just(cursor_of(["0001-01-01T00:00:00+14:00"], 1)),
    st.builds(
        cursor_of,
        st.one_of(
            EDGE_TIMES.map(lambda t: [t]),
            st.lists(st.one_of(EDGE_TIMES, st.booleans(), st.none(), ANY_TEXT), max_size=3),
            st.just(["\ud800"]),
            st.just(["a" * 501]),
        ),
        st.one_of(
            st.sampled_from([1, 0, -1, 2**63, 2**64, "1", "\u00b2", None, True, 1.5, 1e300]),
            st.integers(1, 10),
        ),
    ),
    st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    st.sampled_from(["", "=", "%", "a" * 3001, "W10", "e30"]),
)
SORTS = st.sampled_from(["created_at", "-created_at", "name", "-name", "kind", "url", "managed"])
REVIEW_SHAPES = st.one_of(
    REVIEW_NAMES, REVIEW_IDS, EDGE_TIMES, EDGE_CLOCK_TIMES, HOSTILE_TIMEZONES, HOSTILE_DESTINATIONS
)


def good_url(fuzz_world: World) -> st.SearchStrategy[str]:
    """A URL this world may use: the dead port or the live server, a fresh path each time."""
    return st.builds(
        "{}/{}".format,
        st.sampled_from([fuzz_world.dead_url, fuzz_world.live_url]),
        st.integers(0, 10**6),
    )


def url_strategy(fuzz_world: World) -> st.SearchStrategy[str]:
    dead_port, live_port = (
        fuzz_world.dead_url.rsplit(":", 1)[1],
        fuzz_world.live_url.rsplit(":", 1)[1],
    )
    ports = st.sampled_from(
        [dead_port, dead_port, live_port, "", "0", "99999", "-1", "abc", "65536", "1" * 30]
    )
    schemes = st.sampled_from(["http", "https", "HTTP", "javascript", "ftp", "", "file"])
    paths = st.one_of(st.just("/"), st.just(""), ANY_TEXT.map(lambda s: "/" + s))
    built = st.builds(
        lambda scheme, host, port, path: f"{scheme}://{host}{':' + port if port else ''}{path}",
        schemes,
        HOSTS,
        ports,
        paths,
    )
    return st.one_of(good_url(fuzz_world), built, SPECIAL_STRINGS)


def hostile_text(fuzz_world: World) -> st.SearchStrategy[str]:
    return st.one_of(
        SPECIAL_STRINGS,
        ANY_TEXT,
        SURROGATE_TEXT,
        LONG_STRINGS,
        WITH_NUL,
        WHITESPACE,
        NUMBER_STRINGS,
        url_strategy(fuzz_world),
        REVIEW_SHAPES,
    )


def kubeconfig_text(fuzz_world: World, *, hostile: bool) -> st.SearchStrategy[str]:
    """A kubeconfig (YAML) whose clusters are this world's loopback URLs; ``hostile``: any
    field may be anything, and the text may be no kubeconfig at all."""
    text = hostile_text(fuzz_world) if hostile else NAMES
    name = st.one_of(NAMES, text)
    server = url_strategy(fuzz_world) if hostile else good_url(fuzz_world)
    user = st.one_of(
        st.fixed_dictionaries({"token": st.one_of(NAMES, text)}),
        st.fixed_dictionaries({"username": NAMES, "password": st.one_of(NAMES, text)}),
        *(
            [
                st.fixed_dictionaries({"client-key-data": ANY_TEXT}),
                st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=2),
            ]
            if hostile
            else []
        ),
    )

    def document(names, servers, users, insecure, namespace, current):
        servers = (servers * len(names))[: len(names)]
        users = (users * len(names))[: len(names)]
        cluster = {"insecure-skip-tls-verify": True} if insecure else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": n, "cluster": {"server": s, **cluster}}
                for n, s in zip(names, servers, strict=True)
            ],
            "users": [{"name": n, "user": u} for n, u in zip(names, users, strict=True)],
            "contexts": [
                {"name": n, "context": {"cluster": n, "user": n, "namespace": namespace}}
                for n in names
            ],
            "current-context": current or names[0],
        }

    def dump(value) -> str:
        try:
            return yaml.safe_dump(value, allow_unicode=True)
        except (yaml.YAMLError, UnicodeError):
            return json.dumps(value)

    documents = st.builds(
        document,
        st.lists(name, min_size=1, max_size=3, unique=True),
        st.lists(server, min_size=1, max_size=3),
        st.lists(user, min_size=1, max_size=3),
        st.booleans() if hostile else st.just(False),
        st.one_of(st.just("default"), text),
        st.one_of(st.just(""), name),
    ).map(dump)
    if not hostile:
        return documents
    return st.one_of(documents, documents, text, st.just("apiVersion: v1\n" * 2))


# A field: (valid values, hostile values). A submission makes a few of its fields hostile (one,
# mostly) and the others valid (or, now and then, absent): every hostile value gets to meet
# otherwise valid input, and so the code behind the validation.
Field = tuple[st.SearchStrategy, st.SearchStrategy]


def mostly(usual: st.SearchStrategy, unusual: st.SearchStrategy, odds: int = 3):
    """``usual`` ``odds`` times in ``odds + 1``, else ``unusual`` (``st.one_of`` gives each
    distinct branch an equal share, however often it is listed)."""
    return st.sampled_from([True] * odds + [False]).flatmap(lambda yes: usual if yes else unusual)


ABSENT = "\x00absent"  # a valid value that is not sent: an unticked checkbox, no radio chosen


@st.composite
def submission(draw, fields: dict[str, Field], together=None, base=True) -> dict[str, Any]:
    """Mostly a few fields hostile and the others valid or absent. With ``together`` (values
    that are only valid together: a channel's kind and destination, a window's kind and
    times), a third of the time those, over every field valid (``base``) or none, and then
    one field hostile or none: a hostile value meets a submission that would succeed."""
    names = list(fields)
    if together is not None and draw(st.sampled_from([True, False, False]), label="together"):
        values = {n: draw(valid, label=n) for n, (valid, _) in fields.items()} if base else {}
        values.update(draw(together, label="together"))
        if names and draw(st.booleans(), label="one hostile"):
            name = draw(st.sampled_from(names), label="hostile field")
            values[name] = draw(fields[name][1], label=name)
        return {name: value for name, value in values.items() if value != ABSENT}
    k = min(len(names), draw(st.sampled_from([1, 1, 1, 1, 0, 0, 2, 3]), label="hostile fields"))
    hostile = (
        draw(st.lists(st.sampled_from(names), min_size=k, max_size=k, unique=True)) if k else []
    )
    values = {}
    for name, (valid, bad) in fields.items():
        if name in hostile:
            values[name] = draw(bad, label=name)
        elif draw(st.integers(0, 9), label=f"{name} present"):
            values[name] = draw(valid, label=name)
    return {name: value for name, value in values.items() if value != ABSENT}


def text_field(fuzz_world: World, valid=NAMES) -> Field:
    return valid, hostile_text(fuzz_world)


def choice_field(fuzz_world: World, choices) -> Field:
    return st.sampled_from(list(choices)), hostile_text(fuzz_world)


def id_field(fuzz_world: World, ids: list[int]) -> Field:
    """An id as a form posts it."""
    return st.sampled_from(ids).map(str), st.one_of(
        REVIEW_IDS, NUMBER_STRINGS, hostile_text(fuzz_world)
    )


def ids_field(fuzz_world: World, ids: list[int]) -> Field:
    """Several ids under one name (a multiple select)."""
    valid, hostile = id_field(fuzz_world, ids)
    return st.lists(valid, max_size=3), st.lists(st.one_of(valid, hostile), min_size=1, max_size=4)


def number_field(low: int, high: int) -> Field:
    return st.integers(low, high).map(str), st.one_of(
        st.integers(low - 10, high + 10).map(str), NUMBER_STRINGS, REVIEW_IDS, SPECIAL_STRINGS
    )


# --- HTML forms -------------------------------------------------------------------------------


@dataclass
class Form:
    name: str
    ids: Any = None  # world -> the ids its URL takes, or None
    fields: Any = lambda fuzz_world: {}  # world -> {name: Field}
    files: tuple[str, ...] = ()

    def path(self, fuzz_world: World) -> st.SearchStrategy[str]:
        if self.ids is None:
            return st.just(reverse(self.name))
        real = st.sampled_from(self.ids(fuzz_world))
        pk = mostly(real, st.one_of(st.integers(0, 10**25), REVIEW_IDS))
        template = reverse(self.name, args=[123456789]).replace("123456789", "{}")
        return pk.map(template.format)  # an id of 19 or more digits: no URL, 404


def _to(fuzz_world: World) -> Field:
    return choice_field(fuzz_world, [*Status.values, "resume"])


def _next(fuzz_world: World) -> Field:
    return (
        st.sampled_from(["/connections/", "/environments/", ""]),
        st.one_of(
            st.sampled_from(["//evil.example/", "https://evil.example/", "/\\evil", "a"]),
            hostile_text(fuzz_world),
        ),
    )


def _connection_add(w: World) -> dict[str, Field]:
    return {
        "kind": choice_field(w, [k for k, _ in kind_choices()]),
        "name": text_field(w),
        "url": (good_url(w), url_strategy(w)),
        "credential": id_field(w, w.credentials),
        "new_credential_kind": (st.just(""), choice_field(w, Credential.Kind.values)[0]),
        "new_credential_name": text_field(w),
        "new_credential_username": text_field(w),
        "new_credential_secret": (
            st.one_of(NAMES, kubeconfig_text(w, hostile=False)),
            st.one_of(hostile_text(w), kubeconfig_text(w, hostile=True)),
        ),
        "environments": ids_field(w, w.environments),
        "failure_threshold": number_field(2, 100),
        "probe_interval": number_field(5, 86400),
    }


def _connection_edit(w: World) -> dict[str, Field]:
    """The edit page's fields; ``version`` is mostly a real signed snapshot (of one of the
    connections, so often another one's: the conflict path), sometimes hostile text."""
    from connections import editing

    versions = [
        editing.sign_snapshot(editing.snapshot(c))
        for c in Connection.all_objects.filter(pk__in=w.connections)
    ]
    return {
        "name": text_field(w),
        "url": (good_url(w), url_strategy(w)),
        "credential": id_field(w, w.credentials),
        "environments": ids_field(w, w.environments),
        "environments_shown": ids_field(w, w.environments),
        "failure_threshold": number_field(2, 100),
        "probe_interval": number_field(5, 86400),
        "retry_interval": number_field(5, 86400),
        "version": (st.sampled_from(versions), hostile_text(w)),
    }


def _credential(w: World) -> dict[str, Field]:
    return {
        "name": text_field(w),
        "kind": choice_field(w, Credential.Kind.values),
        "allow_insecure_tls": (st.sampled_from(["on", ""]), hostile_text(w)),
        "username": text_field(w),
        "secret": (
            st.one_of(NAMES, kubeconfig_text(w, hostile=False)),
            st.one_of(hostile_text(w), kubeconfig_text(w, hostile=True)),
        ),
        "endpoints_text": (
            st.lists(st.sampled_from([w.dead_url, w.live_url]), max_size=2).map("\n".join),
            st.one_of(st.lists(url_strategy(w), max_size=4).map("\n".join), hostile_text(w)),
        ),
    }


def _bulk(w: World) -> dict[str, Field]:
    transitions = [f"transition:{value}" for value, _ in BULK_ACTIONS]
    assignments = [f"{verb}:{pk}" for verb in ("assign", "unassign") for pk in w.environments]
    ids, bad_ids = ids_field(w, w.connections)
    return {
        "action": (
            st.sampled_from(transitions + assignments),
            st.one_of(st.builds("assign:{}".format, st.integers(0, 10**25)), hostile_text(w)),
        ),
        "ids": (
            ids.map(" ".join),
            st.one_of(bad_ids.map(" ".join), bad_ids.map(",".join), hostile_text(w)),
        ),
        "all_matching": (st.sampled_from(["", "on"]), hostile_text(w)),
        "reason": text_field(w),
        "query": (
            st.sampled_from(["status=connected", "q=api", f"environment={w.environment.pk}"]),
            query_strings(w),
        ),
        "next": _next(w),
    }


FORMS = [
    Form("connections:add", fields=_connection_add),
    Form(
        "connections:import",
        fields=lambda w: {
            "text": (kubeconfig_text(w, hostile=False), kubeconfig_text(w, hostile=True)),
            "environments": ids_field(w, w.environments),
            "allow_insecure_tls": (st.sampled_from(["", "on"]), hostile_text(w)),
        },
        files=("file",),
    ),
    Form("connections:edit", lambda w: w.connections, _connection_edit),
    Form("connections:bulk", fields=_bulk),
    Form(
        "connections:transition",
        lambda w: w.connections,
        lambda w: {"to": _to(w), "reason": text_field(w), "next": _next(w)},
    ),
    Form(
        "environments:add",
        fields=lambda w: {"name": text_field(w), "description": text_field(w)},
    ),
    Form(
        "environments:edit",
        lambda w: w.environments,
        lambda w: {"name": text_field(w), "description": text_field(w)},
    ),
    Form(
        "environments:members",
        lambda w: w.environments,
        lambda w: {
            "username": (USERNAMES, hostile_text(w)),
            "role": choice_field(w, ["viewer", "editor"]),
            "remove": id_field(w, w.memberships),
        },
    ),
    Form(
        "environments:credentials",
        lambda w: w.environments,
        lambda w: {
            "credential": id_field(w, w.credentials),
            "remove": (st.sampled_from(["", "1"]), hostile_text(w)),
        },
    ),
    Form(
        "environments:connections",
        lambda w: w.environments,
        lambda w: {
            "connection": ids_field(w, w.connections),
            "remove": (st.sampled_from(["", "1"]), hostile_text(w)),
            "next": _next(w),
        },
    ),
    Form(
        "environments:transition",
        lambda w: w.environments,
        lambda w: {"to": _to(w), "reason": text_field(w)},
    ),
    Form("environments:delete", lambda w: w.environments),
    Form("credentials:add", fields=_credential),
    Form("credentials:edit", lambda w: w.credentials, _credential),
    Form("credentials:delete", lambda w: w.credentials),
    Form("tokens", fields=lambda w: {"name": text_field(w)}),
    Form("token-revoke", lambda w: w.tokens),
    Form(
        "locations:add",
        fields=lambda w: {"name": text_field(w, LOCATION_NAMES), "description": text_field(w)},
    ),
    Form(
        "locations:remove",
        lambda w: [a_location().pk],
        lambda w: {"confirm": (st.just("yes"), hostile_text(w))},
    ),
]


def a_location() -> Location:
    """A location for the form that removes one, made in its own test only: in the world, every
    "Probe now" of the other tests would go by rounds (connections/probing/now.py)."""
    location, _ = Location.objects.get_or_create(name="fuzz-west")
    return location


def _wire(value: str) -> bytes:
    """What a browser sends for the text: UTF-8, a lone surrogate as its (invalid) 3 bytes."""
    return value.encode("utf-8", "surrogatepass")


def urlencoded(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote_plus(k)}={quote_plus(_wire(v))}" for k, v in pairs).encode()


@st.composite
def form_submission(
    draw, fuzz_world: World, fields: dict[str, Field], files: tuple[str, ...] = (), together=None
):
    values = draw(submission(fields, together))
    pairs = [
        (name, item)
        for name, value in values.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    if draw(st.integers(0, 9)) == 0:  # a field twice, or one the form does not know
        pairs.append((draw(st.sampled_from([*fields, "x"])), draw(hostile_text(fuzz_world))))
    files = {}
    for name in files:
        if draw(st.booleans()):
            content = draw(
                st.one_of(
                    kubeconfig_text(fuzz_world, hostile=False).map(_wire),
                    kubeconfig_text(fuzz_world, hostile=True).map(_wire),
                    st.binary(max_size=2000),
                    st.just(b"\xff\xfe" + "apiVersion: v1".encode("utf-16-le")),
                    st.just(b"a" * (512 * 1024 + 1)),
                )
            )
            filename = draw(st.sampled_from(["k.yaml", 'a b;"c.yaml', "\u00e9.yaml", "x" * 300]))
            files[name] = SimpleUploadedFile(filename, content)
    return pairs, files


def post_form(client: Client, path: str, pairs, files, htmx: bool, multipart: bool = False):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    path = quote(path, safe="/%?=&")
    if files or multipart:
        data: dict[str, Any] = {}
        for name, value in pairs:
            data.setdefault(name, []).append(_wire(value))
        data.update(files)
        return client.post(path, data, **headers)
    return client.post(
        path, urlencoded(pairs), content_type="application/x-www-form-urlencoded", **headers
    )


def _run(case: str, send) -> None:
    """One input, in a savepoint rolled back afterwards; the answer is below 500.

    A 500 that is a known bug (``KNOWN_500S``: reported, not fixed yet) is counted, not
    failed, so the fuzz goes on finding the others; ``FUZZ_STRICT=1`` fails on those too."""
    RUNS[case] += 1
    try:
        with transaction.atomic():
            response = send()
            transaction.set_rollback(True)
    except Exception as exc:
        bug = known_bug(exc)
        if bug is None or STRICT:
            raise
        KNOWN_HITS[bug] += 1
        return
    ANSWERS[case, f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, (case, response.status_code, response.content[:300])


PERSONAS = st.sampled_from(["owner", "owner", "owner", "viewer"])


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
@fuzz_settings(examples_for("forms", 1, len(FORMS)))
@given(data=st.data())
def test_every_form_answers_below_500(fuzz_world, form, data):
    """The hand-made forms: fields described by hand, with the valid values that reach deep."""
    path = data.draw(form.path(fuzz_world), label="path")
    persona = data.draw(PERSONAS, label="persona")
    fields = form.fields(fuzz_world)
    pairs, files = data.draw(form_submission(fuzz_world, fields, form.files), label="fields")
    htmx = data.draw(st.booleans(), label="htmx")
    client = fuzz_world.client(persona)
    _run(f"forms {form.name}", lambda: post_form(client, path, pairs, files, htmx))


# --- values valid only together ---------------------------------------------------------------


def _schedule(local: bool) -> st.SearchStrategy[dict[str, Any]]:
    """A one-off window (its end after its start) or a recurring one (days, time, length), as
    the API takes it or, ``local``, as the form's wall-clock fields do."""
    now = timezone.now().replace(second=0, microsecond=0)

    def one_off(start: int, length: int) -> dict[str, Any]:
        begin = now + timedelta(minutes=start)
        times = (begin, begin + timedelta(minutes=length))
        if local:
            shown = [t.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M") for t in times]
        else:
            shown = [t.isoformat() for t in times]
        return {"kind": "one_off", "starts_at": shown[0], "ends_at": shown[1]}

    def recurring(days: list[int], hour: int, minute: int, length: int) -> dict[str, Any]:
        return {
            "kind": "recurring",
            "weekdays": days,
            "start_time": f"{hour:02}:{minute:02}",
            "duration_minutes": length,
        }

    return st.one_of(
        st.builds(one_off, st.integers(-1440, 30 * 1440), st.integers(1, 2880)),
        st.builds(
            recurring,
            st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True),
            st.integers(0, 23),
            st.integers(0, 59),
            st.integers(1, 10080),
        ),
    )


def _window(fuzz_world: World, local: bool) -> st.SearchStrategy[dict[str, Any]]:
    """A window the owner may save: its schedule, a zone, connections of "prod"."""
    return st.builds(
        lambda schedule, name, zone, connections: {
            "name": name,
            **schedule,
            "timezone": zone,
            "connections": connections,
            "environments": [],
            "kinds": [],
        },
        _schedule(local),
        NAMES,
        VALID_TIMEZONES,
        st.lists(st.sampled_from(fuzz_world.connections[:2]), max_size=2, unique=True),
    )


def _channel(fuzz_world: World) -> st.SearchStrategy[dict[str, Any]]:
    """A kind and a destination of that kind, on loopback."""
    dead_port = fuzz_world.dead_url.rsplit(":", 1)[1]
    pairs = st.one_of(
        st.tuples(st.just("webhook"), good_url(fuzz_world).map(lambda url: f"{url}?token=fuzz")),
        st.tuples(
            st.just("email"), st.sampled_from(["ops@example.com", "a@b.example, c@d.example"])
        ),
        st.tuples(st.just("apprise"), st.just(f"json://127.0.0.1:{dead_port}/")),
    )
    return st.builds(
        lambda pair, name: {"name": name, "kind": pair[0], "destination": pair[1]}, pairs, NAMES
    )


def _as_form(values: dict[str, Any]) -> dict[str, Any]:
    """JSON values as a form posts them: text, several values as a list of text."""
    return {
        name: [str(v) for v in value] if isinstance(value, list) else str(value)
        for name, value in values.items()
    }


# Valid only together, by API operation or the URL pattern a form posts to.
TOGETHER: dict[str, Callable[[World], st.SearchStrategy[dict[str, Any]]]] = {
    **dict.fromkeys(
        [
            "POST /api/maintenance/windows/",
            "PUT /api/maintenance/windows/{id}/",
            "PATCH /api/maintenance/windows/{id}/",
        ],
        lambda w: _window(w, local=False),
    ),
    **dict.fromkeys(
        ["maintenance:add", "maintenance:edit"],
        lambda w: _window(w, local=True).map(lambda v: _as_form({**v, "environment": ""})),
    ),
    **dict.fromkeys(
        [
            "POST /api/notifications/channels/",
            "PUT /api/notifications/channels/{id}/",
            "PATCH /api/notifications/channels/{id}/",
        ],
        _channel,
    ),
    **dict.fromkeys(
        ["notifications:channel-add", "notifications:channel-edit"],
        lambda w: _channel(w).map(lambda v: _as_form({**v, "environment": ""})),
    ),
}


# --- forms read from the pages ----------------------------------------------------------------

# How to fill a page pattern's parameters with the world's ids: by pattern name, then namespace.
PAGE_PARAMETERS: dict[tuple[str, str], Callable[[World], Any]] = {
    ("connections", "pk"): lambda w: w.connections[1],  # "db": a parent, windows, environments
    ("credentials", "pk"): lambda w: w.credentials[0],
    ("environments", "pk"): lambda w: w.environment.pk,
    ("token-revoke", "pk"): lambda w: w.tokens[0],
    ("notifications", "pk"): lambda w: w.channels[0],  # the webhook: it has a secret to rotate
    ("notifications:rule-delete", "rule_pk"): lambda w: w.rules[0],
    ("notifications:watch-connection", "pk"): lambda w: w.connections[0],
    ("notifications:watch-environment", "pk"): lambda w: w.environment.pk,
    ("maintenance", "pk"): lambda w: w.windows[0],  # active now: "End now" is offered
    ("password_reset_confirm", "uidb64"): lambda w: urlsafe_base64_encode(force_bytes(w.owner.pk)),
    ("password_reset_confirm", "token"): lambda w: default_token_generator.make_token(w.owner),
    ("users", "pk"): lambda w: w.viewer.pk,
    ("connections:export", "fmt"): lambda w: "csv",
    ("users:invite-again", "pk"): lambda w: type(w.owner).objects.get(username="invited").pk,
    # no location in the world (see ``a_location``): a 404 here; the hand-made form removes one
    ("locations:remove", "pk"): lambda w: 987654321,
}

# URL patterns that take a POST but that no form posts to, and why. Every other pattern that
# answers a POST with anything but 405 must be reached by a form of the pages or of FORMS.
ANY_METHOD = "a page that answers a POST as it answers GET; its own forms are GET forms"
NOT_FORMS: dict[str, str] = {
    "users:set-password": "the invitee's password form, shown only in a browser that opened "
    "an invitation's link (tests/test_users_page.py)",
    "connections:list": ANY_METHOD,
    "connections:detail": ANY_METHOD,
    "credentials:list": ANY_METHOD,
    "environments:list": ANY_METHOD,
    "environments:detail": ANY_METHOD,
    "notifications:center": ANY_METHOD,
    "notifications:channels": ANY_METHOD,
    "notifications:channel": ANY_METHOD,
    "maintenance:list": ANY_METHOD,
    "maintenance:detail": ANY_METHOD,
    "favicon": "a redirect to the static icon, whatever the method",
    "healthz": "the load balancer's liveness check: any method, no input",
    "readyz": "the readiness check: any method, no input",
    "metrics": "Prometheus' scrape (a bearer token, or staff): any method, no input",
}


def fill_route(pattern: Pattern, fuzz_world: World) -> str:
    """The pattern's URL in this world; Underivable names a parameter nobody knows how to fill."""
    kwargs = {}
    for name in pattern.parameters:
        filler = PAGE_PARAMETERS.get((pattern.key, name)) or PAGE_PARAMETERS.get(
            (pattern.namespace, name)
        )
        if filler is None:
            raise Underivable(
                f"URL pattern '{pattern.key}' ({pattern.route}) has a parameter '{name}' the "
                f"fuzz cannot fill: add ({pattern.key!r} or {pattern.namespace!r}, {name!r}) to "
                "PAGE_PARAMETERS in tests/test_fuzz_inputs.py."
            )
        kwargs[name] = filler(fuzz_world)
    if pattern.key.startswith("/"):  # unnamed
        return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), pattern.key)
    return reverse(pattern.key, kwargs=kwargs)


def get_page(client: Client, path: str):
    """A GET (redirects followed) in a savepoint: what a page writes (a session) is undone."""
    with transaction.atomic():
        response = client.get(quote(path, safe="/%?=&"), follow=True)
        transaction.set_rollback(True)
    return response


@dataclass
class FormTarget:
    """The forms of the pages that post one set of fields to one URL pattern."""

    key: str  # the URL pattern of its action
    fields: dict[str, HtmlField]
    actions: list[str]  # the paths it posts to, as the pages wrote them
    multipart: bool
    pages: list[str] = field(default_factory=list)

    @property
    def field_names(self) -> frozenset[str]:
        return frozenset(self.fields) - {"csrfmiddlewaretoken"}

    @property
    def name(self) -> str:
        return f"{self.key} ({' '.join(sorted(self.field_names)) or 'no fields'})"


def derive_forms(fuzz_world: World) -> tuple[list[FormTarget], list[str]]:
    """Every distinct (action's URL pattern, field set) of the POST forms that the pages render
    to their owner, and what could not be derived."""
    client = Client()
    client.force_login(fuzz_world.owner)
    targets: dict[tuple[str, frozenset[str]], FormTarget] = {}
    problems = []
    for pattern in page_patterns():
        try:
            url = fill_route(pattern, fuzz_world)
        except Underivable as exc:
            problems.append(str(exc))
            continue
        response = get_page(client, url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        page = response.request["PATH_INFO"]
        for form in forms_of(response.content.decode(), page):
            actions = [form.action]
            if form.action_field is not None:  # a script sets its action to a field's value
                actions = form.fields[form.action_field].values
            keys = {pattern_key(action) for action in actions}
            if len(keys) != 1 or None in keys:
                problems.append(f"a form on {page} posts to {actions}: no (single) URL pattern")
                continue
            key = keys.pop()
            multipart = form.enctype == "multipart/form-data"
            target = targets.setdefault((key, form.field_names), FormTarget(key, {}, [], multipart))
            for name, control in form.fields.items():
                known = target.fields.setdefault(name, control)
                if known is not control:
                    known.values.extend(v for v in control.values if v not in known.values)
            target.actions.extend(a for a in actions if a not in target.actions)
            target.pages.append(page)
    return list(targets.values()), problems


HAND_MADE_FORMS = {form.name: form for form in FORMS}


def covering_form(fuzz_world: World, target: FormTarget) -> Form | None:
    """The hand-made form that fuzzes this target already: the same action, every field known."""
    form = HAND_MADE_FORMS.get(target.key)
    if form is None or not target.field_names <= {*form.fields(fuzz_world), *form.files}:
        return None
    return form


def local_times(days: int = 30) -> st.SearchStrategy[str]:
    """Wall-clock times around now, as a datetime-local input sends them."""
    now = timezone.now().replace(second=0, microsecond=0, tzinfo=None)
    return st.integers(-days * 1440, days * 1440).map(
        lambda minutes: (now + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")
    )


def destinations(fuzz_world: World) -> st.SearchStrategy[str]:
    """Destinations a channel may have here: a webhook to loopback (with a secret in its
    query), addresses, an Apprise URL to loopback."""
    dead_port = fuzz_world.dead_url.rsplit(":", 1)[1]
    return st.one_of(
        good_url(fuzz_world).map(lambda url: f"{url}?token=fuzz-secret"),
        st.sampled_from(["ops@example.com", "a@example.com, b@example.com"]),
        st.sampled_from([f"json://127.0.0.1:{dead_port}/", f"ntfy://127.0.0.1:{dead_port}/t"]),
    )


def name_hint(fuzz_world: World, name: str) -> Field | None:
    """What a field's name says its values are (text as a form or a query sends it)."""
    base = name.rsplit("-", 1)[-1]
    if base in ("timezone", "tz"):
        return VALID_TIMEZONES, st.one_of(HOSTILE_TIMEZONES, hostile_text(fuzz_world))
    if base == "destination":
        return destinations(fuzz_world), st.one_of(
            HOSTILE_DESTINATIONS, url_strategy(fuzz_world), hostile_text(fuzz_world)
        )
    if base in ("name", "reason", "description", "title"):
        return NAMES, st.one_of(REVIEW_NAMES, hostile_text(fuzz_world))
    if base == "username":
        return USERNAMES, hostile_text(fuzz_world)
    if base == "next":
        return _next(fuzz_world)
    if base == "url":
        return good_url(fuzz_world), url_strategy(fuzz_world)
    ids = fuzz_world.ids(name)
    if ids:
        return id_field(fuzz_world, ids)
    return None


def html_field(fuzz_world: World, control: HtmlField) -> Field:
    """What a browser may send for a field (valid: what the page offers) and what it could be
    made to send instead, by input type, then by name."""
    kind, values = control.kind, control.values
    hint = name_hint(fuzz_world, control.name)
    hostile = st.one_of(hint[1] if hint else hostile_text(fuzz_world), REVIEW_IDS)
    offered = st.sampled_from(values) if values else NAMES
    if kind in ("select", "checkbox") and control.multiple:
        choices = st.lists(offered, max_size=4, unique=True)
        return choices, st.lists(st.one_of(offered, hostile), min_size=1, max_size=4)
    if kind == "checkbox":
        return st.one_of(st.just(ABSENT), offered), hostile
    if kind == "radio" and not control.required:
        return st.one_of(st.just(ABSENT), offered), hostile
    if kind in ("select", "radio", "submit"):
        return offered, st.one_of(hostile, st.lists(offered, min_size=2, max_size=3))
    if kind == "hidden":
        return (st.just(values) if control.multiple else offered), hostile
    if kind in ("number", "range"):
        low = _int_attr(control, "min", -(10**6))
        high = max(low, _int_attr(control, "max", 10**6))
        valid = hint[0] if hint else st.integers(low, high).map(str)
        return valid, st.one_of(number_field(low, high)[1], hostile)
    given_values = [v for v in (*values, *control.suggested) if v]
    if kind == "datetime-local":
        valid = local_times()
        if given_values:
            valid = st.one_of(valid, st.sampled_from(given_values))
        return valid, st.one_of(EDGE_TIMES, hostile)
    if kind == "date":
        return local_times().map(lambda t: t[:10]), st.one_of(EDGE_TIMES, hostile)
    if kind == "time":
        return local_times().map(lambda t: t[11:]), st.one_of(EDGE_CLOCK_TIMES, hostile)
    if kind == "email":
        return st.sampled_from(["ops@example.com", "a@b.c"]), st.one_of(REVIEW_NAMES, hostile)
    if kind == "url":
        return good_url(fuzz_world), st.one_of(url_strategy(fuzz_world), hostile)
    if hint:  # text, search, password, textarea, …
        valid = (
            st.one_of(hint[0], st.sampled_from(control.suggested)) if control.suggested else hint[0]
        )
        return valid, hostile
    valid = st.one_of(NAMES, st.sampled_from(given_values)) if given_values else NAMES
    return valid, hostile


def _int_attr(control: HtmlField, name: str, default: int) -> int:
    try:
        return int(control.attrs.get(name, default))
    except ValueError:
        return default


def vary_ids(fuzz_world: World, path: str) -> st.SearchStrategy[str]:
    """The path, its ids now and then swapped for another of the world's or a hostile one."""
    parts = re.split(r"([0-9]+)", path)
    if len(parts) == 1:
        return st.just(path)
    every = sorted({pk for name in set(RESOURCES.values()) for pk in getattr(fuzz_world, name)})
    other = st.one_of(st.sampled_from(every).map(str), REVIEW_IDS, st.integers(0, 10**25).map(str))
    return st.tuples(
        *(mostly(st.just(part), other) if i % 2 else st.just(part) for i, part in enumerate(parts))
    ).map("".join)


def fuzz_rendered_form(fuzz_world: World, target: FormTarget, examples: int) -> None:
    form = HAND_MADE_FORMS.get(target.key)
    refined = form.fields(fuzz_world) if form else {}
    fields = {
        name: refined.get(name) or html_field(fuzz_world, control)
        for name, control in target.fields.items()
        if control.kind != "file"
    }
    files = tuple(name for name, control in target.fields.items() if control.kind == "file")
    together = TOGETHER[target.key](fuzz_world) if target.key in TOGETHER else None
    paths = st.sampled_from(target.actions).flatmap(lambda action: vary_ids(fuzz_world, action))

    @fuzz_settings(examples)
    @given(data=st.data())
    def fuzz(data):
        path = data.draw(paths, label="path")
        persona = data.draw(PERSONAS, label="persona")
        submitted = form_submission(fuzz_world, fields, files, together)
        pairs, uploads = data.draw(submitted, label="fields")
        htmx = data.draw(st.booleans(), label="htmx")
        client = fuzz_world.client(persona)
        _run(
            f"page-forms {target.name}",
            lambda: post_form(client, path, pairs, uploads, htmx, target.multipart),
        )

    fuzz()


def run_each(cases: list, fuzz: Callable[[Any], None], name: Callable[[Any], str]) -> None:
    """Fuzz every case, even after one fails; then fail with all that did."""
    failures = []
    for case in cases:
        try:
            fuzz(case)
        except Exception as exc:  # each case gets its turn; all failures are reported below
            failures.append((name(case), exc))
    if failures:
        report = "\n\n".join(
            f"{where}:\n{''.join(traceback.format_exception_only(exc)).strip()}"
            for where, exc in failures
        )
        raise AssertionError(f"{len(failures)} of {len(cases)} failed:\n\n{report}") from (
            failures[0][1]
        )


def test_every_rendered_form_answers_below_500(fuzz_world):
    """Every POST form the pages render to their owner, fields drawn by input type; a target a
    hand-made form covers (its action, no field it does not know) is left to that form."""
    targets, problems = derive_forms(fuzz_world)
    assert not problems, "\n".join(problems)
    own = [t for t in targets if covering_form(fuzz_world, t) is None]
    examples = examples_for("page-forms", 1, len(own))
    run_each(own, lambda t: fuzz_rendered_form(fuzz_world, t, examples), lambda t: t.name)


def test_every_post_pattern_is_reached_by_a_form(fuzz_world):
    """A URL pattern that takes a POST is reached by a form the pages render or by a hand-made
    one, or NOT_FORMS says why it takes no form: a new form is fuzzed by construction."""
    targets, problems = derive_forms(fuzz_world)
    reached = {t.key for t in targets} | set(HAND_MADE_FORMS)
    client = Client()
    keys, takes_post = set(), set()
    for pattern in page_patterns():
        keys.add(pattern.key)
        try:
            url = fill_route(pattern, fuzz_world)
        except Underivable:
            continue  # derive_forms said so
        client.force_login(fuzz_world.owner)  # again: the last POST may have signed it out
        with transaction.atomic():
            status = client.post(url).status_code
            transaction.set_rollback(True)
        if status != 405:
            takes_post.add(pattern.key)
        if status == 405 or pattern.key in reached or pattern.key in NOT_FORMS:
            continue
        problems.append(
            f"'{pattern.key}' ({pattern.route}) answers a POST ({status}) but no page renders "
            "a form posting to it and FORMS has none: give the world what makes its form "
            "appear, add a hand-made Form, or list it in NOT_FORMS saying why it takes no form."
        )
    for key in NOT_FORMS:
        if key not in keys:
            problems.append(f"NOT_FORMS lists '{key}', which is no URL pattern now: remove it.")
        elif key in reached:
            problems.append(f"NOT_FORMS lists '{key}', but a form posts to it: remove it.")
        elif key not in takes_post:
            problems.append(f"NOT_FORMS lists '{key}', which answers a POST 405 now: remove it.")
    stale = set(HAND_MADE_FORMS) - keys
    problems += [f"FORMS has '{key}', which is no URL pattern now." for key in sorted(stale)]
    assert not problems, "\n".join(problems)


# --- queries (the filter bars, pagination, sorting, cursors) ----------------------------------

QUERY_NAMES = [
    "q",
    "status",
    "kind",
    "environment",
    "managed",
    "depends_on",
    "sort",
    "per_page",
    "page",
    "page_size",
    "ordering",
    "after",
    "before",
    "last",
    "rkind",
    "rns",
    "rpage",
    "next",
    "format",
    "tz",
    "category",
    "watched",
]


def query_strings(fuzz_world: World, names=(), values=()) -> st.SearchStrategy[str]:
    """Query strings of these names (and QUERY_NAMES, and any): values seen on the page, the
    world's ids, hostile text and cursors; now and then a sort with a cursor to page after."""
    value = st.one_of(
        st.sampled_from([*Status.values, "http", "kubernetes", "true", "-name", "1", *values]),
        st.sampled_from(fuzz_world.environments).map(str),
        hostile_text(fuzz_world),
        CURSORS,
    )
    name = st.one_of(st.sampled_from(sorted({*QUERY_NAMES, *names})), ANY_TEXT)
    pairs = st.lists(st.tuples(name, value), max_size=6)
    keyset = st.builds(
        lambda sort, edge, cursor, rest: [("sort", sort), (edge, cursor), *rest],
        SORTS,
        st.sampled_from(["after", "before"]),
        CURSORS,
        st.lists(st.tuples(name, value), max_size=2),
    )
    return mostly(pairs, keyset, odds=2).map(
        lambda ps: "&".join(f"{quote(_wire(k))}={quote(_wire(v))}" for k, v in ps)
    )


# Of the GET-able pages, how many more inputs a page gets than the others: its table reads most.
QUERY_WEIGHTS = {"connections:list": 6, "connections:detail": 2, "maintenance:list": 2}


def test_every_query_answers_below_500(fuzz_world):
    """Every page pattern's GET with hostile query strings, using the names its GET forms and
    its links use; a pattern whose GET answers 405 (POST only) reads no query and is left out."""
    client = fuzz_world.client("owner")
    pages = []
    for pattern in page_patterns():
        path = fill_route(pattern, fuzz_world)
        response = get_page(client, path)
        if response.status_code == 405:
            continue
        # a download (the export) streams: it has no forms or links, its query is the table's
        body = b"".join(response.streaming_content) if response.streaming else response.content
        html = body.decode(errors="replace")
        pages.append((pattern, path, query_names_of(html, path)))
    total = sum(QUERY_WEIGHTS.get(p.key, 1) for p, _, _ in pages)

    def fuzz_page(page) -> None:
        pattern, path, (names, values) = page
        queries = query_strings(fuzz_world, names, values)

        @fuzz_settings(examples_for("queries", QUERY_WEIGHTS.get(pattern.key, 1), total))
        @given(data=st.data())
        def fuzz(data):
            query = data.draw(queries, label="query")
            headers = {"HTTP_HX_REQUEST": "true"} if data.draw(st.booleans(), label="htmx") else {}
            persona = data.draw(PERSONAS, label="persona")
            client = fuzz_world.client(persona)
            url = f"{quote(path)}?{query}"
            _run(f"queries {pattern.key}", lambda: client.get(url, **headers))

        fuzz()

    run_each(pages, fuzz_page, lambda page: page[0].key)


# --- the JSON API -----------------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    HUGE_INTS,
    st.floats(),
    ANY_TEXT,
    SPECIAL_STRINGS,
    SURROGATE_TEXT,
)
JSON_KEYS = st.one_of(ANY_TEXT, SURROGATE_TEXT, SPECIAL_STRINGS)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(JSON_KEYS, inner, max_size=5),
    max_leaves=25,
)
JSON_OBJECTS = st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=5)


def api_text(fuzz_world: World, valid=NAMES) -> Field:
    return valid, st.one_of(hostile_text(fuzz_world), JSON_VALUES)


def api_choice(fuzz_world: World, choices) -> Field:
    return st.sampled_from(list(choices)), st.one_of(hostile_text(fuzz_world), JSON_VALUES)


def api_id(fuzz_world: World, ids: list[int]) -> Field:
    return st.sampled_from(ids), st.one_of(
        st.sampled_from(ids).map(str),
        REVIEW_IDS,
        HUGE_INTS,
        st.integers(-5, 10**6),
        st.floats(),
        st.sampled_from([True, False, None, "", "1e999", [], {}]),
        hostile_text(fuzz_world),
        JSON_VALUES,
    )


def api_ids(fuzz_world: World, ids: list[int]) -> Field:
    valid, hostile = api_id(fuzz_world, ids)
    return st.lists(valid, max_size=3), st.one_of(
        st.lists(st.one_of(valid, hostile), min_size=1, max_size=5), JSON_VALUES
    )


def api_number(low: int, high: int) -> Field:
    return st.integers(low, high), st.one_of(
        st.integers(low - 10, high + 10), HUGE_INTS, st.floats(), NUMBER_STRINGS, JSON_VALUES
    )


def _connection_create(w: World) -> dict[str, Field]:
    return {
        "name": api_text(w),
        "kind": api_choice(w, [k for k, _ in kind_choices()]),
        "url": (good_url(w), st.one_of(url_strategy(w), JSON_VALUES)),
        "credential": api_id(w, w.credentials),
        "environments": api_ids(w, w.environments),
        "failure_threshold": api_number(2, 100),
        "probe_interval": api_number(5, 86400),
    }


def _connection_update(w: World) -> dict[str, Field]:
    return {
        "name": api_text(w),
        "url": (good_url(w), st.one_of(url_strategy(w), JSON_VALUES)),
        "metadata": (
            st.dictionaries(NAMES, NAMES, max_size=3),
            st.one_of(JSON_OBJECTS, JSON_VALUES),
        ),
        "credential": api_id(w, w.credentials),
        "failure_threshold": api_number(2, 100),
        "probe_interval": api_number(5, 86400),
        "status": api_choice(w, Status.values),  # read-only
    }


def _credential_api(w: World) -> dict[str, Field]:
    return {
        "name": api_text(w),
        "kind": api_choice(w, Credential.Kind.values),
        "secret": (
            st.one_of(NAMES, kubeconfig_text(w, hostile=False)),
            st.one_of(kubeconfig_text(w, hostile=True), hostile_text(w), JSON_VALUES),
        ),
        "username": api_text(w),
        "endpoints": (
            st.lists(st.sampled_from([w.dead_url, w.live_url]), max_size=2),
            st.one_of(st.lists(url_strategy(w), max_size=4), JSON_VALUES),
        ),
        "allow_insecure_tls": (st.booleans(), JSON_VALUES),
    }


def _transition(w: World) -> dict[str, Field]:
    return {"to": api_choice(w, [*Status.values, "resume"]), "reason": api_text(w)}


def _environment(w: World) -> dict[str, Field]:
    return {"name": api_text(w), "description": api_text(w)}


@dataclass
class Operation:
    """A hand-made refinement of a schema operation: fields whose valid values the schema
    cannot tell (a kubeconfig of this world's servers, endpoints inside a credential's bounds)."""

    method: str
    path: str  # as the schema spells it
    fields: Callable[[World], dict[str, Field]] = lambda fuzz_world: {}

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


OPERATIONS = [
    Operation("POST", "/api/connections/", _connection_create),
    Operation("PATCH", "/api/connections/{id}/", _connection_update),
    Operation("PUT", "/api/connections/{id}/", _connection_update),
    Operation("POST", "/api/connections/{id}/transition/", _transition),
    Operation(
        "POST",
        "/api/connections/bulk-transition/",
        lambda w: {"ids": api_ids(w, w.connections), **_transition(w)},
    ),
    Operation("POST", "/api/environments/", _environment),
    Operation("PATCH", "/api/environments/{id}/", _environment),
    Operation(
        "POST",
        "/api/environments/{id}/members/",
        lambda w: {
            "username": (USERNAMES, st.one_of(hostile_text(w), JSON_VALUES)),
            "role": api_choice(w, ["viewer", "editor"]),
        },
    ),
    Operation(
        "POST",
        "/api/environments/{id}/connections/",
        lambda w: {"add": api_ids(w, w.connections), "remove": api_ids(w, w.connections)},
    ),
    Operation("POST", "/api/environments/{id}/transition/", _transition),
    Operation("POST", "/api/credentials/", _credential_api),
    Operation("PATCH", "/api/credentials/{id}/", _credential_api),
    Operation(
        "POST",
        "/api/kubeconfig-import/",
        lambda w: {
            "kubeconfig": (
                kubeconfig_text(w, hostile=False),
                st.one_of(kubeconfig_text(w, hostile=True), JSON_VALUES),
            ),
            "environments": api_ids(w, w.environments),
        },
    ),
]
HAND_MADE_OPERATIONS = {operation.name: operation for operation in OPERATIONS}


# --- the API's requests, read from the schema -------------------------------------------------


def aware_times(days: int = 30) -> st.SearchStrategy[str]:
    """Times around now as the API takes them: with an offset, in UTC ("Z"), or without one."""
    now = timezone.now().replace(microsecond=0)
    offsets = st.sampled_from(["+00:00", "Z", "+14:00", "-12:00", "+05:45", ""])
    return st.builds(
        lambda minutes, offset: (
            (now + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S") + offset
        ),
        st.integers(-days * 1440, days * 1440),
        offsets,
    )


def schema_field(fuzz_world: World, name: str, schema: dict, depth: int = 0) -> Field:
    """(valid, hostile) JSON values for a field of this schema: by its type, format, enum,
    bounds and nullability, and by its name (the world's ids for "credential", a time zone for
    "timezone", …). A readOnly field is sent anyway (it must be ignored)."""
    if depth > 5:
        return JSON_VALUES, JSON_VALUES
    kind = schema.get("type")
    if "oneOf" in schema or "anyOf" in schema:
        options = [
            schema_field(fuzz_world, name, s, depth + 1)
            for s in schema.get("oneOf") or schema["anyOf"]
        ]
        valid = st.one_of(*(v for v, _ in options))
        hostile = st.one_of(*(h for _, h in options))
    elif "enum" in schema:
        choices = [value for value in schema["enum"] if value is not None]
        valid = st.sampled_from(choices) if choices else st.none()
        hostile = st.sampled_from([str(c).upper() for c in choices] or [""])
    elif kind == "string":
        valid, hostile = _string_field(fuzz_world, name, schema)
    elif kind == "integer":
        ids = fuzz_world.ids(name)
        if ids:
            valid, hostile = api_id(fuzz_world, ids)
        else:
            low = int(schema.get("minimum", -(10**6)))
            high = int(schema.get("maximum", 10**6))
            valid, hostile = api_number(max(low, -(10**9)), min(high, 10**9))
    elif kind == "number":
        valid = st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
        hostile = st.one_of(st.floats(), NUMBER_STRINGS, HUGE_INTS)
    elif kind == "boolean":
        valid = st.booleans()
        hostile = st.sampled_from(["true", "false", "on", "", 0, 1, 2, None, [], {}])
    elif kind == "array":
        item_valid, item_hostile = schema_field(
            fuzz_world, name, schema.get("items", {}), depth + 1
        )
        most = schema.get("maxItems", 50)
        valid = st.lists(item_valid, max_size=min(3, most))
        hostile = st.one_of(
            st.lists(st.one_of(item_valid, item_hostile), min_size=1, max_size=5),
            item_hostile,  # one where a list goes
            st.lists(item_valid, min_size=most + 1, max_size=most + 2)
            if most <= 50
            else item_hostile,
        )
    elif kind == "object" or "properties" in schema:
        fields = {
            n: schema_field(fuzz_world, n, s, depth + 1)
            for n, s in schema.get("properties", {}).items()
        }
        required = set(schema.get("required", []))
        valid = st.fixed_dictionaries(
            {n: v for n, (v, _) in fields.items() if n in required},
            optional={n: v for n, (v, _) in fields.items() if n not in required},
        )
        hostile = submission(fields) if fields else JSON_OBJECTS
    elif kind is None and not set(schema) - {
        "description",
        "title",
        "readOnly",
        "writeOnly",
        "nullable",
    }:
        valid = hostile = JSON_VALUES  # any JSON value
    else:
        raise Underivable(
            f"field '{name}': a schema the fuzz cannot draw: {json.dumps(schema)[:200]}"
        )
    if schema.get("nullable"):
        valid = st.one_of(valid, st.none())
    if schema.get("readOnly"):
        valid = hostile
    return valid, st.one_of(hostile, hostile_text(fuzz_world), JSON_VALUES)


def _string_field(fuzz_world: World, name: str, schema: dict) -> Field:
    form = schema.get("format")
    if form == "date-time":
        return aware_times(), EDGE_TIMES
    if form == "date":
        return aware_times().map(lambda t: t[:10]), EDGE_TIMES
    if form == "time":
        return aware_times().map(lambda t: t[11:16]), EDGE_CLOCK_TIMES
    if form in ("uri", "url"):
        return good_url(fuzz_world), url_strategy(fuzz_world)
    if form == "email":
        return st.sampled_from(["ops@example.com", "a@b.c"]), REVIEW_NAMES
    hint = name_hint(fuzz_world, name)
    if hint:
        return hint
    most = schema.get("maxLength", 200)
    longer = st.integers(most + 1, most + 10).map(lambda n: "a" * n)
    return NAMES.map(lambda text: text[:most]), st.one_of(longer, REVIEW_NAMES)


NO_BODY = object()  # nothing after the headers


@dataclass
class ApiTarget:
    """The strategies of one operation's requests."""

    path: st.SearchStrategy[str]
    query: st.SearchStrategy[str]
    body: st.SearchStrategy[Any]


def api_target(fuzz_world: World, operation: ApiOperation) -> ApiTarget:
    """Its path (ids of the resource the path names, else any, or hostile), its query (the
    schema's parameters, and any), its body (the schema's fields, refined by the hand-made
    OPERATIONS); Underivable names what the schema holds that the fuzz cannot draw."""
    parameters = operation.parameters()
    for parameter in parameters:
        if parameter.location not in ("path", "query"):
            raise Underivable(f"a {parameter.location} parameter '{parameter.name}'")
    path = st.just(operation.path)
    for parameter in (p for p in parameters if p.location == "path"):
        path = st.builds(
            lambda template, value, name=parameter.name: template.replace(f"{{{name}}}", value),
            path,
            path_value(fuzz_world, parameter),
        )
    query = query_string(fuzz_world, [p for p in parameters if p.location == "query"])
    hand = HAND_MADE_OPERATIONS.get(operation.name)
    refined = hand.fields(fuzz_world) if hand else {}
    body = operation.body()
    if body is None:
        fields = refined
    else:
        schema = body[1]
        if schema.get("type", "object") != "object" and "properties" not in schema:
            valid, hostile = schema_field(fuzz_world, "", schema)
            return ApiTarget(path, query, st.one_of(valid, hostile, JSON_VALUES))
        fields = {
            name: refined.get(name) or schema_field(fuzz_world, name, field_schema)
            for name, field_schema in schema.get("properties", {}).items()
        }
        fields.update((name, f) for name, f in refined.items() if name not in fields)
    together = TOGETHER[operation.name](fuzz_world) if operation.name in TOGETHER else None
    return ApiTarget(path, query, json_body(fields, body is not None, together))


def path_value(fuzz_world: World, parameter: ApiParameter) -> st.SearchStrategy[str]:
    ids = fuzz_world.ids(parameter.resource) or fuzz_world.ids(parameter.name)
    hostile = st.one_of(
        REVIEW_IDS, st.integers(0, 10**25).map(str), st.sampled_from(["abc", "1.5", "-1"])
    )
    real = st.sampled_from(ids).map(str) if ids else st.integers(1, 10**6).map(str)
    return mostly(real, hostile).map(lambda value: quote(value, safe=""))


def query_string(fuzz_world: World, parameters: list[ApiParameter]) -> st.SearchStrategy[str]:
    """The schema's query parameters, each absent, valid or hostile; now and then others."""
    drawn = []
    for parameter in parameters:
        valid, hostile = schema_field(fuzz_world, parameter.name, parameter.schema)
        value = mostly(valid, hostile)
        drawn.append(st.one_of(st.just([]), value.map(partial(_query_pairs, parameter))))
    extra = st.lists(
        st.tuples(st.sampled_from(QUERY_NAMES), st.one_of(hostile_text(fuzz_world), CURSORS)),
        max_size=2,
    )
    return st.tuples(st.tuples(*drawn), extra).map(
        lambda got: "&".join(
            f"{quote(_wire(k))}={quote(_wire(v))}" for pairs in (*got[0], got[1]) for k, v in pairs
        )
    )


def _query_pairs(parameter: ApiParameter, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, list) and parameter.explode:
        return [(parameter.name, _query_text(item)) for item in value]
    if isinstance(value, list):
        return [(parameter.name, ",".join(_query_text(item) for item in value))]
    return [(parameter.name, _query_text(value))]


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@st.composite
def json_body(draw, fields: dict[str, Field], has_body: bool, together=None) -> Any:
    """Mostly an object of the operation's fields (each valid, hostile or absent), sometimes
    with other keys; else any JSON value at all. Without a body in the schema: mostly none."""
    if not has_body and not fields and draw(st.integers(0, 4)):
        return NO_BODY
    if fields and draw(st.integers(0, 4)):
        body = draw(submission(fields, together, base=False))
        if draw(st.integers(0, 5)) == 0:
            body.update(draw(JSON_OBJECTS))
        return body
    return draw(JSON_VALUES)


CONTENT_TYPES = st.sampled_from(
    [("application/json", "utf-8")] * 6
    + [
        ("application/json; charset=utf-16", "utf-16"),
        ("application/json; charset=latin-1", "latin-1"),
        ("application/json; charset=rot13", "utf-8"),
        ("text/plain", "utf-8"),
        ("application/x-www-form-urlencoded", "utf-8"),
    ]
)


def encode_body(body: Any, ascii_only: bool, encoding: str) -> bytes:
    text = json.dumps(body, ensure_ascii=ascii_only)
    try:
        return text.encode(encoding, "surrogatepass")
    except UnicodeError:
        return text.encode("utf-8", "surrogatepass")


API_CASES = api_operations()
# Of the operations, how many more inputs one with a body gets than one without.
API_WEIGHTS = {o.name: 3 if "requestBody" in o.raw else 1 for o in API_CASES}


@pytest.mark.parametrize("operation", API_CASES, ids=[o.name for o in API_CASES])
def test_every_api_operation_answers_below_500(fuzz_world, operation):
    """Every operation of the OpenAPI schema, with requests drawn from it."""
    try:
        target = api_target(fuzz_world, operation)
    except Underivable as exc:
        pytest.fail(f"{operation.name}: {exc}")
    weight, total = API_WEIGHTS[operation.name], sum(API_WEIGHTS.values())

    @fuzz_settings(examples_for("api", weight, total))
    @given(data=st.data())
    def fuzz(data):
        path = data.draw(target.path, label="path")
        query = data.draw(target.query, label="query")
        body = data.draw(target.body, label="body")
        content_type, encoding = data.draw(CONTENT_TYPES, label="content type")
        ascii_only = data.draw(st.booleans(), label="ensure_ascii")
        persona = data.draw(st.sampled_from(["api-owner", "api-owner", "api-viewer"]))
        raw = b"" if body is NO_BODY else encode_body(body, ascii_only, encoding)
        client = fuzz_world.client(persona)
        url = f"{path}?{query}" if query else path
        if not readable_charset(content_type):
            # the WSGI application refuses it before Django builds the request (the test
            # client builds its own): tests/test_bad_input.py sends it through that application
            RUNS[f"api {operation.name}"] += 1
            return
        _run(
            f"api {operation.name}",
            lambda: client.generic(operation.method, url, raw, content_type),
        )

    fuzz()


# not operations: the schema and its two renderings, and DRF's list of the collections
API_NOT_OPERATIONS = {"schema", "docs", "redoc", "api-root"}


def schema_path_of(route: str) -> str:
    """'api/^connections/(?P<pk>[0-9]{1,18})/$' -> '/api/connections/{id}/' (as the schema)."""
    path = re.sub(
        r"\(\?P<(\w+)>[^)]*\)", lambda m: "{id}" if m[1] == "pk" else f"{{{m[1]}}}", route
    )
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{id}" if m[1] == "pk" else f"{{{m[1]}}}", path)
    return "/" + path.replace("^", "").replace("$", "")


def test_every_schema_operation_is_fuzzed(fuzz_world):
    """Every operation of the schema is a case of the API fuzz (a new endpoint is fuzzed by
    construction); this says which ones the fuzz cannot draw requests for, which hand-made
    refinement names an operation gone, and which API route the schema does not document
    (nobody would fuzz it)."""
    operations = api_operations()
    problems = []
    for operation in operations:
        try:
            api_target(fuzz_world, operation)
        except Underivable as exc:
            problems.append(f"{operation.name}: the fuzz cannot derive its requests: {exc}")
    names = {o.name for o in operations}
    fuzzed = {o.name for o in API_CASES}
    problems += [f"{name}: in the schema but not fuzzed" for name in sorted(names - fuzzed)]
    problems += [
        f"OPERATIONS refines {o.name}, which the schema no longer has"
        for o in OPERATIONS
        if o.name not in names
    ]
    documented = set(openapi_schema()["paths"])
    for pattern in all_patterns():
        if not pattern.route.startswith("api/") or "format" in pattern.parameters:
            continue
        if (
            pattern.key not in API_NOT_OPERATIONS
            and schema_path_of(pattern.route) not in documented
        ):
            problems.append(f"API route {pattern.route} ('{pattern.key}') is not in the schema")
    assert not problems, "\n".join(problems)


# --- the shapes of the last security review, every run ----------------------------------------


def review_requests(fuzz_world: World) -> list[tuple[str, str, str, Any]]:
    """(persona, method, path, fields or JSON body) for the shapes the last security review
    found, each a 500 or worse once: the fuzz draws them now and then, these go every run."""
    connection = fuzz_world.connections[1]
    names = ["ops\r\nBcc: x@example.com", "a\u2028b", "\u202eexe.txt"]
    edges = [("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00")]
    local_edges = [
        ("0001-01-01T00:00", "0001-01-01T01:00"),
        ("9999-12-31T22:00", "9999-12-31T23:59"),
    ]
    zones = ["localtime", "Factory", "posixrules", "UTC"]
    found: list[tuple[str, str, str, Any]] = []
    for values, pk in ((["0001-01-01T00:00:00+14:00"], 1), (["9999-12-31T23:59:59-12:00"], MAX_ID)):
        for sort in ("created_at", "-created_at"):
            for edge in ("after", "before"):
                query = f"sort={sort}&{edge}={cursor_of(values, pk)}"
                found.append(("owner", "GET", f"/connections/?{query}", None))
    for pk in ("\u00b2", "\u2460", "\u0663", "1_0", "9" * 20):
        found.append(("owner", "POST", f"/connections/{connection}/parents/", {"parent": pk}))
        found.append(("api-owner", "GET", f"/api/connections/{quote(pk)}/", None))
        found.append(("api-owner", "POST", "/api/connections/bulk-transition/", {"ids": [pk]}))
    for zone in zones:
        found.append(("owner", "GET", f"/maintenance/?tz={zone}", None))
        for start, end in edges:
            window = {"name": names[0], "kind": "one_off", "starts_at": start, "ends_at": end}
            window.update(timezone=zone, connections=[connection])
            found.append(("api-owner", "POST", "/api/maintenance/windows/", window))
        recurring = {"name": "w", "kind": "recurring", "weekdays": [0], "timezone": zone}
        recurring.update(start_time="02:00", duration_minutes=60)
        found.append(("api-owner", "POST", "/api/maintenance/windows/", recurring))
        for start, end in local_edges:
            form = {"name": "w", "kind": "one_off", "timezone": zone, "starts_at": start}
            form.update(ends_at=end, connections=str(connection))
            found.append(("owner", "POST", "/maintenance/add/", form))
    hook = f"{fuzz_world.dead_url}/hook?token=s3cr3t-in-query&sig=s3cr3t"
    channels = [
        ("apprise", "json://127.0.0.1:1/ok,rsyslog://169.254.169.254"),
        ("apprise", "json://127.0.0.1:1/ok rsyslog://169.254.169.254"),
        ("webhook", hook),
        ("email", "ops@example.com\r\nBcc: x@example.com"),
    ]
    for name in names:
        for kind, destination in channels:
            channel = {"name": name, "kind": kind, "destination": destination}
            found.append(("api-owner", "POST", "/api/notifications/channels/", channel))
            form = {**channel, **{option: "1" for option in ("group_threshold", "rate_per_hour")}}
            found.append(("owner", "POST", "/notifications/channels/add/", form))
    return found


def test_the_review_shapes_answer_below_500(fuzz_world):
    """Names with CR/LF, U+2028 or a bidi override; ids in Unicode digits, ``1_0`` or 20
    digits; times at the edges of the calendar; zones that are no IANA names or depend on the
    host; Apprise destinations smuggling a second URL; webhooks with secrets in the query;
    cursors at the edges of time: each through the routes that once failed on it."""
    for persona, method, path, data in review_requests(fuzz_world):
        client = fuzz_world.client(persona)
        if persona.startswith("api"):
            body = b"" if data is None else json.dumps(data).encode()
            send = partial(
                client.generic, method, quote(path, safe="/%?=&"), body, "application/json"
            )
        elif method == "POST":
            send = partial(post_form, client, path, list(data.items()), {}, False)
        else:
            send = partial(client.get, quote(path, safe="/%?=&"))
        _run(f"review {method} {path.split('?')[0]}", send)
