"""The authorisation matrix: every URL pattern (read from the resolver) and every API operation
(read from the OpenAPI schema), for every persona, against one small world.

Nobody has to remember to add a new view here: a pattern or an operation the tables below do not
know fails with the line to add (how to fill its parameters, and what each persona gets).

Personas: ``anonymous``; a ``stranger`` with no relation to anything; a ``viewer`` and an
``editor`` of the environment "prod"; ``staff`` (is_staff, not a superuser, no membership, the
admin's model permissions); the ``owner`` of everything in the world; and ``former``, an editor
of "prod" who made its maintenance window, its channel and that channel's rule (and things of
his own) and was then removed from it. The tables are written for the first six; the former
editor gets what the stranger gets everywhere (``Row.expected``), and ``FORMER_OWN`` says what he
keeps: what he made for himself, outside any environment.

Every answer, for everyone: no 5xx, never the secret (``CANARY``); a stranger and the former
editor never read the world's names (404, not 403, so existence is not revealed); viewer, editor,
stranger and former never read the name of "secret-env", the owner's environment they are not
in, nor of the owner's private window and private parent, which the texts about the shared
connection (its history, its notification events) were written about by the schedule and the
probes; nobody but the former editor (and staff) reads the names of what he made for himself; a
persona who may not change something leaves the database exactly as it was.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from drf_spectacular.generators import SchemaGenerator

from accounts.models import ApiToken
from connections import dependencies, lifecycle
from connections.grouping import change_membership
from connections.models import Connection, ConnectionTransition, Dependency, Location
from connections.probing import outcomes as health
from connections.probing.probes.base import ProbeOutcome
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from maintenance import windows as maintenance_windows
from maintenance.apply import apply_windows
from maintenance.models import Window
from notifications import center as notify_center
from notifications import channels as notify_channels
from notifications.choices import DEFAULT_CATEGORIES, FAILURES, Category
from notifications.models import Channel, Message, Rule, Watch
from notifications.routing import route_events
from tests.url_patterns import Pattern, all_patterns

pytestmark = pytest.mark.django_db

CANARY = "CANARY-5e0b1f-never-in-a-response"
# the tables give the first six; the former editor gets the stranger's (``expect``)
PERSONAS = ("anonymous", "stranger", "viewer", "editor", "staff", "owner", "former")
TABLE_PERSONAS = PERSONAS[:6]
OUTSIDERS = ("stranger", "former")  # 404, never 403: existence is not revealed to them
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
BOUND = "http://127.0.0.1:9"  # the credential's one endpoint
LOGIN = "login"  # expected: 302 to the sign-in page
ADMIN_LOGIN = "admin-login"  # expected: 302 to the admin's sign-in page


# --- the world ------------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, Any]
    keys: dict[str, str]  # persona -> API token key
    token_ids: dict[str, int]
    environment: Environment  # "prod": the viewer and the editor are members
    secret_environment: Environment  # "secret-env": the owner's only
    connection: Connection
    credential: Credential
    memberships: dict[str, EnvironmentMembership]
    hidden_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    window: Window | None = None  # prod's window over the connection (the former editor's)
    channel: Channel | None = None  # prod's webhook channel (the former editor's)
    former_own: dict[str, Any] = field(default_factory=dict)  # what he made for himself


# staff run the admin of these models: view, add and change (not superuser, no membership)
STAFF_PERMISSIONS = [
    (app, f"{verb}_{model}")
    for app, model in (
        ("connections", "connection"),
        ("credentials", "credential"),
        ("environments", "environment"),
        ("environments", "environmentmembership"),
    )
    for verb in ("view", "add", "change")
]
# Names no answer may show (``world.hidden_names``): prod's (its connection, the credential
# shared into it, its window and channel, the parent the parents row gives it), the owner's
# private ones, and what the former editor made for himself.
PROD_NAMES = ("matrix-conn", "matrix-cred", "matrix-window", "matrix-hook", "matrix-parent")
OWNER_PRIVATE = ("secret-env", "owner-private-window", "owner-private-parent")
FORMER_OWN_NAMES = ("former-conn", "former-window", "former-hook")


@pytest.fixture(scope="module")
def built_world(django_db_setup, django_db_blocker):
    """The world, built once for the module (a few hundred queries through the application's
    own paths) inside a transaction rolled back at its end; each test runs in a savepoint of it
    (the ``db`` fixture), as with Django's ``setUpTestData``."""
    with django_db_blocker.unblock(), transaction.atomic():
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)


@pytest.fixture
def authz_world(built_world, db) -> World:
    """The module's world, its objects read again: the database is as built (the test before was
    rolled back), the objects in memory may not be."""
    objects = [
        *(user for user in built_world.users.values() if user is not None),
        built_world.environment,
        built_world.secret_environment,
        built_world.connection,
        built_world.credential,
        built_world.window,
        built_world.channel,
        *built_world.memberships.values(),
        *built_world.former_own.values(),
    ]
    for obj in objects:
        obj.refresh_from_db()
    return built_world


def build_world() -> World:
    """An owner with "prod" (a connection, a credential shared into it, a viewer and an editor),
    "secret-env" (the same connection and credential, nobody else), a stranger, staff, and a
    former editor of "prod"; then the texts about the connection that could name what only the
    owner sees."""
    user_model = get_user_model()
    users: dict[str, Any] = {"anonymous": None}
    for persona in PERSONAS[1:]:
        users[persona] = user_model.objects.create_user(
            f"matrix-{persona}", password=f"pw-{persona}-123", is_staff=persona == "staff"
        )
    users["staff"].user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=[app for app, _ in STAFF_PERMISSIONS],
            codename__in=[codename for _, codename in STAFF_PERMISSIONS],
        )
    )
    owner = users["owner"]
    credential = Credential(name="matrix-cred", kind="bearer_token", owner=owner)
    credential.endpoints = [BOUND]
    credential.set_secret({"token": CANARY})
    credential.save()
    connection = Connection.objects.create(
        name="matrix-conn",
        kind="http",
        url=f"{BOUND}/x",
        status="registered",
        owner=owner,
        credential=credential,
    )
    ConnectionTransition.objects.create(
        connection=connection, to_status="registered", trigger="user", user=owner, reason="set-up"
    )
    prod = Environment.objects.create(name="prod", owner=owner)
    secret_env = Environment.objects.create(name="secret-env", owner=owner)
    for environment in (prod, secret_env):
        environment.connections.add(connection)
        environment.credentials.add(credential)
    memberships = {
        role: EnvironmentMembership.objects.create(environment=prod, user=users[role], role=role)
        for role in ("viewer", "editor")
    }
    keys, token_ids = {}, {}
    for persona in PERSONAS[1:]:
        token, keys[persona] = ApiToken.issue(users[persona], "matrix")
        token_ids[persona] = token.pk
    authz_world = World(
        users, keys, token_ids, prod, secret_env, connection, credential, memberships
    )
    former_editor_makes_things(authz_world)
    write_hidden_texts(authz_world)
    connection.refresh_from_db()
    outsiders = PROD_NAMES + OWNER_PRIVATE + FORMER_OWN_NAMES
    authz_world.hidden_names = {
        "anonymous": outsiders,
        "stranger": outsiders,
        "former": PROD_NAMES + OWNER_PRIVATE,
        "viewer": OWNER_PRIVATE + FORMER_OWN_NAMES,
        "editor": OWNER_PRIVATE + FORMER_OWN_NAMES,
        "owner": FORMER_OWN_NAMES,
    }
    return authz_world


def former_editor_makes_things(authz_world: World) -> None:
    """While an editor of "prod", the former editor makes its window over the connection and its
    webhook channel (its rule names the connection), and watches both; for himself a
    connection, a window over it, and a channel whose rule names his connection, prod's
    connection and "prod". Then the owner removes him (the members page deletes the row)."""
    former, prod, connection = (
        authz_world.users["former"],
        authz_world.environment,
        authz_world.connection,
    )
    membership = EnvironmentMembership.objects.create(environment=prod, user=former, role="editor")
    now = timezone.now()
    authz_world.window = maintenance_windows.save_window(
        former,
        Window(),
        name="matrix-window",
        kind="one_off",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=12),  # active while the module runs
        connections=[connection],
        environment=prod,
    )
    authz_world.channel, _ = notify_channels.create_channel(
        former,
        name="matrix-hook",
        kind="webhook",
        destination=f"{BOUND}/{CANARY}",
        environment=prod,
        rule={"connections": [connection]},
    )
    notify_center.set_watch(former, True, connection=connection)
    notify_center.set_watch(former, True, environment=prod)
    own = Connection.objects.create(
        name="former-conn", kind="http", url=f"{BOUND}/former", status="registered", owner=former
    )
    own_window = maintenance_windows.save_window(
        former,
        Window(),
        name="former-window",
        kind="one_off",
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
        connections=[own],
    )
    own_channel, _ = notify_channels.create_channel(
        former,
        name="former-hook",
        kind="webhook",
        destination=f"{BOUND}/former",
        rule={
            "connections": [own, connection],
            "environments": [prod],
            "categories": [*DEFAULT_CATEGORIES, Category.ADMINISTRATIVE],
        },
    )
    authz_world.former_own = {
        "connection": own,
        "window": own_window,
        "channel": own_channel,
        "rule": own_channel.rules.get(),
    }
    membership.delete()


def write_hidden_texts(authz_world: World) -> None:
    """The texts about the shared connection that could name what only the owner sees (see
    ``write_private_texts``); then the owner registers it again, the state the tables assume,
    after the former editor left (his channel's rule still names it), and that is routed too."""
    owner, connection = authz_world.users["owner"], authz_world.connection
    write_private_texts(owner, connection, "owner-private")
    connection.refresh_from_db()
    lifecycle.transition(
        connection, "registered", trigger="user", user=owner, reason="checked by hand"
    )
    route_events()


def write_private_texts(owner: Any, connection: Connection, prefix: str) -> None:
    """Texts about ``connection`` written by the application's own paths about objects only
    its owner sees: a window of his own (no environment), "<prefix>-window", takes it into
    maintenance and out again (the schedule's reasons); a parent of his in no environment,
    "<prefix>-parent", goes down and the connection's failed probes are applied meanwhile (the
    probe's reason, the quiet note of its event, routed). It is left Not Found."""
    now = timezone.now()
    start, end = now - timedelta(hours=3), now - timedelta(hours=2)
    maintenance_windows.save_window(
        owner,
        Window(),
        name=f"{prefix}-window",
        kind="one_off",
        starts_at=start,
        ends_at=end,
        connections=[connection],
    )
    for instant in (start + timedelta(minutes=1), end + timedelta(minutes=1)):
        with time_machine.travel(instant, tick=False):
            apply_windows()
    parent = Connection.objects.create(
        name=f"{prefix}-parent",
        kind="http",
        url=f"{connection.url}-parent",
        status="connected",
        owner=owner,
    )
    connection.refresh_from_db()
    dependencies.add_parent(owner, connection, parent)
    lifecycle.transition(parent, "disconnected", trigger="probe", reason="unreachable")
    refused = ProbeOutcome(ok=False, error_class="connect", error="refused")
    for _ in range(connection.failure_threshold):  # the last one takes it down
        connection.refresh_from_db()
        health.apply_outcomes([(connection, refused)])
    route_events()


def page_client(authz_world: World, persona: str) -> Client:
    """Signed in as the persona; a view's exception comes back as the 500 it would be."""
    client = Client(raise_request_exception=False)
    if authz_world.users[persona] is not None:
        client.force_login(authz_world.users[persona])
    return client


def api_client(authz_world: World, persona: str) -> Client:
    """With the persona's API token (none for anonymous)."""
    if persona == "anonymous":
        return Client(raise_request_exception=False)
    key = authz_world.keys[persona]
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {key}")


def snapshot() -> dict[str, list]:
    """What any write would change (not sessions, last_login, last_used_at)."""
    return {
        "connections": list(
            Connection.all_objects.order_by("pk").values_list(
                "pk", "name", "url", "status", "credential_id", "owner_id", "metadata"
            )
        ),
        "history": list(ConnectionTransition.objects.values_list("pk", flat=True)),
        "environments": list(
            Environment.objects.order_by("pk").values_list("pk", "name", "description", "owner")
        ),
        "memberships": list(
            EnvironmentMembership.objects.order_by("pk").values_list("environment", "user", "role")
        ),
        "assigned": sorted(
            Environment.connections.through.objects.values_list("environment", "connection")
        ),
        "shared": sorted(
            Environment.credentials.through.objects.values_list("environment", "credential")
        ),
        "credentials": list(
            Credential.objects.order_by("pk").values_list(
                "pk", "name", "kind", "owner", "endpoints", "secret_ciphertext"
            )
        ),
        "tokens": list(ApiToken.objects.order_by("pk").values_list("pk", "user", "revoked_at")),
        "dependencies": sorted(Dependency.objects.values_list("child", "parent")),
        "channels": list(
            Channel.objects.order_by("pk").values_list(
                "pk", "name", "owner", "environment", "enabled", "config_encrypted"
            )
        ),
        "rules": list(Rule.objects.order_by("pk").values_list("pk", "channel", "categories")),
        "watches": list(
            Watch.objects.order_by("pk").values_list("user", "connection", "environment")
        ),
        "windows": list(
            Window.objects.order_by("pk").values_list(
                "pk", "name", "kind", "enabled", "ended_at", "starts_at", "ends_at", "kinds"
            )
        ),
        "window_scopes": sorted(
            Window.connections.through.objects.values_list("window", "connection")
        ),
        "locations": list(Location.objects.order_by("pk").values_list("pk", "name", "description")),
        "users": list(
            get_user_model()
            .objects.order_by("pk")
            .values_list("pk", "username", "password", "is_staff", "is_superuser", "is_active")
        ),
    }


def changes(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after[name]]


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def excerpt(text: str, length: int = 300) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()[:length]


def check_answer(authz_world: World, persona: str, where: str, response, expected) -> str:
    """The invariants of every answer, then the expected status; returns the body."""
    body = body_of(response)
    said = f"{where} as {persona}: {response.status_code} {excerpt(body)!r}"
    assert response.status_code < 500, f"server error: {said}"
    assert CANARY not in body, f"the secret is in the answer: {said}"
    for name in authz_world.hidden_names.get(persona, ()):
        assert name not in body, f"'{name}' is shown to the {persona}: {said}"
    if expected in (LOGIN, ADMIN_LOGIN):
        target = reverse("login") if expected == LOGIN else reverse("admin:login")
        assert response.status_code == 302, f"expected a redirect to sign in: {said}"
        assert response["Location"].startswith(f"{target}?next="), said
    elif expected is not None:
        assert response.status_code == expected, f"expected {expected}: {said}"
    return body


# --- the expectations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """What each persona gets, who may change the database, and the body sent."""

    expected: dict[str, Any]  # persona -> status (LOGIN, ADMIN_LOGIN; None: any but a 5xx)
    writers: frozenset[str] = frozenset()
    body: Callable[[World], dict] | None = None
    report: bool = False  # a bulk report: 200 with every row refused is a refusal
    any_403: bool = False  # a page about no object: its 403 is the same whatever exists


def expect(
    anonymous, stranger, viewer, editor, staff, owner, *, writers="", body=None, report=False
):
    statuses = (anonymous, stranger, viewer, editor, staff, owner)
    expected = dict(zip(TABLE_PERSONAS, statuses, strict=True))
    # removed from "prod": everything of it, and of the owner, is to him what it is to a stranger
    expected["former"] = stranger
    allowed = set(writers.split()) | ({"former"} if "stranger" in writers.split() else set())
    return Row(expected, frozenset(allowed), body, report)


def everyone(status, *, anonymous=LOGIN, body=None) -> Row:
    return expect(anonymous, status, status, status, status, status, body=body)


def staff_only(staff, *, writers="", body=None) -> Row:
    """A page of staff about no object of the world (the users page): everyone else gets the
    same 403 whatever exists, so a 403 reveals nothing to the outsiders."""
    row = expect(LOGIN, 403, 403, 403, staff, 403, writers=writers, body=body)
    return replace(row, any_403=True)


def world_parent(authz_world: World) -> Connection:
    """A second connection of "prod" (everyone in it sees it) for a dependency to name."""
    parent, _ = Connection.objects.get_or_create(
        name="matrix-parent",
        defaults={
            "kind": "http",
            "url": f"{BOUND}/parent",
            "owner": authz_world.users["owner"],
            "status": "registered",
        },
    )
    authz_world.environment.connections.add(parent)
    return parent


def new_connection(authz_world: World) -> dict:
    """Add an HTTP connection inside the credential's bounds, with the shared credential."""
    return {
        "name": "matrix-new",
        "kind": "http",
        "url": f"{BOUND}/new",
        "credential": authz_world.credential.pk,
        "failure_threshold": 3,
        "probe_interval": 30,
    }


def connection_settings(authz_world: World, connection: Connection | None = None) -> dict:
    """The edit page's form, renamed; ``version`` is the snapshot the page signs (the same for
    every persona: it names no environment)."""
    from connections import editing

    connection = connection or authz_world.connection
    return {
        "name": "hijacked",
        "url": connection.url,
        "credential": connection.credential_id or "",
        "failure_threshold": connection.failure_threshold,
        "probe_interval": connection.probe_interval,
        "retry_interval": connection.retry_interval,
        "version": editing.sign_snapshot(editing.snapshot(connection)),
    }


def world_channel(authz_world: World) -> Channel:
    """The webhook channel of "prod" the former editor made: its editors manage it, its viewer
    sees it, he no longer does; its destination holds the secret, which no page may show."""
    return authz_world.channel


def channel_settings(authz_world: World) -> dict:
    return {
        "name": "hijacked",
        "enabled": "on",
        "group_window": 10,
        "group_threshold": 3,
        "cooldown": 300,
        "remind_every_hours": 0,
        "rate_per_hour": 60,
    }


def world_location(authz_world: World) -> Location:
    """A location, made only for the cases that name one (each test is rolled back): in the
    world itself it would send every probe-now of the other cases through rounds."""
    location, _ = Location.objects.get_or_create(name="matrix-west")
    return location


def world_window(authz_world: World) -> Window:
    """The one-off window of "prod" over the world's connection, active now, that the former
    editor made: its editors manage it, its viewer sees it, he no longer does."""
    return authz_world.window


def window_settings(authz_world: World, connection: Connection | None = None) -> dict:
    """The edit page's form: renamed, moved an hour later (in the window's zone, UTC)."""
    now = timezone.now().replace(tzinfo=None)
    return {
        "name": "hijacked",
        "kind": "one_off",
        "timezone": "UTC",
        "starts_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "connections": [(connection or authz_world.connection).pk],
        "enabled": "on",
    }


MAINTENANCE = {"to": "maintenance"}
EDITORS = "editor staff owner"  # who may change prod's connections (README: staff, editors)

# (pattern name, method) -> persona order: anonymous, stranger, viewer, editor, staff, owner
PAGES: dict[tuple[str, str], Row] = {
    ("overview", "GET"): everyone(200),
    ("overview", "POST"): everyone(405),
    ("login", "GET"): everyone(200, anonymous=200),
    ("login", "POST"): everyone(200, anonymous=200),
    ("logout", "GET"): everyone(405, anonymous=405),
    ("logout", "POST"): everyone(302, anonymous=302),
    ("password_change", "GET"): everyone(200),
    ("password_change", "POST"): everyone(200),
    ("password_change_done", "GET"): everyone(200),
    ("password_change_done", "POST"): everyone(405),
    ("password_reset", "GET"): everyone(200, anonymous=200),
    ("password_reset", "POST"): everyone(200, anonymous=200),
    ("password_reset_done", "GET"): everyone(200, anonymous=200),
    ("password_reset_done", "POST"): everyone(405, anonymous=405),
    ("password_reset_confirm", "GET"): everyone(200, anonymous=200),
    ("password_reset_confirm", "POST"): everyone(200, anonymous=200),
    ("password_reset_complete", "GET"): everyone(200, anonymous=200),
    ("password_reset_complete", "POST"): everyone(405, anonymous=405),
    ("tokens", "GET"): everyone(200),
    ("tokens", "POST"): everyone(200, body=lambda w: {"name": ""}),
    ("token-revoke", "GET"): everyone(405),
    ("token-revoke", "POST"): expect(LOGIN, 404, 404, 404, 404, 302, writers="owner"),
    ("favicon", "GET"): everyone(301, anonymous=301),
    ("favicon", "POST"): everyone(301, anonymous=301),
    ("healthz", "GET"): everyone(200, anonymous=200),
    ("healthz", "POST"): everyone(200, anonymous=200),
    ("readyz", "GET"): everyone(200, anonymous=200),
    ("readyz", "POST"): everyone(200, anonymous=200),
    ("metrics", "GET"): expect(401, 401, 401, 401, 200, 401),
    ("metrics", "POST"): expect(401, 401, 401, 401, 200, 401),
    ("api-root", "GET"): everyone(200, anonymous=401),
    ("api-root", "POST"): everyone(405, anonymous=401),
    # the users page: staff only (accounts/users.py); everyone else the same 403
    ("users:list", "GET"): staff_only(200),
    ("users:list", "POST"): everyone(405),
    ("users:invite", "GET"): staff_only(200),
    ("users:invite", "POST"): staff_only(
        302, writers="staff", body=lambda w: {"email": "matrix-new@example.com"}
    ),
    ("users:active", "GET"): everyone(405),
    ("users:active", "POST"): staff_only(302, writers="staff", body=lambda w: {"active": "0"}),
    ("users:staff", "GET"): everyone(405),
    ("users:staff", "POST"): staff_only(302, writers="staff", body=lambda w: {"staff": "1"}),
    # the stranger has a password: no invitation to send (303, the page says why)
    ("users:invite-again", "GET"): everyone(405),
    ("users:invite-again", "POST"): staff_only(303),
    # the locations page: everyone signed in reads it; staff add and remove (one 403 for the
    # others, whatever exists: connections/locations/__init__.py)
    ("locations:list", "GET"): everyone(200),
    ("locations:list", "POST"): everyone(405),
    ("locations:add", "GET"): everyone(405),
    ("locations:add", "POST"): staff_only(
        302, writers="staff", body=lambda w: {"name": "matrix-new", "description": "x"}
    ),
    ("locations:remove", "GET"): staff_only(200),
    ("locations:remove", "POST"): staff_only(
        302, writers="staff", body=lambda w: {"confirm": "yes"}
    ),
    # an invitation's pages: anyone with the link (no code here: refused)
    ("users:welcome", "GET"): everyone(200, anonymous=200),
    ("users:welcome", "POST"): everyone(400, anonymous=400),
    ("users:set-password", "GET"): everyone(400, anonymous=400),
    ("users:set-password", "POST"): everyone(400, anonymous=400),
    # the header's search: each persona's own visible things (tests/test_search.py)
    ("search", "GET"): everyone(200),
    ("search", "POST"): everyone(405),
    ("connections:list", "GET"): everyone(200),
    ("connections:list", "POST"): everyone(200),
    ("connections:add", "GET"): everyone(200),
    ("connections:add", "POST"): expect(
        LOGIN, 400, 400, 302, 400, 302, writers="editor owner", body=new_connection
    ),
    ("connections:import", "GET"): everyone(200),
    ("connections:import", "POST"): everyone(400),
    # the picker's options: each persona's own visible connections (tests/test_picking.py)
    ("connections:options", "GET"): everyone(200),
    ("connections:options", "POST"): everyone(405),
    # the column chooser: every signed-in user keeps their own choice (tests/test_uptime.py)
    ("connections:columns", "GET"): everyone(405),
    ("connections:columns", "POST"): everyone(302),
    # the members picker's options: whoever manages the members (tests/test_pickers_forms.py)
    ("environments:member-options", "GET"): expect(LOGIN, 404, 403, 403, 403, 200),
    ("environments:member-options", "POST"): everyone(405),
    # export: each persona's own visible rows (tests/test_export.py)
    ("connections:export", "GET"): everyone(200),
    ("connections:export", "POST"): everyone(405),
    ("connections:bulk", "GET"): everyone(405),
    ("connections:bulk", "POST"): expect(
        LOGIN,
        404,
        302,
        302,
        302,
        302,
        writers=EDITORS,
        body=lambda w: {"action": "transition:maintenance", "ids": str(w.connection.pk)},
    ),
    ("connections:detail", "GET"): expect(LOGIN, 404, 200, 200, 200, 200),
    ("connections:detail", "POST"): expect(LOGIN, 404, 200, 200, 200, 200),
    ("connections:edit", "GET"): expect(LOGIN, 404, 403, 200, 200, 200),
    ("connections:edit", "POST"): expect(
        LOGIN, 404, 403, 302, 302, 302, writers=EDITORS, body=connection_settings
    ),
    ("connections:transition", "GET"): everyone(405),
    ("connections:transition", "POST"): expect(
        LOGIN, 404, 302, 302, 302, 302, writers=EDITORS, body=lambda w: MAINTENANCE
    ),
    # probe now: whoever may act on it (a probe may change its state by the usual rules)
    ("connections:probe", "GET"): everyone(405),
    ("connections:probe", "POST"): expect(LOGIN, 404, 302, 302, 302, 302, writers=EDITORS),
    ("connections:parents", "GET"): everyone(405),
    ("connections:parents", "POST"): expect(
        LOGIN,
        404,
        302,
        302,
        302,
        302,
        writers=EDITORS,
        body=lambda w: {"parent": world_parent(w).pk},
    ),
    ("credentials:list", "GET"): everyone(200),
    ("credentials:list", "POST"): everyone(200),
    ("credentials:add", "GET"): everyone(200),
    ("credentials:add", "POST"): everyone(400),
    ("credentials:edit", "GET"): expect(LOGIN, 404, 302, 302, 404, 200),
    ("credentials:edit", "POST"): expect(
        LOGIN,
        404,
        302,
        302,
        404,
        302,
        writers="owner",
        body=lambda w: {
            "name": "hijacked",
            "kind": "bearer_token",
            "secret": "",
            "endpoints_text": f"{BOUND}\nhttp://127.0.0.1:10",
        },
    ),
    ("credentials:delete", "GET"): everyone(405),
    ("credentials:delete", "POST"): expect(LOGIN, 404, 302, 302, 404, 302, writers="owner"),
    ("environments:list", "GET"): everyone(200),
    ("environments:list", "POST"): everyone(200),
    ("environments:add", "GET"): everyone(200),
    ("environments:add", "POST"): everyone(400),
    ("environments:detail", "GET"): expect(LOGIN, 404, 200, 200, 200, 200),
    ("environments:detail", "POST"): expect(LOGIN, 404, 200, 200, 200, 200),
    ("environments:edit", "GET"): expect(LOGIN, 404, 303, 200, 200, 200),
    ("environments:edit", "POST"): expect(
        LOGIN, 404, 303, 302, 302, 302, writers=EDITORS, body=lambda w: {"name": "hijacked"}
    ),
    ("environments:delete", "GET"): everyone(405),
    ("environments:delete", "POST"): expect(LOGIN, 404, 303, 303, 303, 302, writers="owner"),
    ("environments:transition", "GET"): everyone(405),
    ("environments:transition", "POST"): expect(
        LOGIN, 404, 303, 302, 302, 302, writers=EDITORS, body=lambda w: MAINTENANCE
    ),
    ("environments:connections", "GET"): everyone(405),
    ("environments:connections", "POST"): expect(
        LOGIN,
        404,
        303,
        302,
        302,
        302,
        writers=EDITORS,
        body=lambda w: {"connection": w.connection.pk, "remove": "1"},
    ),
    ("environments:credentials", "GET"): everyone(405),
    ("environments:credentials", "POST"): expect(
        LOGIN,
        404,
        303,
        302,
        404,  # staff sees the environment but not the owner's credential
        302,
        writers="editor owner",
        body=lambda w: {"credential": w.credential.pk, "remove": "1"},
    ),
    ("environments:members", "GET"): everyone(405),
    ("environments:members", "POST"): expect(
        LOGIN,
        404,
        303,
        303,
        303,
        302,
        writers="owner",
        body=lambda w: {"username": "matrix-stranger", "role": "editor"},
    ),
    ("notifications:center", "GET"): everyone(200),
    ("notifications:center", "POST"): everyone(200),
    ("notifications:mark-read", "GET"): everyone(405),
    ("notifications:mark-read", "POST"): everyone(302),
    ("notifications:bell", "GET"): everyone(200),
    ("notifications:bell", "POST"): everyone(405),
    ("notifications:channels", "GET"): everyone(200),
    ("notifications:channels", "POST"): everyone(200),
    ("notifications:channel-add", "GET"): everyone(200),
    ("notifications:channel-add", "POST"): everyone(400),
    ("notifications:channel", "GET"): expect(LOGIN, 404, 200, 200, 200, 200),
    ("notifications:channel", "POST"): expect(LOGIN, 404, 200, 200, 200, 200),
    ("notifications:channel-edit", "GET"): expect(LOGIN, 404, 303, 200, 200, 200),
    ("notifications:channel-edit", "POST"): expect(
        LOGIN, 404, 303, 302, 302, 302, writers=EDITORS, body=channel_settings
    ),
    ("notifications:channel-delete", "GET"): everyone(405),
    ("notifications:channel-delete", "POST"): expect(
        LOGIN, 404, 303, 302, 302, 302, writers=EDITORS, body=lambda w: {"confirm": "yes"}
    ),
    ("notifications:channel-test", "GET"): everyone(405),
    ("notifications:channel-test", "POST"): expect(LOGIN, 404, 303, 302, 302, 302, writers=EDITORS),
    ("notifications:channel-rotate", "GET"): everyone(405),
    ("notifications:channel-rotate", "POST"): expect(
        LOGIN, 404, 303, 200, 200, 200, writers=EDITORS
    ),
    ("notifications:rule-add", "GET"): everyone(405),
    ("notifications:rule-add", "POST"): expect(
        LOGIN, 404, 303, 302, 302, 302, writers=EDITORS, body=lambda w: {"rule-kinds": ["http"]}
    ),
    ("notifications:rule-delete", "GET"): everyone(405),
    ("notifications:rule-delete", "POST"): expect(LOGIN, 404, 303, 302, 302, 302, writers=EDITORS),
    # anyone who sees a connection or an environment may watch it
    ("notifications:watch-connection", "GET"): everyone(405),
    ("notifications:watch-connection", "POST"): expect(
        LOGIN, 404, 303, 303, 303, 303, writers="viewer editor staff owner"
    ),
    ("notifications:watch-environment", "GET"): everyone(405),
    ("notifications:watch-environment", "POST"): expect(
        LOGIN, 404, 303, 303, 303, 303, writers="viewer editor staff owner"
    ),
    # maintenance windows: the environment's viewers see its windows, its editors manage them
    ("maintenance:list", "GET"): everyone(200),
    ("maintenance:list", "POST"): everyone(200),
    ("maintenance:add", "GET"): everyone(200),
    ("maintenance:add", "POST"): everyone(400),
    ("maintenance:detail", "GET"): expect(LOGIN, 404, 200, 200, 200, 200),
    ("maintenance:detail", "POST"): expect(LOGIN, 404, 200, 200, 200, 200),
    ("maintenance:edit", "GET"): expect(LOGIN, 404, 303, 200, 200, 200),
    ("maintenance:edit", "POST"): expect(
        LOGIN, 404, 303, 302, 302, 302, writers=EDITORS, body=window_settings
    ),
    ("maintenance:end-now", "GET"): everyone(405),
    ("maintenance:end-now", "POST"): expect(LOGIN, 404, 303, 302, 302, 302, writers=EDITORS),
    ("maintenance:enable", "GET"): everyone(405),
    ("maintenance:enable", "POST"): expect(
        LOGIN, 404, 303, 302, 302, 302, writers=EDITORS, body=lambda w: {"enabled": "0"}
    ),
    ("maintenance:delete", "GET"): everyone(405),
    ("maintenance:delete", "POST"): expect(
        LOGIN, 404, 303, 302, 302, 302, writers=EDITORS, body=lambda w: {"confirm": "yes"}
    ),
}

# (method, schema path) -> persona order: anonymous, stranger, viewer, editor, staff, owner
RENAME = {"name": "renamed"}
API: dict[tuple[str, str], Row] = {
    ("GET", "/api/connections/"): everyone(200, anonymous=401),
    ("POST", "/api/connections/"): expect(
        401, 400, 400, 201, 400, 201, writers="editor owner", body=new_connection
    ),
    ("POST", "/api/connections/bulk-transition/"): expect(
        401,
        404,
        200,
        200,
        200,
        200,
        writers=EDITORS,
        report=True,
        body=lambda w: {"ids": [w.connection.pk], **MAINTENANCE},
    ),
    ("GET", "/api/connections/{id}/"): expect(401, 404, 200, 200, 200, 200),
    ("PUT", "/api/connections/{id}/"): expect(
        401, 404, 403, 200, 200, 200, writers=EDITORS, body=lambda w: RENAME
    ),
    ("PATCH", "/api/connections/{id}/"): expect(
        401, 404, 403, 200, 200, 200, writers=EDITORS, body=lambda w: RENAME
    ),
    ("GET", "/api/connections/{id}/history/"): expect(401, 404, 200, 200, 200, 200),
    ("POST", "/api/connections/{id}/transition/"): expect(
        401, 404, 403, 200, 200, 200, writers=EDITORS, body=lambda w: MAINTENANCE
    ),
    ("POST", "/api/connections/{id}/probe/"): expect(401, 404, 403, 200, 200, 200, writers=EDITORS),
    ("GET", "/api/credentials/"): everyone(200, anonymous=401),
    ("POST", "/api/credentials/"): everyone(400, anonymous=401, body=lambda w: {}),
    ("GET", "/api/credentials/{id}/"): expect(401, 404, 200, 200, 404, 200),
    ("PATCH", "/api/credentials/{id}/"): expect(
        401,
        404,
        403,
        403,
        404,
        200,
        writers="owner",
        body=lambda w: {"name": "hijacked", "endpoints": [BOUND, "http://127.0.0.1:10"]},
    ),
    # in use by the connection: even the owner gets 409
    ("DELETE", "/api/credentials/{id}/"): expect(401, 404, 403, 403, 404, 409),
    ("GET", "/api/environments/"): everyone(200, anonymous=401),
    ("POST", "/api/environments/"): everyone(400, anonymous=401, body=lambda w: {}),
    ("GET", "/api/environments/{id}/"): expect(401, 404, 200, 200, 200, 200),
    ("PATCH", "/api/environments/{id}/"): expect(
        401, 404, 403, 200, 200, 200, writers=EDITORS, body=lambda w: {"name": "hijacked"}
    ),
    ("DELETE", "/api/environments/{id}/"): expect(401, 404, 403, 403, 403, 204, writers="owner"),
    ("POST", "/api/environments/{id}/connections/"): expect(
        401, 404, 403, 200, 200, 200, writers=EDITORS, body=lambda w: {"remove": [w.connection.pk]}
    ),
    ("GET", "/api/environments/{id}/members/"): expect(401, 404, 200, 200, 200, 200),
    ("POST", "/api/environments/{id}/members/"): expect(
        401,
        404,
        403,
        403,
        403,
        200,
        writers="owner",
        body=lambda w: {"username": "matrix-stranger", "role": "editor"},
    ),
    ("DELETE", "/api/environments/{id}/members/{member_id}/"): expect(
        401, 404, 403, 403, 403, 204, writers="owner"
    ),
    ("POST", "/api/environments/{id}/transition/"): expect(
        401, 404, 403, 200, 200, 200, writers=EDITORS, body=lambda w: MAINTENANCE
    ),
    ("POST", "/api/kubeconfig-import/"): everyone(400, anonymous=401, body=lambda w: {}),
}

# How to fill a pattern's parameters: by pattern name first, then by namespace.
PAGE_PARAMETERS: dict[tuple[str, str], Callable[[World], Any]] = {
    ("connections:export", "fmt"): lambda w: "csv",
    ("users", "pk"): lambda w: w.users["stranger"].pk,
    ("connections", "pk"): lambda w: w.connection.pk,
    ("credentials", "pk"): lambda w: w.credential.pk,
    ("environments", "pk"): lambda w: w.environment.pk,
    ("token-revoke", "pk"): lambda w: w.token_ids["owner"],
    ("notifications", "pk"): lambda w: world_channel(w).pk,
    ("notifications:rule-delete", "rule_pk"): lambda w: world_channel(w).rules.get().pk,
    ("notifications:watch-connection", "pk"): lambda w: w.connection.pk,
    ("notifications:watch-environment", "pk"): lambda w: w.environment.pk,
    ("maintenance", "pk"): lambda w: world_window(w).pk,
    ("locations", "pk"): lambda w: world_location(w).pk,
    ("password_reset_confirm", "uidb64"): lambda w: urlsafe_base64_encode(
        force_bytes(w.users["owner"].pk)
    ),
    ("password_reset_confirm", "token"): lambda w: "not-a-valid-token",
}
# An API path's parameters: {id} is the world's object of the collection; the rest by name.
API_COLLECTIONS: dict[str, Callable[[World], int]] = {
    "connections": lambda w: w.connection.pk,
    "credentials": lambda w: w.credential.pk,
    "environments": lambda w: w.environment.pk,
}
API_PARAMETERS: dict[str, Callable[[World], int]] = {
    "member_id": lambda w: w.memberships["viewer"].pk,
}


# --- enumerating the resolver and the schema ------------------------------------------------


API_DOCS = {"schema", "docs", "redoc"}  # public reference pages, not operations


def kind_of(pattern: Pattern) -> str:
    """admin (its own sweep), docs and format suffixes (skipped), api (the schema matrix),
    page (the page matrix)."""
    if pattern.route.startswith("admin/"):
        return "admin"
    if "format" in pattern.parameters:
        return "suffix"  # /api/connections.json: the same view as /api/connections/
    if pattern.route.startswith("api/"):
        if pattern.key in API_DOCS:
            return "docs"
        if pattern.key == "api-root":
            return "page"
        return "api"
    return "page"


def page_patterns() -> list[Pattern]:
    return [p for p in all_patterns() if kind_of(p) == "page"]


@cache
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def api_operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in schema()["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    ]


def route_to_path(route: str, value: Callable[[str], str]) -> str:
    """A route (either syntax) with each parameter replaced by ``value(name)``."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m.group(1)), route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), path)
    return "/" + path.replace("^", "").replace("$", "")


def schema_path_of(route: str) -> str:
    """'api/^connections/(?P<pk>[^/.]+)/$' -> '/api/connections/{id}/' (the schema's spelling)."""
    return route_to_path(route, lambda name: "{id}" if name == "pk" else f"{{{name}}}")


def fill_page(pattern: Pattern, authz_world: World) -> str:
    """The pattern's URL for this world; fails naming the parameter nobody knows how to fill."""
    kwargs = {}
    for name in pattern.parameters:
        filler = PAGE_PARAMETERS.get((pattern.key, name)) or PAGE_PARAMETERS.get(
            (pattern.namespace, name)
        )
        if filler is None:
            pytest.fail(
                f"URL pattern '{pattern.key}' ({pattern.route}) has a parameter '{name}' the "
                f"matrix cannot fill: add ({pattern.key!r} or {pattern.namespace!r}, {name!r}) "
                "to PAGE_PARAMETERS in tests/test_authz_matrix.py."
            )
        kwargs[name] = filler(authz_world)
    if pattern.key.startswith("/"):  # unnamed
        return route_to_path(pattern.route, lambda name: str(kwargs[name]))
    return reverse(pattern.key, kwargs=kwargs)


# --- the notifications API ---------------------------------------------------------------


def world_rule(authz_world: World):
    return world_channel(authz_world).rules.order_by("pk").first()


def world_event(authz_world: World):
    """The connection's failure while its private parent was down (its reason and quiet note
    are about the parent)."""
    from notifications.models import Event

    events = Event.objects.filter(connection=authz_world.connection, category__in=FAILURES)
    return events.order_by("pk").first()


def world_delivery(authz_world: World):
    from notifications.models import Delivery, Message

    channel = world_channel(authz_world)
    message, _ = Message.objects.get_or_create(
        channel=channel, key="matrix-message", defaults={"kind": "test", "title": "t", "body": "b"}
    )
    delivery = Delivery.objects.filter(message=message).first()
    return delivery or Delivery.objects.create(
        message=message, channel=channel, attempt=1, ok=False, error="refused"
    )


API.update(
    {
        ("GET", "/api/notifications/channels/"): everyone(200, anonymous=401),
        ("POST", "/api/notifications/channels/"): everyone(400, anonymous=401, body=lambda w: {}),
        ("GET", "/api/notifications/channels/{id}/"): expect(401, 404, 200, 200, 200, 200),
        ("PUT", "/api/notifications/channels/{id}/"): expect(
            401,
            404,
            403,
            200,
            200,
            200,
            writers=EDITORS,
            body=lambda w: {"name": "hijacked", "kind": "webhook"},
        ),
        ("PATCH", "/api/notifications/channels/{id}/"): expect(
            401, 404, 403, 200, 200, 200, writers=EDITORS, body=lambda w: {"name": "hijacked"}
        ),
        ("DELETE", "/api/notifications/channels/{id}/"): expect(
            401, 404, 403, 204, 204, 204, writers=EDITORS
        ),
        ("POST", "/api/notifications/channels/{id}/test/"): expect(
            401, 404, 403, 200, 200, 200, writers=EDITORS
        ),
        ("POST", "/api/notifications/channels/{id}/rotate-secret/"): expect(
            401, 404, 403, 200, 200, 200, writers=EDITORS
        ),
        ("GET", "/api/notifications/rules/"): everyone(200, anonymous=401),
        ("POST", "/api/notifications/rules/"): expect(
            401,
            400,
            400,
            201,
            201,
            201,
            writers=EDITORS,
            body=lambda w: {"channel": world_channel(w).pk},
        ),
        ("GET", "/api/notifications/rules/{id}/"): expect(401, 404, 200, 200, 200, 200),
        ("PUT", "/api/notifications/rules/{id}/"): expect(
            401,
            404,
            403,
            200,
            200,
            200,
            writers=EDITORS,
            body=lambda w: {"channel": world_channel(w).pk, "categories": ["auth"]},
        ),
        ("PATCH", "/api/notifications/rules/{id}/"): expect(
            401,
            404,
            403,
            200,
            200,
            200,
            writers=EDITORS,
            body=lambda w: {"categories": ["auth"]},
        ),
        ("DELETE", "/api/notifications/rules/{id}/"): expect(
            401, 404, 403, 204, 204, 204, writers=EDITORS
        ),
        ("GET", "/api/notifications/events/"): everyone(200, anonymous=401),
        ("GET", "/api/notifications/events/{id}/"): expect(401, 404, 200, 200, 200, 200),
        ("GET", "/api/notifications/deliveries/"): everyone(200, anonymous=401),
        ("GET", "/api/notifications/deliveries/{id}/"): expect(401, 404, 200, 200, 200, 200),
    }
)
API_COLLECTIONS.update(
    {
        "notifications/channels": lambda w: world_channel(w).pk,
        "notifications/rules": lambda w: world_rule(w).pk,
        "notifications/events": lambda w: world_event(w).pk,
        "notifications/deliveries": lambda w: world_delivery(w).pk,
    }
)

API.update(
    {
        ("GET", "/api/maintenance/windows/"): everyone(200, anonymous=401),
        ("POST", "/api/maintenance/windows/"): everyone(400, anonymous=401, body=lambda w: {}),
        ("GET", "/api/maintenance/windows/{id}/"): expect(401, 404, 200, 200, 200, 200),
        ("PUT", "/api/maintenance/windows/{id}/"): expect(
            401,
            404,
            403,
            200,
            200,
            200,
            writers=EDITORS,
            body=lambda w: {
                "name": "hijacked",
                "kind": "recurring",
                "weekdays": [0, 3],
                "start_time": "02:00",
                "duration_minutes": 60,
                "timezone": "Europe/Amsterdam",
            },
        ),
        ("PATCH", "/api/maintenance/windows/{id}/"): expect(
            401, 404, 403, 200, 200, 200, writers=EDITORS, body=lambda w: {"name": "hijacked"}
        ),
        ("DELETE", "/api/maintenance/windows/{id}/"): expect(
            401, 404, 403, 204, 204, 204, writers=EDITORS
        ),
        ("POST", "/api/maintenance/windows/{id}/end-now/"): expect(
            401, 404, 403, 200, 200, 200, writers=EDITORS
        ),
    }
)
API_COLLECTIONS["maintenance/windows"] = lambda w: world_window(w).pk


def fill_api(path: str, authz_world: World) -> str:
    parts = path.split("/")
    # /api/<collection>/… or /api/notifications/<collection>/… (maintenance/ likewise)
    nested = parts[2] in ("notifications", "maintenance")
    collection = "/".join(parts[2:4]) if nested else parts[2]

    def value(match: re.Match) -> str:
        name = match.group(1)
        filler = API_PARAMETERS.get(name)
        if name == "id":
            filler = API_COLLECTIONS.get(collection)
        if filler is None:
            pytest.fail(
                f"API path {path} has a parameter '{name}' the matrix cannot fill: add it to "
                "API_COLLECTIONS / API_PARAMETERS in tests/test_authz_matrix.py."
            )
        return str(filler(authz_world))

    return re.sub(r"\{(\w+)\}", value, path)


def missing_row(what: str, table: str) -> str:
    return (
        f"{what} is not in the authorisation matrix: add a row to {table} in "
        "tests/test_authz_matrix.py saying what each persona gets."
    )


# --- the matrix ------------------------------------------------------------------------------

# Failures the matrix found in the application, not fixed yet: case id -> what it shows. Each is
# a strict xfail (on an assertion only): once fixed, it XPASSes and fails until its line goes.
KNOWN_FAILURES: dict[str, str] = {}


def case(*values: Any, id: str) -> Any:
    """A parameter set, a strict xfail if it is a known failure of the application."""
    reason = KNOWN_FAILURES.get(id)
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
    return pytest.param(*values, id=id, marks=marks)


def page_cases() -> list:
    return [
        case(pattern, method, persona, id=f"{method} {pattern.key} {persona}")
        for pattern in page_patterns()
        for method in ("GET", "POST")
        for persona in PERSONAS
    ]


def api_cases() -> list:
    return [
        case(method, path, persona, id=f"{method} {path} {persona}")
        for method, path in api_operations()
        for persona in PERSONAS
    ]


def run_case(
    authz_world: World, persona: str, method: str, url: str, row: Row, send, *, api: bool
) -> str:
    """Send the request; check the invariants, the status, and that non-writers wrote nothing;
    returns the body."""
    where = f"{method} {url}"
    before = snapshot()
    response = send()
    body = check_answer(authz_world, persona, where, response, row.expected[persona])
    said = f"{where} as {persona}: {response.status_code} {excerpt(body)!r}"
    if persona in OUTSIDERS and not row.any_403:
        assert response.status_code != 403, f"a 403 tells the {persona} it exists: {said}"
    if persona in row.writers:
        return body
    changed = changes(before, snapshot())
    assert not changed, f"changed {changed}: {said}"
    if api and method in WRITE_METHODS:
        if row.report and response.status_code == 200:
            assert json.loads(body)["changed"] == [], f"a refusal report changed rows: {said}"
        else:
            assert not 200 <= response.status_code < 300, f"2xx on a write: {said}"
    return body


@pytest.mark.parametrize(("pattern", "method", "persona"), page_cases())
def test_page_matrix(authz_world, pattern, method, persona):
    """Every page pattern, GET and POST, for every persona."""
    row = PAGES.get((pattern.key, method))
    if row is None:
        pytest.fail(missing_row(f"{method} {pattern.route} ('{pattern.key}')", "PAGES"))
    url = fill_page(pattern, authz_world)
    client = page_client(authz_world, persona)
    data = row.body(authz_world) if row.body else {}
    send = (lambda: client.get(url)) if method == "GET" else (lambda: client.post(url, data))
    run_case(authz_world, persona, method, url, row, send, api=False)


@pytest.mark.parametrize(("method", "path", "persona"), api_cases())
def test_api_matrix(authz_world, method, path, persona):
    """Every operation of the OpenAPI schema, for every persona, with a token."""
    row = API.get((method, path))
    if row is None:
        pytest.fail(missing_row(f"{method} {path}", "API"))
    url = fill_api(path, authz_world)
    client = api_client(authz_world, persona)
    data = row.body(authz_world) if row.body else None
    kwargs = {"content_type": "application/json"}
    if data is not None:
        kwargs["data"] = json.dumps(data)

    def send():
        return getattr(client, method.lower())(url, **kwargs)

    run_case(authz_world, persona, method, url, row, send, api=True)


# --- what the former editor keeps ------------------------------------------------------------
# The tables above give him the stranger's answer on everything of "prod" and of the owner. What
# he made for himself, outside any environment, stays his: (method, page pattern name or API
# path, which of his objects fills pk/{id}) -> what he gets (he may change it).


def mine(status, *, body=None) -> Row:
    return Row({"former": status}, frozenset({"former"} if body else ()), body)


def former_connection_settings(authz_world: World) -> dict:
    return connection_settings(authz_world, authz_world.former_own["connection"])


def former_window_settings(authz_world: World) -> dict:
    return window_settings(authz_world, authz_world.former_own["connection"])


FORMER_OWN: dict[tuple[str, str, str], Row] = {
    ("GET", "connections:detail", "connection"): mine(200),
    ("GET", "connections:edit", "connection"): mine(200),
    ("POST", "connections:edit", "connection"): mine(302, body=former_connection_settings),
    ("GET", "maintenance:detail", "window"): mine(200),
    ("GET", "maintenance:edit", "window"): mine(200),
    ("POST", "maintenance:edit", "window"): mine(302, body=former_window_settings),
    ("GET", "notifications:channel", "channel"): mine(200),
    ("GET", "notifications:channel-edit", "channel"): mine(200),
    ("POST", "notifications:channel-edit", "channel"): mine(302, body=channel_settings),
    ("GET", "/api/connections/{id}/", "connection"): mine(200),
    ("GET", "/api/maintenance/windows/{id}/", "window"): mine(200),
    ("PATCH", "/api/maintenance/windows/{id}/", "window"): mine(200, body=lambda w: RENAME),
    ("GET", "/api/notifications/channels/{id}/", "channel"): mine(200),
    ("PATCH", "/api/notifications/channels/{id}/", "channel"): mine(200, body=lambda w: RENAME),
    ("GET", "/api/notifications/rules/{id}/", "rule"): mine(200),
}
# where his own things are listed to him (by name)
FORMER_LISTED = {
    "connections:list": "former-conn",
    "maintenance:list": "former-window",
    "notifications:channels": "former-hook",
    "/api/connections/": "former-conn",
    "/api/maintenance/windows/": "former-window",
    "/api/notifications/channels/": "former-hook",
}


def send_as(authz_world: World, persona: str, method: str, url: str, data: dict | None):
    """A page request (form data) or, for /api/, an API request with the persona's token."""
    if url.startswith("/api/"):
        client = api_client(authz_world, persona)
        kwargs = {"content_type": "application/json"}
        if data is not None:
            kwargs["data"] = json.dumps(data)
        return lambda: getattr(client, method.lower())(url, **kwargs)
    client = page_client(authz_world, persona)
    return (lambda: client.get(url)) if method == "GET" else (lambda: client.post(url, data or {}))


@pytest.mark.parametrize(
    ("method", "where", "which"), [case(*key, id=" ".join(key)) for key in FORMER_OWN]
)
def test_the_former_editor_keeps_what_he_made_for_himself(authz_world, method, where, which):
    """His own connection, window, channel and rule: he sees and changes them, and they name
    nothing of "prod" he no longer sees (his rule still lists prod's connection)."""
    row = FORMER_OWN[method, where, which]
    obj = authz_world.former_own[which]
    api = where.startswith("/api/")
    url = where.replace("{id}", str(obj.pk)) if api else reverse(where, kwargs={"pk": obj.pk})
    data = row.body(authz_world) if row.body else None
    send = send_as(authz_world, "former", method, url, data)
    body = run_case(authz_world, "former", method, url, row, send, api=api)
    if method == "GET" and hasattr(obj, "name"):
        assert obj.name in body, f"GET {url} as former does not show {obj.name}: {excerpt(body)}"


@pytest.mark.parametrize(("where", "name"), FORMER_LISTED.items())
def test_the_former_editors_lists_still_show_what_he_made_for_himself(authz_world, where, name):
    api = where.startswith("/api/")
    url = where if api else reverse(where)
    send = send_as(authz_world, "former", "GET", url, None)
    body = run_case(authz_world, "former", "GET", url, mine(200), send, api=api)
    assert name in body, f"GET {url} as former does not list {name}: {excerpt(body)}"


def test_the_former_editors_own_channel_heard_nothing_of_prod_after_he_left(authz_world):
    """His channel's rule still names prod's connection (made while he could): the owner's
    change to it after he left was routed, and queued to no channel of his."""
    routed = authz_world.connection.events.filter(trigger="user", routed_at__isnull=False)
    assert routed.exists()
    heard = Message.objects.filter(channel=authz_world.former_own["channel"])
    assert list(heard.values_list("title", flat=True)) == []


def test_the_world_holds_the_texts_that_could_name_hidden_objects(authz_world):
    """The matrix is as good as its world: the schedule and the probe wrote about the shared
    connection while the owner's private window and parent were involved, the events were
    routed, the former editor is out of "prod" and the connection is back where the tables
    assume."""
    connection = authz_world.connection
    assert connection.status == "registered"
    history = set(connection.history.values_list("trigger", "to_status"))
    assert {("schedule", "maintenance"), ("schedule", "registered")} <= history, history
    failure = world_event(authz_world)
    assert failure is not None and failure.routed_at is not None and failure.quiet, failure
    assert "depends on" in failure.reason or "parent" in failure.reason, failure.reason
    assert not authz_world.users["former"].environment_memberships.exists()
    # the owner reads those names where the others must not
    response = page_client(authz_world, "owner").get(
        reverse("connections:detail", args=[connection.pk])
    )
    assert "owner-private-parent" in check_answer(authz_world, "owner", "GET", response, 200)
    response = page_client(authz_world, "owner").get(reverse("maintenance:list"))
    assert "owner-private-window" in check_answer(authz_world, "owner", "GET", response, 200)


# --- texts written before their readers could read them -------------------------------------
# Whether a text about a connection may name a window or a parent is decided when it is written,
# for those who read about the connection then. A connection of the owner's alone, its texts
# about his private window and parent written, then shared into "prod": its new readers must not
# read those names either.

LATE_NAMES = ("late-private-window", "late-private-parent")


@pytest.fixture
def late_shared(authz_world) -> Connection:
    owner = authz_world.users["owner"]
    late = Connection.objects.create(
        name="late-conn", kind="http", url=f"{BOUND}/late", status="registered", owner=owner
    )
    write_private_texts(owner, late, "late-private")
    change_membership(authz_world.environment, owner, [late], assign=True)
    return late


def late_failure(connection: Connection) -> int:
    return connection.events.filter(category__in=FAILURES).get().pk


LATE_ANSWERS: dict[str, Callable[[World, Connection], str]] = {
    "connections:detail": lambda w, c: reverse("connections:detail", args=[c.pk]),
    "connections:list": lambda w, c: reverse("connections:list"),
    "environments:detail": lambda w, c: reverse("environments:detail", args=[w.environment.pk]),
    "overview": lambda w, c: reverse("overview"),
    "notifications:center": lambda w, c: reverse("notifications:center"),
    "/api/connections/{id}/history/": lambda w, c: f"/api/connections/{c.pk}/history/",
    "/api/notifications/events/": lambda w, c: "/api/notifications/events/",
    "/api/notifications/events/{id}/": lambda w, c: f"/api/notifications/events/{late_failure(c)}/",
}


@pytest.mark.parametrize(
    ("answer", "persona"),
    [
        case(answer, persona, id=f"GET {answer} {persona} (shared late)")
        for answer in LATE_ANSWERS
        for persona in ("viewer", "editor")
    ],
)
def test_texts_written_before_a_connection_was_shared_name_nothing_its_new_readers_may_not_see(
    authz_world, late_shared, answer, persona
):
    url = LATE_ANSWERS[answer](authz_world, late_shared)
    hidden = {**authz_world.hidden_names, persona: authz_world.hidden_names[persona] + LATE_NAMES}
    response = send_as(authz_world, persona, "GET", url, None)()
    check_answer(replace(authz_world, hidden_names=hidden), persona, f"GET {url}", response, 200)


def test_the_matrix_knows_every_pattern_and_operation():
    """Both directions: nothing routed is unknown to the tables, no row names a removed view."""
    pages = {p.key for p in page_patterns()}
    known_pages = {key for key, _ in PAGES}
    assert not pages - known_pages, missing_row(f"{sorted(pages - known_pages)}", "PAGES")
    assert not known_pages - pages, f"PAGES rows for patterns that are gone: {known_pages - pages}"
    operations = set(api_operations())
    assert not operations - set(API), missing_row(f"{sorted(operations - set(API))}", "API")
    assert not set(API) - operations, f"API rows for operations gone: {set(API) - operations}"
    # an API view missing from the schema would escape the schema matrix
    routed = {schema_path_of(p.route) for p in all_patterns() if kind_of(p) == "api"}
    documented = {path for _, path in operations}
    assert routed <= documented, f"API routes not in the OpenAPI schema: {routed - documented}"
    site = {p.key for p in all_patterns() if kind_of(p) == "admin"}
    assert not set(ADMIN_SITE) - site, f"ADMIN_SITE rows for pages gone: {set(ADMIN_SITE) - site}"


# --- the admin -------------------------------------------------------------------------------
# Its own sweep, GET only (the attacks by POST are below): every admin pattern of our apps from
# the resolver; the other apps' model admins (auth, beat) are Django's and skipped.

OUR_APPS = ("connections", "credentials", "environments")
MODEL_ROUTE = re.compile(r"^admin/(\w+)/(\w+)/")
# What a persona who is not staff gets on the admin's own pages (staff: any non-5xx answer).
ADMIN_SITE: dict[str, Any] = {
    "admin:index": ADMIN_LOGIN,
    "admin:login": 200,
    "admin:logout": None,  # GET: 302 to the index, or 405 for staff
    "admin:password_change": ADMIN_LOGIN,
    "admin:password_change_done": ADMIN_LOGIN,
    "admin:autocomplete": ADMIN_LOGIN,
    "admin:jsi18n": ADMIN_LOGIN,
    "admin:app_list": ADMIN_LOGIN,
    "admin:view_on_site": ADMIN_LOGIN,
    "/admin/(?P<url>.*)$": ADMIN_LOGIN,  # the catch-all
}
# The admin's parameters: object_id is the world's object of the model in the URL.
ADMIN_OBJECTS: dict[str, Callable[[World], int]] = {
    "connection": lambda w: w.connection.pk,
    "connectiontransition": lambda w: w.connection.history.order_by("pk").first().pk,
    "credential": lambda w: w.credential.pk,  # the owner's: staff may not open it
    "environment": lambda w: w.secret_environment.pk,
}
ADMIN_PARAMETERS: dict[str, Callable[[World], Any]] = {
    "app_label": lambda w: "credentials",
    "content_type_id": lambda w: ContentType.objects.get_for_model(Connection).pk,
    "transition_name": lambda w: "start_maintenance",
    "url": lambda w: "not-a-page/",
}


def model_of(pattern: Pattern) -> tuple[str, str] | None:
    """(app, model) of a model admin's pattern, None for the admin's own pages."""
    match = MODEL_ROUTE.match(pattern.route)
    registered = {(m._meta.app_label, m._meta.model_name) for m in admin.site._registry}
    return match.groups() if match and match.groups() in registered else None


def admin_patterns() -> list[Pattern]:
    """The admin's patterns, but the model admins of apps that are not ours."""
    return [
        p
        for p in all_patterns()
        if kind_of(p) == "admin" and (model_of(p) or ("",))[0] in ("", *OUR_APPS)
    ]


def fill_admin(pattern: Pattern, authz_world: World) -> str:
    model = (model_of(pattern) or ("", None))[1]
    kwargs = {}
    for name in pattern.parameters:
        filler = ADMIN_PARAMETERS.get(name)
        if name == "object_id":
            filler = ADMIN_OBJECTS.get(model) if model else (lambda w: w.connection.pk)
        if filler is None:
            pytest.fail(
                f"Admin pattern {pattern.route} has a parameter '{name}' (model {model}) the "
                "matrix cannot fill: add it to ADMIN_OBJECTS / ADMIN_PARAMETERS."
            )
        kwargs[name] = filler(authz_world)
    if pattern.key.startswith("/"):  # unnamed: the object shortcut, the catch-all
        return route_to_path(pattern.route, lambda name: str(kwargs[name]))
    return reverse(pattern.key, kwargs=kwargs)


def admin_expectation(pattern: Pattern) -> Any:
    """What a persona who is not staff gets; fails for an admin page nobody described."""
    if model_of(pattern):
        return ADMIN_LOGIN
    if pattern.key not in ADMIN_SITE:
        pytest.fail(
            f"Admin pattern '{pattern.key}' ({pattern.route}) is not in the matrix: add it to "
            "ADMIN_SITE in tests/test_authz_matrix.py."
        )
    return ADMIN_SITE[pattern.key]


@pytest.mark.parametrize("pattern", admin_patterns(), ids=lambda p: p.key)
def test_admin_matrix(authz_world, pattern):
    """Every admin page of our apps, GET, for every persona: only staff get in, nobody reads the
    secret, and staff never open the owner's credential (they may not use it)."""
    url = fill_admin(pattern, authz_world)
    not_staff = admin_expectation(pattern)
    failures = []
    for persona in PERSONAS:
        response = page_client(authz_world, persona).get(url)
        try:
            check_answer(
                authz_world,
                persona,
                f"GET {url}",
                response,
                None if persona == "staff" else not_staff,
            )
            if persona == "staff" and url.startswith("/admin/credentials/credential/"):
                private = f"/{authz_world.credential.pk}/" in url
                assert not (private and response.status_code == 200), f"staff opened {url}"
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)


# --- attacker scenarios ----------------------------------------------------------------------


def requests_with_secret(server) -> list:
    """What the server received carrying the secret (path, Authorization)."""
    return [r for r in server.requests if r[1] and CANARY in r[1]]


class _Recorder(BaseHTTPRequestHandler):
    """Answers 200 to any GET and records (path, Authorization)."""

    def do_GET(self):  # noqa: N802
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def _attacker_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def own_server(_attacker_server):
    """A server of the attacker's own on loopback (another port: outside the bounds)."""
    _attacker_server.requests.clear()
    return _attacker_server


def target(where: str, own_server) -> str:
    return {
        "own server": f"{own_server.url}/steal",  # loopback, another port
        "another host": "http://127.0.0.2:9/steal",
        "userinfo trick": "http://127.0.0.1:9@127.0.0.2:9/steal",
        "inside the bounds": f"{BOUND}/inside",
    }[where]


@pytest.mark.parametrize("where", ["own server", "inside the bounds"])
def test_a_viewer_cannot_attach_the_shared_credential_on_the_add_page(
    authz_world, own_server, where
):
    """A viewer never attaches a shared credential, wherever the URL points."""
    count = Connection.all_objects.count()
    response = page_client(authz_world, "viewer").post(
        reverse("connections:add"),
        {**new_connection(authz_world), "url": target(where, own_server)},
    )
    body = check_answer(authz_world, "viewer", f"POST /connections/add/ ({where})", response, 400)
    errors = response.context["form"].errors
    assert {"credential", "url"} & set(errors), f"no credential/url error: {excerpt(body)}"
    assert Connection.all_objects.count() == count
    assert requests_with_secret(own_server) == []


@pytest.mark.parametrize("where", ["own server", "inside the bounds"])
def test_a_viewer_cannot_attach_the_shared_credential_through_the_api(
    authz_world, own_server, where
):
    count = Connection.all_objects.count()
    response = api_client(authz_world, "viewer").post(
        "/api/connections/",
        {**new_connection(authz_world), "url": target(where, own_server)},
        content_type="application/json",
    )
    body = check_answer(authz_world, "viewer", f"POST /api/connections/ ({where})", response, 400)
    fields = json.loads(body)["error"].get("fields", {})
    assert {"credential", "url"} & set(fields), f"no credential/url error: {body[:300]}"
    assert Connection.all_objects.count() == count
    assert requests_with_secret(own_server) == []


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize("where", ["own server", "another host", "userinfo trick"])
def test_an_editor_cannot_move_the_connection_out_of_the_credentials_bounds(
    authz_world, own_server, where, method
):
    url = f"/api/connections/{authz_world.connection.pk}/"
    response = getattr(api_client(authz_world, "editor"), method.lower())(
        url, {"url": target(where, own_server)}, content_type="application/json"
    )
    body = check_answer(authz_world, "editor", f"{method} {url} ({where})", response, 400)
    assert "url" in json.loads(body)["error"].get("fields", {}), body[:300]
    authz_world.connection.refresh_from_db()
    assert authz_world.connection.url == f"{BOUND}/x"
    assert requests_with_secret(own_server) == []


def admin_form(authz_world: World, **values) -> dict:
    """The connection admin's form, as staff would fill it: the owner's credential attached."""
    data = {
        "name": "staff-conn",
        "kind": "http",
        "url": f"{BOUND}/staff",
        "owner": authz_world.users["staff"].pk,
        "credential": authz_world.credential.pk,
        "cluster": "",
        "failure_threshold": 3,
        "probe_interval": 30,
        "metadata": "{}",
    }
    return {**data, **values}


def assert_admin_refused(authz_world, response, where: str) -> None:
    body = check_answer(authz_world, "staff", where, response, 200)  # the form again, with errors
    form = response.context["adminform"].form
    assert {"credential", "url"} & set(form.errors), f"accepted: {excerpt(body)}"


@pytest.mark.parametrize("where", ["inside the bounds", "own server"])
def test_staff_cannot_attach_the_owners_credential_in_the_admin_add_page(
    authz_world, own_server, where
):
    count = Connection.all_objects.count()
    response = page_client(authz_world, "staff").post(
        reverse("admin:connections_connection_add"),
        admin_form(authz_world, url=target(where, own_server)),
    )
    assert_admin_refused(authz_world, response, f"admin add ({where})")
    assert Connection.all_objects.count() == count
    assert requests_with_secret(own_server) == []


def test_staff_cannot_repoint_the_owners_connection_in_the_admin(authz_world, own_server):
    connection = authz_world.connection
    response = page_client(authz_world, "staff").post(
        reverse("admin:connections_connection_change", args=[connection.pk]),
        admin_form(
            authz_world,
            name=connection.name,
            url=f"{own_server.url}/steal",
            owner=connection.owner_id,
        ),
    )
    assert_admin_refused(authz_world, response, "admin change (URL to own server)")
    connection.refresh_from_db()
    assert connection.url == f"{BOUND}/x"
    assert requests_with_secret(own_server) == []


def test_staff_cannot_attach_the_owners_credential_to_their_own_connection_in_the_admin(
    authz_world,
):
    mine = Connection.objects.create(
        name="staff-own", kind="http", url=f"{BOUND}/mine", owner=authz_world.users["staff"]
    )
    response = page_client(authz_world, "staff").post(
        reverse("admin:connections_connection_change", args=[mine.pk]),
        admin_form(authz_world, name="staff-own", url=f"{BOUND}/mine"),
    )
    assert_admin_refused(authz_world, response, "admin change (attach credential)")
    mine.refresh_from_db()
    assert mine.credential_id is None


@pytest.mark.parametrize("term", ["", "matrix"])
def test_the_admin_autocomplete_offers_staff_no_credential_they_may_not_use(authz_world, term):
    response = page_client(authz_world, "staff").get(
        reverse("admin:autocomplete"),
        {
            "app_label": "connections",
            "model_name": "connection",
            "field_name": "credential",
            "term": term,
        },
    )
    body = check_answer(authz_world, "staff", "GET /admin/autocomplete/", response, 200)
    offered = {item["id"] for item in json.loads(body)["results"]}
    assert str(authz_world.credential.pk) not in offered, body[:300]
    assert "matrix-cred" not in body


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("name", ["not_a_transition", "delete"])
def test_the_admin_transition_url_answers_no_5xx_for_a_name_that_is_no_transition(
    authz_world, name, method
):
    """django-fsm-2's transition URL, reachable by staff, with a name typed in the URL."""
    url = reverse("admin:connections_connection_transition", args=[authz_world.connection.pk, name])
    response = getattr(page_client(authz_world, "staff"), method.lower())(url)
    check_answer(authz_world, "staff", f"{method} {url}", response, None)
    authz_world.connection.refresh_from_db()
    assert authz_world.connection.status == "registered"


def admin_form_of(response) -> dict:
    """The POST an admin add/change page would send as rendered (inlines included)."""
    data: dict[str, Any] = {}
    form = response.context["adminform"].form
    for name in form.fields:
        value = form[name].value()
        data[name] = [str(v) for v in value] if isinstance(value, list | tuple) else value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[formset.management_form.add_prefix(name)] = formset.management_form[name].value()
        for child in formset.forms:
            for name in child.fields:
                data[child.add_prefix(name)] = child[name].value()
    return {key: value for key, value in data.items() if value is not None}


def env_admin_share(authz_world: World, client: Client):
    """A new environment of staff's own, the owner's credential picked in its credentials box
    (the autocomplete would not offer it; the form's id list is typed in)."""
    url = reverse("admin:environments_environment_add")
    data = admin_form_of(client.get(url))
    data.update(
        name="staff-env",
        owner=authz_world.users["staff"].pk,
        credentials=[authz_world.credential.pk],
    )
    return url, data


def env_admin_join(authz_world: World, client: Client):
    """secret-env's members inline: staff adds themselves as an editor."""
    url = reverse("admin:environments_environment_change", args=[authz_world.secret_environment.pk])
    data = admin_form_of(client.get(url))
    total = int(data["memberships-TOTAL_FORMS"])
    data.update(
        {
            "memberships-TOTAL_FORMS": str(total + 1),
            f"memberships-{total}-user": authz_world.users["staff"].pk,
            f"memberships-{total}-role": "editor",
            f"memberships-{total}-environment": authz_world.secret_environment.pk,
        }
    )
    return url, data


def env_admin_take_over(authz_world: World, client: Client):
    """secret-env's owner field set to staff."""
    url = reverse("admin:environments_environment_change", args=[authz_world.secret_environment.pk])
    data = admin_form_of(client.get(url))
    data["owner"] = authz_world.users["staff"].pk
    return url, data


@pytest.mark.parametrize(
    "route", [env_admin_share, env_admin_join, env_admin_take_over], ids=lambda f: f.__name__
)
def test_staff_cannot_gain_the_use_of_the_owners_credential_through_the_environment_admin(
    authz_world, route
):
    """Only the owner shares a credential (README); the environment admin is another door to
    the same thing: afterwards staff may still not attach the owner's credential."""
    client = page_client(authz_world, "staff")
    url, data = route(authz_world, client)
    response = client.post(url, data)
    check_answer(authz_world, "staff", f"POST {url} ({route.__name__})", response, None)
    usable = Credential.objects.restrict(authz_world.users["staff"], "use")
    environments = Environment.objects.values_list("name", "owner__username", "credentials__name")
    members = EnvironmentMembership.objects.values_list("environment__name", "user__username")
    assert not usable.filter(pk=authz_world.credential.pk).exists(), (
        f"POST {url} as staff ({route.__name__}) answered {response.status_code} "
        f"{response.get('Location', '')} and staff may now attach the owner's credential: "
        f"environments {list(environments)}, memberships {list(members)}"
    )


# --- names of environments the reader may not see -------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "editor"])
def test_the_credentials_page_names_only_visible_environments(authz_world, persona):
    response = page_client(authz_world, persona).get(reverse("credentials:list"))
    body = check_answer(authz_world, persona, "GET /credentials/", response, 200)
    assert "matrix-cred" in body and "prod" in body


@pytest.mark.parametrize("persona", ["viewer", "editor"])
def test_the_credential_api_names_only_visible_environments(authz_world, persona):
    url = f"/api/credentials/{authz_world.credential.pk}/"
    response = api_client(authz_world, persona).get(url)
    body = check_answer(authz_world, persona, f"GET {url}", response, 200)
    assert [e["name"] for e in json.loads(body)["environments"]] == ["prod"]


def test_the_editors_patch_answer_names_only_visible_environments(authz_world):
    url = f"/api/connections/{authz_world.connection.pk}/"
    response = api_client(authz_world, "editor").patch(
        url, {"name": "renamed"}, content_type="application/json"
    )
    body = check_answer(authz_world, "editor", f"PATCH {url}", response, 200)
    assert [e["name"] for e in json.loads(body)["environments"]] == ["prod"]


@pytest.mark.parametrize("persona", ["stranger", "viewer", "editor", "former"])
@pytest.mark.parametrize("page", ["connections:list", "environments:detail", "overview"])
def test_table_fragments_name_only_visible_environments(authz_world, persona, page):
    """The htmx refresh of a table is another template: the same rules apply to it."""
    args = [authz_world.environment.pk] if page == "environments:detail" else []
    url = reverse(page, args=args)
    response = page_client(authz_world, persona).get(url, HTTP_HX_REQUEST="true")
    expected = 404 if persona in OUTSIDERS and args else 200
    check_answer(authz_world, persona, f"GET {url} (htmx)", response, expected)


def test_a_duplicate_endpoint_does_not_name_what_a_stranger_may_not_see(authz_world):
    """Adding the world's endpoint again: refused, without naming the connection."""
    duplicate = {**new_connection(authz_world), "url": f"{BOUND}/x", "credential": ""}
    response = page_client(authz_world, "stranger").post(reverse("connections:add"), duplicate)
    check_answer(authz_world, "stranger", "POST /connections/add/ (duplicate)", response, 400)
    response = api_client(authz_world, "stranger").post(
        "/api/connections/", {**duplicate, "credential": None}, content_type="application/json"
    )
    body = check_answer(
        authz_world, "stranger", "POST /api/connections/ (duplicate)", response, 409
    )
    assert "existing" not in json.loads(body)["error"], body[:300]
