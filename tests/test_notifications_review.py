"""Issue 13's review, as regression tests: hostile members, slow and malicious receivers,
disabled channels, lost access. Each held the review's defect before it was fixed."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from connections.choices import Status
from environments.models import Environment, EnvironmentMembership
from notifications import channels, delivery, routing
from notifications.models import AlertState, Event, Message, Rule
from tests.test_notifications import (
    down,
    receiver,  # noqa: F401  (fixtures)
    run,
    start_receiver,
    up,
    webhook,  # noqa: F401
)

# ------------------------------------------------------------------------------------------
# test_api_bad_values.py

pytestmark = pytest.mark.django_db


CASES = [
    {"group_window": "abc"},
    {"group_window": 10**20},
    {"rate_per_hour": 0},
    {"rate_per_hour": 10**20},
    {"cooldown": -1},
    {"group_threshold": 1.5},
    {"name": "a\x00b"},
    {"name": "x" * 1000},
    {"remind_every_hours": "NaN"},
    {"enabled": "maybe"},
    {"environment": 10**30},
    {"rule": {"kinds": ["http"], "categories": ["nope"]}},
    {"rule": {"connections": [10**30]}},
    {"rule": {"connections": ["abc"]}},
    {"rule": "x"},
    {"destination": "http://[::ffff:169.254.169.254]/x"},
    {"destination": "http://[fe80::1%25eth0]/x"},
    {"destination": "json://[::ffff:a9fe:a9fe]/"},
]


@pytest.mark.parametrize("extra", CASES, ids=[str(c)[:40] for c in CASES])
def test_create_bad_values_are_400(owner, receiver, extra):
    api = APIClient()
    api.raise_request_exception = False
    api.force_login(owner)
    body = {"name": "n", "kind": "webhook", "destination": receiver.url, **extra}
    if "json://" in str(extra.get("destination", "")):
        body["kind"] = "apprise"
    answer = api.post("/api/notifications/channels/", body, format="json")
    assert answer.status_code == 400


@pytest.mark.parametrize("extra", CASES[:10], ids=[str(c)[:40] for c in CASES[:10]])
def test_update_bad_values_are_400(owner, receiver, extra):
    api = APIClient()
    api.raise_request_exception = False
    api.force_login(owner)
    created = api.post(
        "/api/notifications/channels/",
        {"name": "n", "kind": "webhook", "destination": receiver.url},
        format="json",
    )
    answer = api.patch(f"/api/notifications/channels/{created.json()['id']}/", extra, format="json")
    assert answer.status_code == 400, (answer.status_code, answer.content[:200])


# ------------------------------------------------------------------------------------------
# test_apprise_error_text.py


@pytest.mark.parametrize("status", [500, 404])
def test_apprise_errors_are_scrubbed_of_the_urls_secrets(owner, receiver, status, dead_url):
    receiver.status = status
    receiver.answer = "body mentions hook/s3cr3t-path-token and tok=ZZSECRET"
    url = receiver.url.replace("http://", "json://user:hunter22@") + "?-X-Auth=ZZSECRET"
    channel, _ = channels.create_channel(owner, name="a", kind="apprise", destination=url)
    r = delivery.send_test(channel)
    dead = dead_url.replace("http://", "json://") + "/s3cr3t-path-token"
    channel2, _ = channels.create_channel(owner, name="b", kind="apprise", destination=dead)
    r2 = delivery.send_test(channel2)
    assert "ZZSECRET" not in r.error and "hunter22" not in r.error
    assert not r2.ok and "s3cr3t-path-token" not in r2.error


# ------------------------------------------------------------------------------------------
# Apprise deliveries bypass the address guard: apprise 2.x dispatches every service on its own
# shared thread pool (service_timeout 60 s => a deadline => threadpool even for ONE url), and the
# guard in notifications.transport is thread-local, so the worker thread connects unguarded.


def test_webhook_to_loopback_is_refused_when_outside_allowed_networks(owner, receiver, settings):
    # control: the guard works for the webhook kind
    channel, _ = channels.create_channel(owner, name="w", kind="webhook", destination=receiver.url)
    settings.PROBE_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    result = delivery.send_test(channel)
    assert not result.ok and "outside PROBE_ALLOWED_NETWORKS" in result.error
    assert receiver.received == []


def test_apprise_json_to_loopback_should_be_refused_when_outside_allowed_networks(
    owner, receiver, settings
):
    url = receiver.url.replace("http://", "json://")
    channel, _ = channels.create_channel(owner, name="a", kind="apprise", destination=url)
    settings.PROBE_ALLOWED_NETWORKS = ["10.0.0.0/8"]  # loopback is now a refused network
    result = delivery.send_test(channel)
    # the guard should have refused 127.0.0.1; instead the receiver got the message
    assert receiver.received == [], f"apprise reached a refused address: ok={result.ok}"


@pytest.mark.parametrize(
    "url",
    ["json://169.254.169.254/latest/meta-data/", "json://[::ffff:a9fe:a9fe]/", "json://10.0.0.1/"],
)
def test_an_apprise_url_at_a_refused_literal_address_is_refused_at_creation(owner, url):
    with pytest.raises(channels.ValidationError) as refused:
        channels.create_channel(owner, name="m", kind="apprise", destination=url)
    assert "cannot be used" in str(refused.value)


# ------------------------------------------------------------------------------------------
# A channel disabled while messages are queued: claim() skips it but its messages stay queued
# (due_channels lists it every tick), routing ignores disabled channels (so the recovery that
# happens meanwhile is never queued and AlertState stays open). Re-enabled hours later, it sends
# the stale "X is Disconnected" and never the recovery.


def test_a_reenabled_channel_sends_nothing_stale(make_connection, owner, receiver):
    channel, secret = channels.create_channel(
        owner, name="hook", kind="webhook", destination=receiver.url, group_window=10
    )
    conn = make_connection(Status.CONNECTED, managed=True, name="db")
    Event.objects.update(routed_at=timezone.now())
    down(conn)
    routing.route_events()  # queued, waiting out its 10 s group window
    channels.update_channel(owner, channel, enabled=False)
    up(conn)
    run()  # the recovery is routed while the channel is disabled
    later = timezone.now() + timedelta(hours=3)
    channels.update_channel(owner, channel, enabled=True)
    run(now=later)
    run(now=later + timedelta(minutes=1))
    # disabling cancelled what was queued and forgot the open failure: nothing stale later
    assert receiver.received == []
    assert not AlertState.objects.filter(channel=channel).exists()
    assert Message.objects.get(channel=channel).status == "cancelled"


# ------------------------------------------------------------------------------------------
# An editor of an environment turns that environment's channel (created by the environment's
# owner) into a personal channel: it keeps owner=<the environment's owner>, so it now hears every
# connection the environment's OWNER may see (all of them, if staff), and the editor chose its
# destination. channels.update_channel only checks the NEW environment (None passes).


def test_an_editor_cannot_detach_an_environments_channel(
    django_user_model, make_connection, receiver
):
    admin = django_user_model.objects.create_user("admin", password="x", is_staff=True)
    editor = django_user_model.objects.create_user("ed", password="x")
    other = django_user_model.objects.create_user("other", password="x")
    env = Environment.objects.create(name="prod", owner=admin)
    EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    in_env = make_connection(Status.CONNECTED, managed=True, owner=admin, name="in-env")
    env.connections.add(in_env)
    secret_conn = make_connection(
        Status.CONNECTED, managed=True, owner=other, name="payroll-db-not-in-prod"
    )
    channel, _ = channels.create_channel(
        admin,
        name="prod alerts",
        kind="webhook",
        destination="https://example.com/hook",
        environment=env,
        group_window=0,
    )
    Event.objects.update(routed_at=timezone.now())

    api = APIClient()
    api.force_login(editor)
    api.raise_request_exception = False
    answer = api.patch(
        f"/api/notifications/channels/{channel.pk}/",
        {"environment": None, "destination": receiver.url},
        format="json",
    )
    assert answer.status_code == 400
    assert "environment" in answer.json()["error"]["fields"]
    channel.refresh_from_db()
    assert channel.environment_id == env.pk and "example.com" in channel.destination_hint
    down(secret_conn)  # a connection the editor may NOT see, outside the environment
    run()
    names = [e["connection"]["name"] for r in receiver.received for e in r["body"]["events"]]
    assert "payroll-db-not-in-prod" not in names, f"editor's receiver heard {names}"


# ------------------------------------------------------------------------------------------
# claim() takes up to 20 pending messages of a channel into one batch, and run_jobs sends a
# batch's messages concurrently on the pool: a failure and its recovery in one batch race, and
# when the failure's attempt fails (503, retried with backoff) the recovery is SENT anyway. The
# failure then arrives after the recovery: the receiver's last word is "disconnected" for a
# connection that is up.


class Flaky(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            first = body["kind"] == "failure" and not server.failed_once
            if first:
                server.failed_once = True
            server.log.append((body["kind"], 503 if first else 200))
        self.send_response(503 if first else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_recovery_is_delivered_before_the_failure_it_resolves(make_connection, owner):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    server.daemon_threads, server.lock = True, threading.Lock()
    server.log, server.failed_once = [], False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        channel, _ = channels.create_channel(
            owner,
            name="h",
            kind="webhook",
            destination=f"http://127.0.0.1:{server.server_address[1]}/h",
            group_window=5,
        )
        conn = make_connection(Status.CONNECTED, managed=True)
        Event.objects.update(routed_at=timezone.now())
        now = timezone.now()
        down(conn)
        up(conn)  # a short outage: both inside the group window, below the threshold
        routing.route_events(now=now)
        delivery.deliver_due(now=now + timedelta(seconds=6))
        delivery.deliver_due(now=now + timedelta(seconds=30))
        delivered = [kind for kind, code in server.log if code == 200]
        assert delivered == ["failure", "recovery"], f"delivered in order {delivered}"
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------------------
# sweep_alerts sends held failures and reminders from AlertState alone: it never re-checks
# that the channel may still hear the connection (owner removed from the environment, rule
# deleted or narrowed, channel moved). A user removed from an environment keeps receiving
# "still down" reminders (name, status, last probe error) every N hours, forever.


def _setup(django_user_model, make_connection, receiver, **knobs):
    boss = django_user_model.objects.create_user("boss", password="x")
    viewer = django_user_model.objects.create_user("viewer", password="x")
    env = Environment.objects.create(name="prod", owner=boss)
    member = EnvironmentMembership.objects.create(environment=env, user=viewer, role="viewer")
    conn = make_connection(Status.CONNECTED, managed=True, owner=boss, name="billing-db")
    env.connections.add(conn)
    channel, secret = channels.create_channel(
        viewer, name="mine", kind="webhook", destination=receiver.url, group_window=0, **knobs
    )
    receiver.secret = secret
    Event.objects.update(routed_at=timezone.now())
    return member, conn, channel


def test_reminders_continue_after_the_owner_lost_access(
    django_user_model, make_connection, receiver
):
    member, conn, channel = _setup(
        django_user_model, make_connection, receiver, remind_every_hours=1
    )
    down(conn)
    run()
    assert [r["body"]["kind"] for r in receiver.received] == ["failure"]
    member.delete()  # the viewer is removed from the environment
    for hours in (1, 2, 3):
        run(now=timezone.now() + timedelta(hours=hours, minutes=1))
    kinds = [r["body"]["kind"] for r in receiver.received]
    assert kinds == ["failure"], f"removed user still told: {kinds}"


def test_held_failure_is_sent_after_access_lost(django_user_model, make_connection, receiver):
    member, conn, channel = _setup(django_user_model, make_connection, receiver, cooldown=300)
    down(conn)
    run()
    up(conn)
    run()
    down(conn)  # inside the cool-down: held
    run()
    assert [r["body"]["kind"] for r in receiver.received] == ["failure", "recovery"]
    member.delete()
    Rule.objects.filter(channel=channel).delete()  # and the channel has no rule any more
    run(now=timezone.now() + timedelta(seconds=400))
    kinds = [r["body"]["kind"] for r in receiver.received]
    assert kinds == ["failure", "recovery"], f"told after losing access and rules: {kinds}"


# ------------------------------------------------------------------------------------------
# run_jobs waits future.result(timeout=deadline) job after job: each wait starts when the previous
# one ended, so N hanging sends cost N x deadline, not one deadline; and every result (of every
# channel) is recorded only after the whole pool is done. With defaults (NOTIFY_TIMEOUT 5 -> 10 s,
# a run of 10 messages per channel) one trickling channel holds a run ~100 s: longer than the
# 40 s lease (so the next tick claims and sends the good channels' messages again) and close to
# NOTIFY_TASK_TIME_LIMIT 120 s.


def test_six_trickling_channels_cost_one_deadline_not_six(
    make_connection, owner, receiver, settings
):
    settings.NOTIFY_TIMEOUT = 0.5  # deadline 1 s
    receiver.trickle = True
    for n in range(6):
        channels.create_channel(
            owner, name=f"slow{n}", kind="webhook", destination=receiver.url, group_window=0
        )
    conn = make_connection(Status.CONNECTED, managed=True)
    Event.objects.update(routed_at=timezone.now())
    down(conn)
    routing.route_events()
    started = time.perf_counter()
    stats = delivery.deliver_due()
    elapsed = time.perf_counter() - started
    assert stats["failed"] == 6
    # one after another they would take 6 s
    assert elapsed < 4, f"6 sends in parallel with a 1 s deadline took {elapsed:.1f} s"


def test_a_channel_stops_at_its_first_failed_send_and_keeps_the_rest_in_order(
    make_connection, owner, receiver, settings
):
    settings.NOTIFY_TIMEOUT = 0.5
    receiver.trickle = True
    channel, _ = channels.create_channel(
        owner,
        name="slow",
        kind="webhook",
        destination=receiver.url,
        group_window=0,
        group_threshold=100,
    )
    conns = [make_connection(Status.CONNECTED, managed=True) for _ in range(6)]
    Event.objects.update(routed_at=timezone.now())
    for c in conns:
        down(c)
    routing.route_events()
    started = time.perf_counter()
    stats = delivery.deliver_due()
    assert time.perf_counter() - started < 4  # all six tried would take 6 s
    assert (stats["failed"], stats["waiting"]) == (1, 5)
    queued = Message.objects.filter(channel=channel, status="queued").order_by("created_at", "pk")
    assert [m.attempts for m in queued] == [1, 0, 0, 0, 0, 0]


def test_a_good_channel_is_recorded_only_after_the_slow_one(
    make_connection, owner, receiver, settings, django_user_model
):
    settings.NOTIFY_TIMEOUT = 0.5
    receiver.trickle = True
    good = start_receiver()
    try:
        channels.create_channel(
            owner,
            name="a-slow",
            kind="webhook",
            destination=receiver.url,
            group_window=0,
            group_threshold=100,
            rate_per_hour=3600,
        )
        fast, _ = channels.create_channel(
            owner,
            name="b-fast",
            kind="webhook",
            destination=f"http://127.0.0.1:{good.server_address[1]}/h",
            group_window=0,
            group_threshold=100,
            rate_per_hour=3600,
        )
        conns = [make_connection(Status.CONNECTED, managed=True) for _ in range(5)]
        Event.objects.update(routed_at=timezone.now())
        for c in conns:
            down(c)
        routing.route_events()
        t0 = timezone.now()
        delivery.deliver_due()
        sent = list(Message.objects.filter(channel=fast).values_list("sent_at", flat=True))
        lag = max((s - t0).total_seconds() for s in sent)
        assert lag < 3, f"the good channel's sends were recorded {lag:.1f} s later"
    finally:
        good.shutdown()
        good.server_close()
