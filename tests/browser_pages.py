"""Every HTML page of the product, for the browser audits of tests/test_pages_a11y.py.

The pages are read from the URL patterns (``get_resolver``), not listed by hand: each pattern is
either an excluded group (the admin, the API), explicitly excluded with its reason, or asked with
a GET as the signed-in owner of everything; a 200 ``text/html`` answer is a page, and is visited.
A pattern with a parameter nobody knows how to fill fails the test with the line to add, so a page
added later cannot be skipped silently.

``build_world`` makes the data each page needs to show its real content: an environment with
connections in several states (with history, probe results, a failed one, a reason), a credential,
a notification channel with a failed delivery, a maintenance window, a dependency, a watch, an
API token, and locations online, stale and without a worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import invitations
from accounts.models import ApiToken
from connections.models import (
    Connection,
    ConnectionTransition,
    Dependency,
    Location,
    LocationWorker,
)
from connections.models.collected import ProbeResult
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from maintenance import windows as maintenance_windows
from maintenance.models import Window
from notifications import channels as notify_channels
from notifications.models import Delivery, Message, Watch
from tests.url_patterns import Pattern, all_patterns

PASSWORD = "pw-a11y-ana-2026"
USERNAME = "ana"
LOCKED_USERNAME = "locked-out-user"  # failed sign-ins lock this name out, never ana
BOUND = "http://127.0.0.1:9"  # nothing listens there; the credential's one endpoint


# --- the world ------------------------------------------------------------------------------


@dataclass
class World:
    user: Any
    environment: Environment
    connection: Connection  # the richest one: connected, history, probes, a parent, a watch
    connections: dict[str, Connection]
    credential: Credential
    channel: Any
    window: Window
    token: ApiToken
    rule: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _history(connection: Connection, user, steps: list[tuple[str, str, str, str]]) -> None:
    """Transition rows (from, to, trigger, reason), an hour apart, ending now; each one also
    writes its notification event (notifications.events.record_event)."""
    now = timezone.now()
    for i, (from_status, to_status, trigger, reason) in enumerate(steps):
        ConnectionTransition.objects.create(
            connection=connection,
            from_status=from_status,
            to_status=to_status,
            trigger=trigger,
            user=user if trigger == "user" else None,
            reason=reason,
            created_at=now - timedelta(hours=len(steps) - i),
        )


def _probes(connection: Connection, results: list[tuple[bool, float | None, str]]) -> None:
    """Probe results (ok, latency, error), a minute apart, ending now; the last one is the
    connection's "last probe"."""
    now = timezone.now()
    for i, (ok, latency, error) in enumerate(results):
        ProbeResult.objects.create(
            connection=connection,
            checked_at=now - timedelta(minutes=len(results) - 1 - i),
            ok=ok,
            latency_ms=latency,
            status_code=200 if ok else None,
            error_class="" if ok else "connect",
            error=error,
        )
    ok, latency, error = results[-1]
    Connection.all_objects.filter(pk=connection.pk).update(
        last_probe_at=now, last_probe_ok=ok, last_latency_ms=latency, last_probe_error=error
    )


def build_world() -> World:
    users = get_user_model().objects
    # staff and superuser: the admin's pages are visited too (and the nav is at its widest)
    user = users.create_user(USERNAME, password=PASSWORD, is_staff=True, is_superuser=True)
    viewer = users.create_user("ben", password="pw-a11y-ben-2026")
    # a pending invitation: the users page shows one
    invitations.invite(
        user, email="cleo@example.com", username="cleo", first_name="Cleo", last_name="Park"
    )

    credential = Credential(name="orders-token", kind="bearer_token", owner=user)
    credential.endpoints = [BOUND]
    credential.set_secret({"token": "a11y-not-a-real-token"})
    credential.save()

    def make(name: str, status: str, **extra: Any) -> Connection:
        return Connection.objects.create(
            name=name,
            kind=extra.pop("kind", "http"),
            url=extra.pop("url", f"{BOUND}/{name}"),
            status=status,
            owner=user,
            **extra,
        )

    refused = "connection refused (127.0.0.1:9)"
    connections = {
        "connected": make("orders-api", "connected", credential=credential),
        "not_found": make("legacy-billing", "not_found"),
        "disconnected": make("payments-gateway", "disconnected", resume_status="connected"),
        "maintenance": make(
            "search-cluster",
            "maintenance",
            resume_status="connected",
            maintenance_source="user",
        ),
        "registered": make("metrics-store", "registered", kind="prometheus"),
        "parent": make("edge-proxy", "connected"),
    }
    _history(
        connections["connected"],
        user,
        [
            ("", "registered", "user", "added by hand"),
            ("registered", "connected", "user", ""),
            ("connected", "disconnected", "probe", refused),
            ("disconnected", "connected", "probe", "reachable again"),
        ],
    )
    _history(
        connections["not_found"],
        user,
        [("", "not_found", "user", f"not reachable when added: {refused}")],
    )
    _history(
        connections["disconnected"],
        user,
        [
            ("", "registered", "user", "added by hand"),
            ("registered", "connected", "probe", ""),
            ("connected", "disconnected", "probe", f"3 failed probes: {refused}"),
        ],
    )
    _history(
        connections["maintenance"],
        user,
        [
            ("", "registered", "user", "added by hand"),
            ("registered", "connected", "user", ""),
            ("connected", "maintenance", "user", "upgrading the cluster"),
        ],
    )
    _history(connections["registered"], user, [("", "registered", "user", "added by hand")])
    _history(connections["parent"], user, [("", "connected", "user", "")])
    _probes(
        connections["connected"],
        [(True, 12.0 + i, "") for i in range(8)]
        + [(False, None, refused), (False, None, refused)]
        + [(True, 15.5, "")] * 5,
    )
    _probes(connections["disconnected"], [(True, 40.0, "")] * 3 + [(False, None, refused)] * 3)
    _probes(connections["not_found"], [(False, None, refused)])

    environment = Environment.objects.create(
        name="production", owner=user, description="Customer-facing services"
    )
    environment.connections.add(*connections.values())
    environment.credentials.add(credential)
    EnvironmentMembership.objects.create(environment=environment, user=viewer, role="viewer")
    Environment.objects.create(name="staging", owner=user)

    Dependency.objects.create(
        child=connections["connected"], parent=connections["parent"], created_by=user
    )
    Watch.objects.create(user=user, connection=connections["connected"])

    channel, _secret = notify_channels.create_channel(
        user,
        name="ops-webhook",
        kind="webhook",
        destination=f"{BOUND}/hook",
        environment=environment,
    )
    message = Message.objects.create(
        channel=channel,
        key="a11y-message",
        kind="test",
        title="payments-gateway is disconnected",
        body=refused,
    )
    Delivery.objects.create(
        message=message, channel=channel, attempt=1, ok=False, error="connection refused"
    )
    Delivery.objects.create(
        message=message, channel=channel, attempt=2, ok=True, status_code=204, latency_ms=31.0
    )

    now = timezone.now()
    window = maintenance_windows.save_window(
        user,
        Window(),
        name="cluster upgrade",
        kind="one_off",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
        connections=[connections["maintenance"]],
        environment=environment,
    )
    # the locations page's three states: online (two workers), stale, no worker yet
    west = Location.objects.create(name="eu-west", description="Frankfurt")
    east = Location.objects.create(name="us-east", description="Virginia, second data centre")
    Location.objects.create(name="ap-south")
    for node, rate in (("eu-west@probe-1", 118.0), ("eu-west@probe-2", 96.5)):
        LocationWorker.objects.create(
            location=west, node=node, heartbeat_at=now, probes_per_minute=rate, lag_seconds=0.4
        )
    LocationWorker.objects.create(
        location=east, node="us-east@probe-1", heartbeat_at=now - timedelta(hours=1)
    )
    connections["connected"].locations.add(west, east)
    token, _key = ApiToken.issue(user, "ci-deploys")
    return World(
        user=user,
        environment=environment,
        connection=connections["connected"],
        connections=connections,
        credential=credential,
        channel=channel,
        window=window,
        token=token,
        rule=channel.rules.first(),
        extra={"location": west},
    )


# --- the URL patterns -----------------------------------------------------------------------


# Whole groups of patterns that are not the dashboard's pages.
EXCLUDED_GROUPS: list[tuple[Callable[[Pattern], bool], str]] = [
    (
        lambda p: p.route.startswith("admin/"),
        "Django's admin: sampled by ADMIN_PAGES (index, a changelist, a change form), "
        "not every model's pages",
    ),
    (
        lambda p: p.route.startswith("api/"),
        "the JSON API and its third-party reference UIs (Swagger UI, ReDoc): tests/test_api*.py",
    ),
]

# Patterns that are not visited, whatever their GET answers, and why.
EXCLUDED: dict[str, str] = {
    "connections:export": "a download (CSV or JSON), not a page",
    "users:set-password": "an invitee's password page: needs a browser that opened a mailed link",
    "environments:member-options": "the members picker's <option>s (an htmx fragment): audited "
    "inside the environment's page",
    "logout": "signs out (POST only)",
    "password_reset_confirm": "a password-reset token page: needs a mailed one-time token",
    "favicon": "a redirect to /static/favicon.svg, not a page",
    "healthz": "a JSON health check, not a page",
    "readyz": "a JSON readiness check, not a page",
    "metrics": "Prometheus' text format, not a page",
    "notifications:bell": "an htmx fragment of the top bar (the bell): audited inside every page",
    "connections:options": "the picker's <option>s (an htmx fragment): audited inside its pages",
}

# Pages visited before signing in (they are also visited as such: anonymous).
ANONYMOUS = (
    "login",
    "password_reset",
    "password_reset_done",
    "password_reset_complete",
    "users:welcome",
)

# A sample of the admin: the index, one changelist, one change form.
ADMIN_PAGES: list[tuple[str, Callable[[World], list]]] = [
    ("admin:index", lambda w: []),
    ("admin:connections_connection_changelist", lambda w: []),
    ("admin:connections_connection_change", lambda w: [w.connection.pk]),
]

# How to fill a pattern's parameters: by pattern key first, then by namespace.
PARAMETERS: dict[tuple[str, str], Callable[[World], Any]] = {
    ("connections", "pk"): lambda w: w.connection.pk,
    ("credentials", "pk"): lambda w: w.credential.pk,
    ("environments", "pk"): lambda w: w.environment.pk,
    ("notifications", "pk"): lambda w: w.channel.pk,
    ("notifications:rule-delete", "rule_pk"): lambda w: w.rule.pk,
    ("notifications:watch-connection", "pk"): lambda w: w.connection.pk,
    ("notifications:watch-environment", "pk"): lambda w: w.environment.pk,
    ("maintenance", "pk"): lambda w: w.window.pk,
    ("token-revoke", "pk"): lambda w: w.token.pk,
    ("users", "pk"): lambda w: w.user.pk,  # its actions are POSTs: 405, not pages
    ("locations", "pk"): lambda w: w.extra["location"].pk,  # remove: its confirmation page
}


def route_to_path(route: str, value: Callable[[str], str]) -> str:
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m.group(1)), route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), path)
    return "/" + path.replace("^", "").replace("$", "")


def fill(pattern: Pattern, world: World) -> str | None:
    """The pattern's URL for this world, or None when a parameter cannot be filled."""
    kwargs = {}
    for name in pattern.parameters:
        filler = PARAMETERS.get((pattern.key, name)) or PARAMETERS.get((pattern.namespace, name))
        if filler is None:
            return None
        kwargs[name] = filler(world)
    if pattern.key.startswith("/"):
        return route_to_path(pattern.route, lambda name: str(kwargs[name]))
    return reverse(pattern.key, kwargs=kwargs)


@dataclass(frozen=True)
class Page:
    slug: str  # the screenshots' file names
    key: str  # the URL pattern (or a description for the special pages)
    url: str  # a path; for "locked-out", the sign-in page the failures are posted to
    anonymous: bool = False
    status: int = 200  # what the page answers


@dataclass
class Inventory:
    pages: list[Page]
    excluded: list[tuple[str, str, str]]  # (key, route, reason)
    not_pages: list[tuple[str, str, str]]  # (key, url, what a GET answers)
    problems: list[str]  # patterns nobody can fill: the test fails on these


def slugify(key: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")
    return slug or "root"


def inventory(world: World) -> Inventory:
    """Every pattern: a page to visit, excluded (why), or not a page (what its GET answers)."""
    client = Client(raise_request_exception=False)
    client.force_login(world.user)
    pages: list[Page] = []
    excluded: list[tuple[str, str, str]] = []
    not_pages: list[tuple[str, str, str]] = []
    problems: list[str] = []
    for pattern in all_patterns():
        group = next((reason for match, reason in EXCLUDED_GROUPS if match(pattern)), None)
        if group or pattern.key in EXCLUDED:
            excluded.append((pattern.key, "/" + pattern.route, group or EXCLUDED[pattern.key]))
            continue
        url = fill(pattern, world)
        if url is None:
            problems.append(
                f"URL pattern '{pattern.key}' (/{pattern.route}) has parameters "
                f"{list(pattern.parameters)} nobody fills: add ({pattern.key!r} or "
                f"{pattern.namespace!r}, <name>) to PARAMETERS in tests/browser_pages.py, or "
                "exclude it with its reason in EXCLUDED."
            )
            continue
        if pattern.route == "":  # the front door: visited wherever it leads
            key = "/" if pattern.key.startswith("/") else pattern.key
            pages.append(Page(slugify(pattern.key) if key != "/" else "root", key, url))
            continue
        response = client.get(url)
        content_type = response.get("Content-Type", "")
        if response.status_code == 200 and content_type.startswith("text/html"):
            anonymous = pattern.key in ANONYMOUS
            pages.append(Page(slugify(pattern.key), pattern.key, url, anonymous=anonymous))
        else:
            where = response.get("Location", "")
            answer = f"GET answers {response.status_code} {content_type.split(';')[0]}".strip()
            not_pages.append((pattern.key, url, answer + (f" -> {where}" if where else "")))
    for key, args in ADMIN_PAGES:
        pages.append(Page(slugify(key), key, reverse(key, args=args(world))))
    pages.append(Page("locked-out", "locked out (django-axes, 429)", reverse("login"), True, 429))
    pages.append(Page("not-found", "404 page", "/no-such-page/", status=404))
    pages.sort(key=lambda page: (not page.anonymous, page.status != 200, page.key))
    return Inventory(pages, excluded, not_pages, problems)


def describe(inv: Inventory) -> str:
    lines = [f"Pages visited ({len(inv.pages)}):"]
    lines += [
        f"  {p.slug:40} {p.url}{'  (anonymous)' if p.anonymous else ''}"
        + (f"  [{p.status}]" if p.status != 200 else "")
        for p in inv.pages
    ]
    groups: dict[str, list[str]] = {}
    for key, _route, reason in inv.excluded:
        groups.setdefault(reason, []).append(key)
    lines.append(f"Excluded ({len(inv.excluded)} patterns):")
    for reason, keys in groups.items():
        if len(keys) == 1:
            lines.append(f"  {keys[0]:40} {reason}")
        else:
            lines.append(f"  {len(keys)} patterns ({keys[0]}, ...): {reason}")
    lines.append(f"Not pages: their GET does not answer an HTML page ({len(inv.not_pages)}):")
    lines += [f"  {key:40} {url}  {answer}" for key, url, answer in inv.not_pages]
    return "\n".join(lines)
