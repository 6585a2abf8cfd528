"""Notification pages: channels (write-only destination, secret shown once, rules, test, log),
the notification center, the header bell and watches; every page behind ``restrict``."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.urls import reverse

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection
from environments.models import Environment, EnvironmentMembership
from notifications import center, channels
from notifications.models import Channel, Delivery, Event, ReadMark, Rule, Watch
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

TOKEN_PATH = "hook/s3cr3t-path-token"
ADD = reverse("notifications:channel-add")
CENTER = reverse("notifications:center")
BELL = reverse("notifications:bell")


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hits += 1
        answer, kind = getattr(self.server, "answer", (b"ok", "text/plain"))
        self.send_response(self.server.status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def counting_receiver():
    """A webhook receiver on loopback that only counts its requests (``hits``) and answers
    ``status``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    server.hits, server.status = 0, 200
    server.url = f"http://127.0.0.1:{server.server_address[1]}/{TOKEN_PATH}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def form_data(**overrides) -> dict:
    data = {
        "name": "ops hook",
        "kind": "webhook",
        "destination": "",
        "environment": "",
        "enabled": "on",
        "group_window": "10",
        "group_threshold": "3",
        "cooldown": "300",
        "remind_every_hours": "0",
        "rate_per_hour": "60",
        "rule-categories": ["disconnected", "recovery"],
    }
    data.update(overrides)
    return data


@pytest.fixture
def hook(owner, counting_receiver) -> tuple[Channel, str]:
    return channels.create_channel(
        owner, name="ops hook", kind="webhook", destination=counting_receiver.url, group_window=0
    )


def down(conn, reason="unreachable after 3 consecutive failed probes"):
    conn.refresh_from_db()
    return lifecycle.transition(conn, Status.DISCONNECTED, trigger=Trigger.PROBE, reason=reason)


def up(conn):
    conn.refresh_from_db()
    return lifecycle.transition(conn, Status.CONNECTED, trigger=Trigger.PROBE, reason="reachable")


# ---- channels --------------------------------------------------------------------------


def test_a_user_cannot_see_or_touch_another_users_channel(hook, stranger):
    channel, _ = hook
    client = client_for(stranger)
    assert channel.name not in client.get(reverse("notifications:channels")).content.decode()
    assert client.get(reverse("notifications:channel", args=[channel.pk])).status_code == 404
    assert client.get(reverse("notifications:channel-edit", args=[channel.pk])).status_code == 404
    for name in ("channel-test", "channel-rotate", "channel-delete", "rule-add"):
        url = reverse(f"notifications:{name}", args=[channel.pk])
        assert client.post(url, {"confirm": "yes"}).status_code == 404
    rule = channel.rules.get()
    url = reverse("notifications:rule-delete", args=[channel.pk, rule.pk])
    assert client.post(url).status_code == 404
    assert Channel.objects.filter(pk=channel.pk).exists() and channel.rules.exists()


def test_an_environment_viewer_sees_its_channel_but_cannot_change_it(
    owner, stranger, counting_receiver
):
    env = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=env, user=stranger, role="viewer")
    channel, _ = channels.create_channel(
        owner, name="prod hook", kind="webhook", destination=counting_receiver.url, environment=env
    )
    client = client_for(stranger)
    page = client.get(reverse("notifications:channel", args=[channel.pk]))
    assert page.status_code == 200 and "Send test" not in page.content.decode()
    edit = client.post(reverse("notifications:channel-edit", args=[channel.pk]), form_data())
    assert edit.status_code == 303
    deleted = client.post(
        reverse("notifications:channel-delete", args=[channel.pk]), {"confirm": "yes"}
    )
    assert deleted.status_code == 303 and Channel.objects.filter(pk=channel.pk).exists()
    assert (
        counting_receiver.hits == 0
        and client.post(reverse("notifications:channel-test", args=[channel.pk])).status_code == 303
    )
    assert counting_receiver.hits == 0


def test_the_signing_secret_is_shown_once_on_create_with_how_to_verify(owner, counting_receiver):
    client = client_for(owner)
    created = client.post(ADD, form_data(destination=counting_receiver.url))
    assert created.status_code == 200
    channel = Channel.objects.get(owner=owner)
    secret = channel.config["secret"]
    html = created.content.decode()
    assert secret in html and "X-Meshplay-Signature" in html and "HMAC-SHA256" in html
    assert "no-store" in created["Cache-Control"]
    assert TOKEN_PATH not in html
    assert list(channel.rules.get().categories) == ["disconnected", "recovery"]
    # never again
    detail = client.get(reverse("notifications:channel", args=[channel.pk]))
    assert secret not in detail.content.decode()


def test_rotating_the_secret_shows_the_new_one_once(hook, owner):
    channel, old = hook
    client = client_for(owner)
    rotated = client.post(reverse("notifications:channel-rotate", args=[channel.pk]))
    channel.refresh_from_db()
    new = channel.config["secret"]
    assert new != old and new in rotated.content.decode() and old not in rotated.content.decode()
    assert (
        new not in client.get(reverse("notifications:channel", args=[channel.pk])).content.decode()
    )


def test_an_email_channel_has_no_secret_page(owner):
    created = client_for(owner).post(
        ADD, form_data(kind="email", destination="ops@example.com", name="mail")
    )
    assert created.status_code == 302
    assert Channel.objects.get(name="mail").destination_hint == "ops@example.com"


def test_the_stored_destination_and_secret_never_appear_in_any_page(hook, owner, make_connection):
    channel, secret = hook
    conn = make_connection(Status.CONNECTED)
    down(conn)
    client = client_for(owner)
    client.post(reverse("notifications:channel-test", args=[channel.pk]))
    pages = [
        reverse("notifications:channels"),
        reverse("notifications:channel", args=[channel.pk]),
        reverse("notifications:channel-edit", args=[channel.pk]),
        CENTER,
        BELL,
    ]
    for url in pages:
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        assert TOKEN_PATH.encode() not in response.content, url
        assert secret.encode() not in response.content, url
    assert b"127.0.0.1" in client.get(reverse("notifications:channels")).content  # the hint
    # a refused edit does not echo the new destination either
    refused = client.post(
        reverse("notifications:channel-edit", args=[channel.pk]),
        form_data(destination="http://169.254.169.254/other-s3cr3t", cooldown="-1"),
    )
    assert refused.status_code == 400 and b"other-s3cr3t" not in refused.content


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"destination": "http://169.254.169.254/latest/"}, "destination", "cannot be used"),
        ({"destination": ""}, "destination", "required"),
        ({"kind": "carrier-pigeon"}, "kind", "Select a valid choice"),
        ({"cooldown": "-5"}, "cooldown", "greater than or equal to 0"),
        ({"rate_per_hour": "99999999999999"}, "rate_per_hour", "less than or equal to"),
        ({"name": ""}, "name", "required"),
        ({"kind": "email", "destination": "not-an-address"}, "destination", "not an email"),
        ({"kind": "apprise", "destination": "windows://"}, "destination", "not offered"),
        ({"rule-kinds": ["no-such-kind"]}, "kinds", "Select a valid choice"),
        ({"rule-categories": ["bogus"]}, "categories", "Select a valid choice"),
    ],
)
def test_bad_input_is_a_400_with_the_field_error_and_keeps_what_was_typed(
    owner, counting_receiver, overrides, field, message
):
    data = form_data(destination=counting_receiver.url, name="kept name", cooldown="123")
    data.update(overrides)
    response = client_for(owner).post(ADD, data)
    assert response.status_code == 400
    form = response.context["rule_form" if field in ("kinds", "categories") else "form"]
    assert message in " ".join(form.errors[field])
    html = response.content.decode()
    assert message.replace("'", "&#x27;") in html
    if field != "name":
        assert 'value="kept name"' in html
    if field != "cooldown":
        assert 'value="123"' in html
    assert TOKEN_PATH not in html and "/latest/" not in html
    assert not Channel.objects.exists()


def test_an_environment_the_user_may_not_manage_is_refused(owner, stranger, counting_receiver):
    env = Environment.objects.create(name="theirs", owner=stranger)
    response = client_for(owner).post(
        ADD, form_data(destination=counting_receiver.url, environment=env.pk)
    )
    assert response.status_code == 400 and "environment" in response.context["form"].errors


@pytest.mark.parametrize(
    "overrides",
    [
        {"environment": str(10**30)},
        {"environment": "prod"},
        {"rule-connections": [str(10**30)]},
        {"rule-environments": ["x"]},
        {"cooldown": "1e9999"},
        {"name": "x" * 201},
        {"destination": "http://127.0.0.1/\x00"},
    ],
)
def test_hostile_values_are_a_400_not_a_500(owner, counting_receiver, overrides):
    data = form_data(destination=counting_receiver.url)
    data.update(overrides)
    assert client_for(owner).post(ADD, data).status_code == 400
    assert not Channel.objects.exists()


def test_a_rule_naming_an_invisible_connection_is_refused(
    owner, counting_receiver, make_connection, stranger
):
    theirs = make_connection(owner=stranger)
    response = client_for(owner).post(
        ADD, form_data(destination=counting_receiver.url, **{"rule-connections": [theirs.pk]})
    )
    assert response.status_code == 400 and "connections" in response.context["rule_form"].errors


def test_editing_with_a_blank_destination_keeps_the_stored_one(hook, owner, counting_receiver):
    channel, secret = hook
    client = client_for(owner)
    edit = client.get(reverse("notifications:channel-edit", args=[channel.pk]))
    assert TOKEN_PATH not in edit.content.decode()
    saved = client.post(
        reverse("notifications:channel-edit", args=[channel.pk]),
        form_data(name="renamed", cooldown="60", kind="email"),  # kind is fixed: ignored
    )
    assert saved.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "renamed" and channel.cooldown == 60 and channel.kind == "webhook"
    assert channel.config == {"url": counting_receiver.url, "secret": secret}


def test_send_test_shows_the_delivery_result_and_logs_it(hook, owner, counting_receiver):
    channel, _ = hook
    client = client_for(owner)
    response = client.post(reverse("notifications:channel-test", args=[channel.pk]), follow=True)
    assert counting_receiver.hits == 1
    html = response.content.decode()
    assert "Test sent: HTTP 200" in html
    assert Delivery.objects.filter(channel=channel, ok=True).count() == 1
    counting_receiver.status = 500
    failed = client.post(reverse("notifications:channel-test", args=[channel.pk]), follow=True)
    assert "Test failed (HTTP 500)" in failed.content.decode()
    log = failed.context["deliveries"]
    assert [d.ok for d in log] == [False, True]


NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n" + b"<!-- padding -->" * 40
)


@pytest.mark.parametrize(
    ("answer", "kind", "said"),
    [
        (NGINX_502, "text/html", "HTTP 502 Bad Gateway: 502 Bad Gateway"),
        (b"<html><body>down</body></html>", "text/html", "HTTP 502 Bad Gateway: an HTML page"),
        (
            b'{"code": 7, "message": "signature\\n  refused"}',
            "application/json",
            "HTTP 502 Bad Gateway: signature refused",
        ),
        (b"upstream gone\nstack trace line", "text/plain", "HTTP 502 Bad Gateway: upstream gone"),
    ],
)
def test_a_receivers_error_page_is_said_in_one_line_never_its_markup(
    hook, owner, counting_receiver, answer, kind, said
):
    channel, _ = hook
    counting_receiver.status, counting_receiver.answer = 502, (answer, kind)
    client = client_for(owner)
    failed = client.post(reverse("notifications:channel-test", args=[channel.pk]), follow=True)
    page = failed.content.decode()
    assert f"Test failed (HTTP 502): {said}" in page
    assert "&lt;html" not in page and "&lt;center" not in page
    logged = Delivery.objects.filter(channel=channel).latest("pk")
    assert logged.error == said and "<" not in logged.error


def test_the_delivery_log_is_paginated_and_a_bad_page_is_not_an_error(hook, owner):
    channel, _ = hook
    message = channel.messages.create(key="k", kind="test", title="t", body="b")
    Delivery.objects.bulk_create(
        Delivery(message=message, channel=channel, attempt=n, ok=False, error=f"err-{n}")
        for n in range(1, 61)
    )
    client = client_for(owner)
    url = reverse("notifications:channel", args=[channel.pk])
    assert len(client.get(url).context["deliveries"]) == 50
    for page in ("2", "abc", "-1", "0", "9" * 30):
        assert client.get(url, {"page": page}).status_code == 200


def test_rules_are_added_and_deleted_through_the_one_rule(hook, owner, make_connection):
    channel, _ = hook
    conn = make_connection()
    client = client_for(owner)
    added = client.post(
        reverse("notifications:rule-add", args=[channel.pk]),
        {"rule-connections": [conn.pk], "rule-categories": ["auth"]},
    )
    assert added.status_code == 302
    rule = channel.rules.order_by("-pk").first()
    assert list(rule.connections.all()) == [conn] and rule.categories == ["auth"]
    refused = client.post(
        reverse("notifications:rule-add", args=[channel.pk]), {"rule-connections": ["999999"]}
    )
    assert refused.status_code == 400 and "connections" in refused.context["rule_form"].errors
    deleted = client.post(reverse("notifications:rule-delete", args=[channel.pk, rule.pk]))
    assert deleted.status_code == 302 and not Rule.objects.filter(pk=rule.pk).exists()
    assert client.get(reverse("notifications:rule-add", args=[channel.pk])).status_code == 405


def test_deleting_a_channel_needs_the_confirmation(hook, owner):
    channel, _ = hook
    client = client_for(owner)
    url = reverse("notifications:channel-delete", args=[channel.pk])
    assert client.post(url).status_code == 303 and Channel.objects.filter(pk=channel.pk).exists()
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    assert not Channel.objects.filter(pk=channel.pk).exists()


def test_changes_are_post_only(hook, owner):
    channel, _ = hook
    client = client_for(owner)
    for name in ("channel-test", "channel-rotate", "channel-delete"):
        assert client.get(reverse(f"notifications:{name}", args=[channel.pk])).status_code == 405
    assert client.get(reverse("notifications:mark-read")).status_code == 405


def test_the_pages_need_a_sign_in(hook):
    channel, _ = hook
    for url in (CENTER, BELL, reverse("notifications:channel", args=[channel.pk])):
        assert Client().get(url).status_code == 302


# ---- the notification center and the bell ----------------------------------------------


def test_the_center_lists_only_the_events_of_visible_connections(owner, stranger, make_connection):
    mine, theirs = (
        make_connection(Status.CONNECTED, name="mine-1"),
        make_connection(Status.CONNECTED, name="theirs-1", owner=stranger),
    )
    gone = make_connection(Status.CONNECTED, name="gone-1")
    for conn in (mine, theirs, gone):
        down(conn)
    Connection.all_objects.filter(pk=gone.pk).update(status=Status.DELETED)
    response = client_for(owner).get(CENTER)
    html = response.content.decode()
    assert "mine-1" in html and "gone-1" in html and "theirs-1" not in html
    assert {e.connection_id for e in response.context["page"]} == {mine.pk, gone.pk}
    assert "Disconnected" in html and "UTC" in html
    stranger_view = client_for(stranger).get(CENTER).content.decode()
    assert "theirs-1" in stranger_view and "mine-1" not in stranger_view


def test_the_center_filters_by_category_and_watched(owner, make_connection):
    watched, other = make_connection(Status.CONNECTED), make_connection(Status.CONNECTED)
    down(watched), down(other), up(other)
    Watch.objects.create(user=owner, connection=watched)
    client = client_for(owner)
    only_watched = client.get(CENTER, {"watched": "1"}).context["page"]
    assert {e.connection_id for e in only_watched} == {watched.pk}
    recoveries = client.get(CENTER, {"category": "recovery"}).context["page"]
    assert [e.connection_id for e in recoveries] == [other.pk]
    assert client.get(CENTER, {"category": "nonsense"}).status_code == 200


@pytest.mark.parametrize("page", ["abc", "0", "-3", "99999", "9" * 40, "1.5", ""])
def test_a_bad_page_parameter_is_never_a_500(owner, make_connection, page):
    for _ in range(3):
        conn = make_connection(Status.CONNECTED)
        down(conn)
    response = client_for(owner).get(CENTER, {"page": page})
    assert response.status_code in (200, 404)


def test_the_center_is_paginated_25_a_page(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    for _ in range(15):
        down(conn), up(conn)
    client = client_for(owner)
    first = client.get(CENTER).context["page"]
    assert len(first) == 25 and first.has_next()
    assert len(client.get(CENTER, {"page": 2}).context["page"]) == 5


def test_the_bell_counts_failures_and_recoveries_of_owned_and_watched_connections(
    owner, stranger, make_connection
):
    env = Environment.objects.create(name="prod", owner=stranger)
    EnvironmentMembership.objects.create(environment=env, user=owner, role="viewer")
    mine = make_connection(Status.CONNECTED)
    shared = make_connection(Status.CONNECTED, owner=stranger)
    unwatched = make_connection(Status.CONNECTED, owner=stranger)
    env.connections.add(shared, unwatched)
    hidden = make_connection(Status.CONNECTED, owner=stranger)
    Watch.objects.create(user=owner, connection=hidden)  # a watch that no longer shows
    for conn in (mine, shared, unwatched, hidden):
        down(conn)
    up(mine)
    conn = Connection.objects.get(pk=mine.pk)
    lifecycle.transition(conn, Status.MAINTENANCE, trigger=Trigger.USER, user=owner)
    client = client_for(owner)
    assert center.unread_count(owner) == 2  # mine: down, recovery (not the administrative one)
    Watch.objects.create(user=owner, environment=env)
    assert center.unread_count(owner) == 4
    bell = client.get(BELL)
    assert (
        bell.status_code == 200 and 'aria-label="Notifications, 4 unread"' in bell.content.decode()
    )
    assert 'hx-trigger="every 30s"' in bell.content.decode()
    page = client.get(reverse("connections:list")).content.decode()
    assert 'aria-label="Notifications, 4 unread"' in page


def test_the_bell_follows_a_change_of_rights_and_stops_at_99(owner, stranger, make_connection):
    """The bell's SQL is kept per process and user's rights (core/keptsql.py): a user made
    staff, or deactivated, is counted by their new rights at once; past 99 the bell says 99+."""
    theirs = make_connection(Status.CONNECTED, owner=stranger)
    Watch.objects.create(user=owner, connection=theirs)  # watched, but not visible to owner
    down(theirs)
    assert center.unread_count(owner) == 0
    owner.is_staff = True
    owner.save()
    assert center.unread_count(owner) == 1  # staff see every connection
    owner.is_active = False
    assert center.unread_count(owner) == 0
    owner.is_active, owner.is_staff = True, False
    mine = make_connection(Status.CONNECTED)
    for _ in range(51):
        down(mine)
        up(mine)
    assert center.unread_count(owner) == 100  # counting stops past the cap
    assert center.unread_count(owner, cap=5) == 5
    page = client_for(owner).get(BELL).content.decode()
    assert 'aria-label="Notifications, more than 99 unread"' in page and ">99+<" in page


def test_mark_all_read_empties_the_bell_until_the_next_event(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    down(conn)
    client = client_for(owner)
    assert center.unread_count(owner) == 1
    response = client.post(reverse("notifications:mark-read"))
    assert response.status_code == 302
    assert ReadMark.objects.get(user=owner).read_up_to == Event.objects.latest("id").pk
    assert 'aria-label="Notifications, 0 unread"' in client.get(BELL).content.decode()
    up(conn)
    assert center.unread_count(owner) == 1
    htmx = client.post(reverse("notifications:mark-read"), headers={"HX-Request": "true"})
    assert 'aria-label="Notifications, 0 unread"' in htmx.content.decode()


def test_mark_read_never_reaches_past_what_the_user_may_see(owner, stranger, make_connection):
    mine = make_connection(Status.CONNECTED)
    down(mine)
    theirs = make_connection(Status.CONNECTED, owner=stranger)
    down(theirs)
    client_for(owner).post(reverse("notifications:mark-read"))
    assert ReadMark.objects.get(user=owner).read_up_to == Event.objects.get(connection=mine).pk


def test_the_bell_costs_a_fixed_number_of_queries(
    owner, make_connection, django_assert_num_queries
):
    client = client_for(owner)
    conn = make_connection(Status.CONNECTED)
    down(conn)
    client.get(BELL)  # warm the session
    with django_assert_num_queries(2) as few:  # user, the count (the session: from the cache)
        client.get(BELL)
    for _ in range(20):
        conn = make_connection(Status.CONNECTED)
        down(conn), up(conn)
        Watch.objects.create(user=owner, connection=conn)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(BELL)


# ---- watches ---------------------------------------------------------------------------


def test_watch_and_unwatch_a_connection_from_its_page(owner, stranger, make_connection):
    env = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=env, user=stranger, role="viewer")
    conn = make_connection()
    env.connections.add(conn)
    client = client_for(stranger)
    detail = reverse("connections:detail", args=[conn.pk])
    assert ">Watch</button>" in client.get(detail).content.decode()
    url = reverse("notifications:watch-connection", args=[conn.pk])
    watched = client.post(url, {"watch": "1", "next": detail})
    assert watched.status_code == 303 and watched["Location"] == detail
    assert Watch.objects.filter(user=stranger, connection=conn).exists()
    assert ">Unwatch</button>" in client.get(detail).content.decode()
    client.post(url, {"watch": "1"})  # twice: still one watch
    assert Watch.objects.filter(user=stranger, connection=conn).count() == 1
    client.post(url, {"watch": "0", "next": "https://evil.example/"})
    assert not Watch.objects.filter(user=stranger, connection=conn).exists()


def test_watch_and_unwatch_an_environment_from_its_page(owner, make_connection):
    env = Environment.objects.create(name="prod", owner=owner)
    client = client_for(owner)
    detail = reverse("environments:detail", args=[env.pk])
    assert ">Watch</button>" in client.get(detail).content.decode()
    url = reverse("notifications:watch-environment", args=[env.pk])
    assert client.post(url, {"watch": "1"}).status_code == 303
    assert Watch.objects.filter(user=owner, environment=env).exists()
    assert ">Unwatch</button>" in client.get(detail).content.decode()
    client.post(url, {"watch": "0"})
    assert not Watch.objects.filter(user=owner, environment=env).exists()


def test_nobody_watches_what_they_cannot_see(owner, stranger, make_connection):
    conn = make_connection()
    env = Environment.objects.create(name="secret", owner=owner)
    client = client_for(stranger)
    for url in (
        reverse("notifications:watch-connection", args=[conn.pk]),
        reverse("notifications:watch-environment", args=[env.pk]),
        reverse("notifications:watch-connection", args=[999999]),
    ):
        assert client.post(url, {"watch": "1"}).status_code == 404
    assert not Watch.objects.exists()
    assert client.get(reverse("notifications:watch-connection", args=[conn.pk])).status_code == 405


def test_the_center_costs_the_same_queries_at_any_size(
    owner, make_connection, django_assert_max_num_queries, django_assert_num_queries
):
    client = client_for(owner)
    conn = make_connection(Status.CONNECTED)
    down(conn)
    client.get(CENTER)  # warm the session
    with django_assert_max_num_queries(8) as few:
        client.get(CENTER)
    for _ in range(15):
        conn = make_connection(Status.CONNECTED)
        down(conn), up(conn)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(client.get(CENTER).context["page"]) == 25
