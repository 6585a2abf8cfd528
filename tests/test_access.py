"""What a page offers is exactly what its POST accepts, for every persona and every control.

``core.access`` is the one authority; this test holds every page to it from the outside. For
each object page (the table, a connection, an environment, the credentials, a channel, a
window, the users, the locations and a location's removal) the superuser's page lists every
control there is: each POST form, and each link to an edit page (whose form is then the
control). For each persona, a control is *offered* when the persona's own page shows it, and
*accepted* when submitting it as a browser would (the form's own fields, a name changed, a
first choice taken) changes the database. The two must agree: no menu, button or bulk bar
that then refuses, and no POST that succeeds without one.

Personas: the owner of everything; an editor, a viewer and a holder of the global
``connections.transition_connection`` permission (a viewer too) of the environment "prod"; a
stranger; staff (no model permissions); a superuser.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import resolve, reverse
from django.utils import timezone

from accounts.models import Invitation
from connections.models import (
    Connection,
    ConnectionTransition,
    Dependency,
    Location,
    ProbeResult,
)
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from maintenance import windows as maintenance_windows
from maintenance.models import Window
from notifications import channels as notify_channels
from notifications.models import Channel, Message, Rule, Watch

pytestmark = pytest.mark.django_db

PERSONAS = ("owner", "editor", "viewer", "holder", "stranger", "staff", "superuser")
BOUND = "http://127.0.0.1:9"
# forms every signed-in page has that act on the session or the reader, not on the object
# one's own session, bell or table columns: no control over anything shared
NOT_CONTROLS = {"logout", "notifications:mark-read", "connections:columns"}


# --- reading forms as a browser does --------------------------------------------------------


@dataclass
class Form:
    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    selects: dict[str, list[str]] = field(default_factory=dict)  # name -> option values
    chosen: dict[str, list[str]] = field(default_factory=dict)  # name -> selected values
    buttons: list[tuple[str, str]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # text inputs and textareas, by name


class Forms(HTMLParser):
    """Every ``method="post"`` form of a page, every link, and the table's row checkboxes."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.links: set[str] = set()
        self.selectable: set[str] = set()
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.add(a["href"])
        if tag == "input" and a.get("name") == "select" and a.get("type") == "checkbox":
            self.selectable.add(a.get("value", ""))
        if tag == "form" and a.get("method", "").lower() == "post":
            self._form = Form(a.get("action", ""))
            self.forms.append(self._form)
            return
        form = self._form
        if form is None:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("hidden",):
                form.fields.append((name, a.get("value", "")))
            elif kind == "radio":
                if "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            elif kind == "checkbox":
                if "checked" in a or "required" in a:  # a required box: the user ticks it
                    form.fields.append((name, a.get("value", "on")))
            elif kind == "submit":
                form.buttons.append((name, a.get("value", "")))
            else:
                form.fields.append((name, a.get("value", "")))
                form.text.append(name)
        elif tag == "button" and a.get("type", "submit") == "submit" and name:
            form.buttons.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select = name
            form.selects[name] = []
            form.chosen[name] = []
        elif tag == "option" and self._select is not None:
            form.selects[self._select].append(a.get("value", ""))
            if "selected" in a:
                form.chosen[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            form.fields.append((name, ""))
            form.text.append(name)

    def handle_data(self, data: str) -> None:
        if self._textarea and self._form:
            name, _ = self._form.fields[-1]
            self._form.fields[-1] = (name, data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def read(html: str) -> Forms:
    parser = Forms()
    parser.feed(html)
    return parser


def submission(form: Form, access_world: World) -> dict[str, Any]:
    """What a browser sends: the form's fields, a new name, the first real choice of each
    select (the chosen ones when it has them), the first submit button's value."""
    data: dict[str, Any] = {}
    for name, value in form.fields:
        data.setdefault(name, [])
        data[name].append(value)
    for name, options in form.selects.items():
        real = [o for o in options if o]
        if "maintenance" in real:  # a state to go to: one every probed state reaches
            real = ["maintenance"]
        data[name] = form.chosen[name] or real[:1]
    if "name" in data:
        data["name"] = ["renamed-by-test"]
    if "username" in form.text:
        data["username"] = [access_world.users["stranger"].username]
    if "parent" in form.text:  # "add a parent": the other connection of prod
        data["parent"] = [str(access_world.parent.pk)]
    if "reason" in data:
        data["reason"] = ["test"]
    if form.buttons:
        name, value = form.buttons[0]
        data[name] = [value]
    return data


# --- the world ------------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, Any]
    prod: Environment
    connection: Connection
    parent: Connection
    credential: Credential
    channel: Channel
    window: Window


def build() -> World:
    user_model = get_user_model()
    users = {
        persona: user_model.objects.create_user(
            f"access-{persona}",
            password="pw",
            is_staff=persona == "staff",
            is_superuser=persona == "superuser",
        )
        for persona in PERSONAS
    }
    users["holder"].user_permissions.add(Permission.objects.get(codename="transition_connection"))
    owner = users["owner"]
    credential = Credential(name="access-cred", kind="bearer_token", owner=owner)
    credential.endpoints = [BOUND]
    credential.set_secret({"token": "t"})
    credential.save()
    connection = Connection.objects.create(
        name="access-conn", kind="http", url=f"{BOUND}/x", status="registered", owner=owner
    )
    parent = Connection.objects.create(
        name="access-parent", kind="http", url=f"{BOUND}/p", status="registered", owner=owner
    )
    prod = Environment.objects.create(name="prod", owner=owner)
    prod.connections.add(connection, parent)
    prod.credentials.add(credential)
    for persona, role in (("editor", "editor"), ("viewer", "viewer"), ("holder", "viewer")):
        EnvironmentMembership.objects.create(environment=prod, user=users[persona], role=role)
    now = timezone.now()
    window = maintenance_windows.save_window(
        owner,
        Window(),
        name="access-window",
        kind="one_off",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=12),
        connections=[connection],
        environment=prod,
    )
    channel, _ = notify_channels.create_channel(
        owner,
        name="access-hook",
        kind="webhook",
        destination=f"{BOUND}/hook",
        environment=prod,
        rule={"connections": [connection]},
    )
    return World(users, prod, connection, parent, credential, channel, window)


@pytest.fixture
def access_world(db) -> World:
    return build()


def snapshot() -> str:
    """Everything a control could change, as one digest."""
    parts = [
        Connection.all_objects.order_by("pk").values_list("pk", "name", "status", "url"),
        ConnectionTransition.objects.order_by("pk").values_list("pk"),
        ProbeResult.objects.order_by("pk").values_list("pk"),  # probe now
        Dependency.objects.order_by("pk").values_list("pk", "child_id", "parent_id"),
        Environment.objects.order_by("pk").values_list("pk", "name", "description"),
        EnvironmentMembership.objects.order_by("pk").values_list("pk", "user_id", "role"),
        Environment.connections.through.objects.order_by("pk").values_list("pk"),
        Environment.credentials.through.objects.order_by("pk").values_list("pk"),
        Credential.objects.order_by("pk").values_list("pk", "name", "secret_ciphertext"),
        get_user_model().objects.order_by("pk").values_list("pk", "is_active", "is_staff"),
        Invitation.objects.order_by("pk").values_list("pk", "issued_at"),
        Channel.objects.order_by("pk").values_list("pk", "name", "enabled", "config_encrypted"),
        Rule.objects.order_by("pk").values_list("pk"),
        Watch.objects.order_by("pk").values_list("pk"),
        Message.objects.order_by("pk").values_list("pk"),
        Window.objects.order_by("pk").values_list("pk", "name", "enabled", "ends_at", "ended_at"),
        Location.objects.order_by("pk").values_list("pk", "name", "description"),
    ]
    return hashlib.sha256(repr([list(p) for p in parts]).encode()).hexdigest()


# --- the pages and their controls -----------------------------------------------------------

PAGES = {
    "table": lambda w: reverse("connections:list"),
    "connection": lambda w: reverse("connections:detail", args=[w.connection.pk]),
    "environment": lambda w: reverse("environments:detail", args=[w.prod.pk]),
    "credentials": lambda w: reverse("credentials:list"),
    "channel": lambda w: reverse("notifications:channel", args=[w.channel.pk]),
    "window": lambda w: reverse("maintenance:detail", args=[w.window.pk]),
    "users": lambda w: reverse("users:list"),
    "locations": lambda w: reverse("locations:list"),  # its control: adding one
    "location-remove": lambda w: reverse("locations:remove", args=[a_location().pk]),
}


def a_location() -> Location:
    """Made for the one page about a location: in the world, every page's "Probe now" would
    go by rounds (connections/probing/now.py)."""
    location, _ = Location.objects.get_or_create(name="access-west")
    return location


EDIT_LINK = re.compile(r"/(\d+)/edit/$")


@dataclass(frozen=True)
class Control:
    page: str
    key: str  # the form's action and its distinguishing hidden fields, or "edit <url>"


def controls_of(forms: Forms, page: str, access_world: World) -> dict[Control, tuple[str, dict]]:
    """Each control of a page -> (the URL it POSTs to, what a browser sends)."""
    found: dict[Control, tuple[str, dict]] = {}
    for form in forms.forms:
        if not form.action or resolve(form.action).view_name in NOT_CONTROLS:
            continue
        if form.action == reverse("connections:bulk"):
            continue  # the bulk bar acts on the rows selected: each selectable row is a control
        marks = sorted((n, v) for n, v in form.fields if n in ("remove", "action", "parent"))
        found[Control(page, f"{form.action} {marks}")] = (
            form.action,
            submission(form, access_world),
        )
    for href in forms.links:
        if EDIT_LINK.search(href):
            found[Control(page, f"edit {href}")] = (href, {})
    if page in ("table", "environment"):
        for pk in forms.selectable:
            found[Control(page, f"bulk select {pk}")] = (
                reverse("connections:bulk"),
                {"ids": pk, "action": "transition:maintenance"},
            )
    return found


def edit_submission(superuser: Client, url: str, access_world: World) -> dict:
    """The edit page's own form, as the superuser's browser fills it."""
    forms = read(superuser.get(url).content.decode())
    main = max(forms.forms, key=lambda f: len(f.fields) + len(f.selects))
    return submission(main, access_world)


def accepted(client: Client, url: str, data: dict) -> bool:
    """Whether the POST changes anything (undone afterwards)."""
    before = snapshot()
    with transaction.atomic():
        client.post(url, data)
        changed = snapshot() != before
        transaction.set_rollback(True)
    return changed


@pytest.mark.parametrize("page", list(PAGES))
def test_every_control_a_page_offers_is_accepted_and_none_other(access_world, page):
    clients = {}
    for persona, user in access_world.users.items():
        clients[persona] = Client()
        clients[persona].force_login(user)
    url = PAGES[page](access_world)
    every = controls_of(read(clients["superuser"].get(url).content.decode()), page, access_world)
    assert every, f"the superuser's {page} page shows no control at all"
    wrong = []
    for persona, client in clients.items():
        response = client.get(url)
        shown = (
            controls_of(read(response.content.decode()), page, access_world)
            if response.status_code == 200
            else {}
        )
        for control, (target, data) in every.items():
            if control.key.startswith("edit "):
                target, data = target, edit_submission(clients["superuser"], target, access_world)
            offered = control in shown
            took = accepted(client, target, data)
            if offered != took:
                what = "offered but refused" if offered else "not offered but accepted"
                wrong.append(f"{persona}: {control.key}: {what}")
    assert not wrong, f"{page}: " + "; ".join(wrong)


def test_the_permission_holder_gets_the_state_menu_the_post_accepts(access_world):
    """The defect this authority was built for: the global permission's holder (a viewer of
    prod) could transition a connection whose table row showed him no state menu."""
    client = Client()
    client.force_login(access_world.users["holder"])
    page = client.get(reverse("connections:list")).content.decode()
    transition = reverse("connections:transition", args=[access_world.connection.pk])
    assert f'action="{transition}"' in page
    client.post(transition, {"to": "maintenance"})
    access_world.connection.refresh_from_db()
    assert access_world.connection.status == "maintenance"
    # and a plain viewer gets neither
    viewer = Client()
    viewer.force_login(access_world.users["viewer"])
    assert f'action="{transition}"' not in viewer.get(reverse("connections:list")).content.decode()
    assert 'id="bulk"' not in viewer.get(reverse("connections:list")).content.decode()
