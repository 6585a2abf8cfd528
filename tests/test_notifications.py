"""Notifications end to end against real receivers: a signed-webhook receiver on loopback that
verifies the signature, a real SMTP server (aiosmtpd), Apprise's own code path to a loopback
json:// receiver. The outbox, routing, no-noise rules, retries and the address guard."""

from __future__ import annotations

import email
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection
from connections.probing import outcomes as health
from connections.probing.probes.base import ProbeOutcome
from environments.models import Environment, EnvironmentMembership
from notifications import channels, delivery, routing
from notifications.choices import Category, MessageStatus
from notifications.models import AlertState, Channel, Delivery, Event, Message, Rule
from tests.helpers import run_concurrently
from tests.notifying import down, run, start_receiver, up
from tests.services import connect_attempts, wait_until

pytestmark = pytest.mark.django_db


# ---- the outbox --------------------------------------------------------------------------


def test_every_transition_writes_its_event_in_the_same_transaction(make_connection, owner):
    conn = make_connection(Status.CONNECTED, managed=True)
    record = down(conn)
    event = Event.objects.get(transition=record)
    assert (event.from_status, event.to_status, event.category) == (
        "connected",
        "disconnected",
        Category.DISCONNECTED,
    )
    assert event.routed_at is None
    # a transition rolled back leaves no event behind
    with pytest.raises(RuntimeError), transaction.atomic():
        up(conn)
        raise RuntimeError("rolled back")
    assert Event.objects.filter(connection=conn).count() == 1  # only the committed one


def test_an_auth_failure_and_a_recovery_are_told_apart(make_connection):
    """The category comes from the probe's stored error class, never from the reason's words:
    a reason that only reads like one is a plain outage."""
    conn = make_connection(Status.CONNECTED, managed=True)
    health.apply_outcomes(
        [(conn, ProbeOutcome(ok=False, error_class="auth", error="HTTP 401 from /version"))]
    )
    conn.refresh_from_db()
    assert conn.status == Status.DISCONNECTED
    up(conn)
    down(conn, reason="authentication failure: looks like one, is not one")
    categories = list(
        Event.objects.filter(connection=conn).order_by("pk").values_list("category", flat=True)
    )
    assert categories[-3:] == [Category.AUTH, Category.RECOVERY, Category.DISCONNECTED]


def test_a_transitions_consequences_are_the_hooks_its_apps_registered():
    """The outbox event is a transition hook registered by notifications' apps.py (no global
    post_save receiver): visible from the transition code."""
    from django.db.models.signals import post_save

    from connections import hooks
    from connections.models import ConnectionTransition

    assert "notifications.events.record_event" in hooks.registered()["on_transition"]
    # the receiver the outbox once was is gone (disconnecting it finds nothing)
    assert not post_save.disconnect(sender=ConnectionTransition, dispatch_uid="outbox")


# ---- a failure, then its recovery, once each, signed ------------------------------------


def test_a_failure_then_its_recovery_reach_the_webhook_once_each_signed(
    make_connection, webhook, receiver
):
    conn = make_connection(Status.CONNECTED, managed=True, name="prom-eu")
    Event.objects.update(routed_at=timezone.now())  # creation is not under test
    down(conn)
    run()
    run()  # a second tick sends nothing more
    up(conn)
    run()
    bodies = [r["body"] for r in receiver.received]
    assert [b["kind"] for b in bodies] == ["failure", "recovery"]
    assert all(r["signed"] for r in receiver.received)
    assert bodies[0]["events"][0]["connection"]["name"] == "prom-eu"
    assert bodies[0]["events"][0]["to"] == "disconnected"
    assert len({r["key"] for r in receiver.received}) == 2
    assert Delivery.objects.filter(channel=webhook, ok=True).count() == 2


def test_a_channel_never_hears_of_connections_its_owner_cannot_see(
    make_connection, webhook, receiver, stranger
):
    theirs = make_connection(Status.CONNECTED, managed=True, owner=stranger)
    down(theirs)
    run()
    assert receiver.received == []


def test_a_connection_in_maintenance_stays_quiet(make_connection, webhook, receiver, owner):
    conn = make_connection(Status.CONNECTED, managed=True)
    lifecycle.transition(conn, Status.MAINTENANCE, trigger=Trigger.USER, user=owner)
    run()
    assert receiver.received == []  # an administrative change: not asked for
    assert Event.objects.filter(connection=conn, routed_at__isnull=False).exists()


# ---- no noise ----------------------------------------------------------------------------


def test_a_flapping_connection_is_reported_once_per_cooldown_and_its_end_state_is_told(
    make_connection, webhook, receiver
):
    conn = make_connection(Status.CONNECTED, managed=True, name="flappy")
    Event.objects.update(routed_at=timezone.now())
    start = timezone.now()
    for i in range(5):  # down and up five times in a minute
        down(conn)
        run(now=start + timedelta(seconds=12 * i))
        up(conn)
        run(now=start + timedelta(seconds=12 * i + 6))
    assert [r["body"]["kind"] for r in receiver.received] == ["failure", "recovery"]
    down(conn)  # it ends down, inside the cool-down: held back …
    run(now=start + timedelta(seconds=70))
    assert len(receiver.received) == 2
    run(now=start + timedelta(seconds=301))  # … and told when the cool-down ends
    kinds = [r["body"]["kind"] for r in receiver.received]
    assert kinds == ["failure", "recovery", "failure"]
    assert "still" in receiver.received[-1]["body"]["title"]


def test_a_burst_is_grouped_into_one_message(make_connection, owner, receiver):
    channel, receiver.secret = channels.create_channel(
        owner, name="grouped", kind="webhook", destination=receiver.url, group_window=5
    )
    conns = [make_connection(Status.CONNECTED, managed=True) for _ in range(40)]
    Event.objects.update(routed_at=timezone.now())
    now = timezone.now()
    for conn in conns:
        down(conn)
    routing.route_events(now=now)
    assert delivery.deliver_due(now=now)["sent"] == 0  # the window is open
    delivery.deliver_due(now=now + timedelta(seconds=6))
    assert len(receiver.received) == 1
    body = receiver.received[0]["body"]
    assert body["kind"] == "group" and body["total_events"] == 40
    assert body["title"] == "40 connections disconnected"
    assert Message.objects.filter(channel=channel, status=MessageStatus.GROUPED).count() == 40


# ---- delivery: retries, no loss, no duplicates -----------------------------------------


def test_a_receiver_that_is_down_gets_the_message_when_it_returns(
    make_connection, webhook, receiver
):
    conn = make_connection(Status.CONNECTED, managed=True)
    Event.objects.update(routed_at=timezone.now())
    receiver.status = 503
    down(conn)
    now = timezone.now()
    assert run(now=now)["failed"] == 1
    message = Message.objects.get(channel=webhook)
    assert message.status == MessageStatus.QUEUED and message.next_attempt_at > now
    assert run(now=now + timedelta(seconds=1))["failed"] == 0  # waits for its retry time
    receiver.status = 200
    assert run(now=now + timedelta(seconds=11))["sent"] == 1
    keys = [r["key"] for r in receiver.received]
    assert len(keys) == 2 and len(set(keys)) == 1  # the same message, retried
    attempts = list(Delivery.objects.filter(message=message).order_by("attempt"))
    assert [(a.ok, a.status_code) for a in attempts] == [(False, 503), (True, 200)]


def test_a_worker_killed_after_claiming_leaves_the_message_to_the_next_once(
    make_connection, webhook, receiver
):
    conn = make_connection(Status.CONNECTED, managed=True)
    Event.objects.update(routed_at=timezone.now())
    down(conn)
    now = timezone.now()
    routing.route_events(now=now)
    jobs = delivery.claim(webhook.pk, now)  # … and the worker dies before sending
    assert len(jobs) == 1
    assert delivery.deliver_due(now=now + timedelta(seconds=5))["sent"] == 0  # leased
    later = jobs[0].lease + timedelta(seconds=1)
    assert delivery.deliver_due(now=later)["sent"] == 1
    assert delivery.deliver_due(now=later + timedelta(seconds=60))["sent"] == 0
    assert len(receiver.received) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_message_once(make_connection, owner, receiver):
    channels_ = []
    for n in range(6):
        channel, secret = channels.create_channel(
            owner,
            name=f"c{n}",
            kind="webhook",
            destination=receiver.url,
            group_window=0,
            group_threshold=100,
        )
        channels_.append(channel)
    receiver.secret = secret  # signatures differ per channel: only counted here
    conns = [make_connection(Status.CONNECTED, managed=True) for _ in range(5)]
    Event.objects.update(routed_at=timezone.now())
    for conn in conns:
        down(conn)
    run_concurrently(routing.route_events, routing.route_events)
    assert Message.objects.count() == 30
    for _ in range(3):
        run_concurrently(delivery.deliver_due, delivery.deliver_due)
    keys = [r["key"] for r in receiver.received]
    assert list(Delivery.objects.filter(ok=False).values_list("error", flat=True)) == []
    assert len(keys) == 30 and len(set(keys)) == 30


# ---- bounded: guard, deadline, scrubbing ------------------------------------------------


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1"])
def test_a_webhook_name_resolving_to_a_refused_address_is_never_contacted(
    make_connection, owner, monkeypatch, address
):
    channel, _ = channels.create_channel(
        owner, name="evil", kind="webhook", destination="http://hooks.test:8080/x", group_window=0
    )
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "hooks.test":  # the DNS answer an attacker controls
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 8080))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with connect_attempts() as opened:
        result = delivery.send_test(channel)
    assert not result.ok
    assert address in result.error and "hooks.test" in result.error
    assert [a for a in opened if a[0] == address] == []


@pytest.mark.parametrize(
    "destination",
    ["http://169.254.169.254/latest/", "http://10.0.0.1/", "ftp://127.0.0.1/", "http://a b/"],
)
def test_a_refused_webhook_url_is_a_clear_error_at_creation(owner, destination):
    with pytest.raises(channels.ValidationError) as refused:
        channels.create_channel(owner, name="x", kind="webhook", destination=destination)
    assert "destination" in refused.value.message_dict


def test_a_trickling_receiver_costs_its_deadline_not_the_worker(
    make_connection, webhook, receiver, settings
):
    settings.NOTIFY_TIMEOUT = 0.5
    receiver.trickle = True
    started = time.perf_counter()
    result = delivery.send_test(webhook)
    elapsed = time.perf_counter() - started
    assert not result.ok and "timed out" in result.error
    assert elapsed < 4, elapsed  # a trickle never ends: the 1 s deadline ended it


def test_secrets_never_reach_the_delivery_log(make_connection, webhook, receiver):
    receiver.status = 500
    receiver.answer = f"cannot post to {receiver.url} (secret {receiver.secret})"
    result = delivery.send_test(webhook)
    assert not result.ok and result.status_code == 500
    stored = Delivery.objects.get(pk=result.pk).error
    assert "s3cr3t-path-token" not in stored and receiver.secret not in stored


def test_a_channel_failing_again_and_again_is_flagged(make_connection, webhook, dead_url):
    channels.update_channel(webhook.owner, webhook, destination=dead_url + "/hook")
    for _ in range(delivery.FAILING_AFTER):
        assert not delivery.send_test(webhook).ok
    webhook.refresh_from_db()
    assert webhook.failing


# ---- Apprise: what it is given is what was checked, and it is held to the guard ----------


def test_a_comma_cannot_smuggle_a_second_apprise_service(owner, receiver):
    url = receiver.url.replace("http://", "json://") + ",rsyslog://169.254.169.254"
    api = APIClient()
    api.force_login(owner)
    answer = api.post(
        "/api/notifications/channels/",
        {"name": "a", "kind": "apprise", "destination": url},
        format="json",
    )
    assert answer.status_code == 400
    assert "'rsyslog' is not offered" in json.dumps(answer.json())
    assert not Channel.objects.exists()


def test_an_apprise_url_stored_before_the_check_is_refused_at_send(owner, receiver, udp_sink):
    """A channel saved by an older release with two services in one URL sends to neither."""
    channel, _ = channels.create_channel(
        owner, name="a", kind="apprise", destination=receiver.url.replace("http://", "json://")
    )
    smuggled = receiver.url.replace("http://", "json://") + f",rsyslog://127.0.0.1:{udp_sink.port}"
    channel.set_config({"urls": [smuggled]})
    channel.save()
    result = delivery.send_test(channel)
    assert not result.ok and "is not sent to: this is not one valid json:// URL" in result.error
    assert receiver.received == [] and udp_sink.received == []


def test_an_apprise_datagram_to_a_refused_address_never_leaves(owner, udp_sink, settings):
    """rsyslog sends UDP with sendto: the socket-layer guard stops it like any connect."""
    settings.NOTIFY_APPRISE_SCHEMES = [*settings.NOTIFY_APPRISE_SCHEMES, "rsyslog"]
    url = f"rsyslog://127.0.0.1:{udp_sink.port}"
    channel, _ = channels.create_channel(owner, name="syslog", kind="apprise", destination=url)
    assert delivery.send_test(channel).ok  # the control: allowed, it arrives
    wait_until(lambda: len(udp_sink.received) == 1, timeout=10)
    settings.PROBE_ALLOWED_NETWORKS = ["10.0.0.0/8"]  # loopback is now refused
    result = delivery.send_test(channel)
    assert not result.ok
    assert len(udp_sink.received) == 1  # a refused datagram is never sent: nothing to wait for


def test_apprise_follows_no_redirect(owner, receiver, settings):
    elsewhere = receiver.url.replace("/hook/", "/landed/")
    receiver.status, receiver.location = 302, elsewhere
    url = receiver.url.replace("http://", "json://")
    channel, _ = channels.create_channel(owner, name="a", kind="apprise", destination=url)
    result = delivery.send_test(channel)
    assert not result.ok
    assert [r["path"] for r in receiver.received] == ["/hook/s3cr3t-path-token"]


def test_apprise_reads_a_bounded_part_of_an_endless_answer(owner, receiver, settings):
    settings.NOTIFY_TIMEOUT = 30  # the bound ends it, not the deadline
    receiver.status, receiver.endless = 500, True
    url = receiver.url.replace("http://", "json://")
    channel, _ = channels.create_channel(owner, name="a", kind="apprise", destination=url)
    started = time.monotonic()
    result = delivery.send_test(channel)
    assert not result.ok
    assert time.monotonic() - started < 20
    assert receiver.finished.wait(10)
    assert receiver.written < 64 * 1024 * 1024  # of 256 MB offered


@pytest.mark.parametrize(
    ("query", "echoed"),
    [
        ("sig=Q5ecretValue77", "Q5ecretValue77"),
        ("a=1&token=ab%2Fcd%2Bef99", "ab/cd+ef99"),
        ("sig=plus+sign+secret", "plus sign secret"),
        # as the client sent it, echoed back in the path the receiver was asked for
        ("token=s\u00e9cretVALUE", "{path}"),
        ("token=S3CRET VALUE", "{path}"),
        ("t=ab%2bcdEFGH", "{path}"),
        ("a=1;token=S3CRETvalue", "{path}"),
    ],
)
def test_each_query_value_of_a_webhook_url_is_kept_out_of_the_log(owner, receiver, query, echoed):
    channel, _ = channels.create_channel(
        owner, name="q", kind="webhook", destination=f"{receiver.url}?{query}"
    )
    receiver.status = 400
    receiver.answer = f"unknown hook {echoed} (query {query})"
    result = delivery.send_test(channel)
    assert not result.ok and result.error.startswith("HTTP 400")
    stored = Delivery.objects.get(pk=result.pk).error
    secret = query.split("=", 2)[-1] if echoed == "{path}" else echoed
    for form in {secret, secret.replace(" ", "%20"), quote(secret), quote(secret).upper()}:
        assert form not in stored and form not in json.dumps(_delivery_api(owner)), form
    assert query not in stored


def _delivery_api(user):
    api = APIClient()
    api.force_login(user)
    return api.get("/api/notifications/deliveries/").json()


# ---- names are one line: a subject, a header, a log line -------------------------------


@pytest.mark.parametrize(
    "name", ["ops\r\nBcc: x@example.com", "tab\there", "a\u2028b", "rtl\u202egpj"]
)
def test_a_name_with_a_line_break_is_refused_on_create_and_rename(owner, receiver, name):
    with pytest.raises(channels.ValidationError) as refused:
        channels.create_channel(owner, name=name, kind="webhook", destination=receiver.url)
    assert "one line" in str(refused.value)
    channel, _ = channels.create_channel(owner, name="ok", kind="webhook", destination=receiver.url)
    with pytest.raises(channels.ValidationError):
        channels.update_channel(owner, channel, name=name)
    channel.refresh_from_db()
    assert channel.name == "ok"


def test_an_email_to_a_name_stored_with_a_line_break_still_goes(
    make_connection, owner, settings, smtp_server
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    channel, _ = channels.create_channel(
        owner, name="mail", kind="email", destination="ops@example.com", group_window=0
    )
    conn = make_connection(Status.CONNECTED, managed=True, name="db")
    Connection.objects.filter(pk=conn.pk).update(name="db\r\nBcc: evil@example.com")
    Channel.objects.filter(pk=channel.pk).update(name="mail\r\nX: y")
    channel.refresh_from_db()
    assert delivery.send_test(channel).ok
    Event.objects.update(routed_at=timezone.now())
    down(conn)
    assert run()["sent"] == 1
    assert len(smtp_server.messages) == 2
    for rcpts, content in smtp_server.messages:
        message = email.message_from_string(content)
        assert rcpts == ["ops@example.com"]
        assert message["Bcc"] is None and message["X"] is None
    assert "db  Bcc: evil@example.com is Disconnected" in content


# ---- the other kinds, through their real code paths ------------------------------------


def test_email_goes_through_a_real_smtp_server(make_connection, owner, settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    channel, _ = channels.create_channel(
        owner, name="mail", kind="email", destination="ops@example.com", group_window=0
    )
    conn = make_connection(Status.CONNECTED, managed=True, name="grafana-eu")
    Event.objects.update(routed_at=timezone.now())
    down(conn)
    assert run()["sent"] == 1
    ((rcpts, content),) = smtp_server.messages
    assert rcpts == ["ops@example.com"]
    assert "grafana-eu is Disconnected" in content


def test_apprise_json_reaches_a_loopback_receiver(make_connection, owner, receiver):
    url = receiver.url.replace("http://", "json://")
    channel, _ = channels.create_channel(
        owner, name="apprise", kind="apprise", destination=url, group_window=0
    )
    conn = make_connection(Status.CONNECTED, managed=True, name="k8s-prod")
    Event.objects.update(routed_at=timezone.now())
    down(conn)
    assert run()["sent"] == 1
    (got,) = receiver.received
    assert got["body"]["title"] == "k8s-prod is Disconnected"


def test_an_apprise_service_not_offered_is_refused(owner):
    with pytest.raises(channels.ValidationError) as refused:
        channels.create_channel(owner, name="x", kind="apprise", destination="windows://")
    assert "not offered" in str(refused.value)


# ---- bounded: settings and history ------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("rate_per_hour", 0), ("group_threshold", 0), ("group_window", 10**6), ("cooldown", 10**9)],
)
def test_channel_settings_out_of_bounds_are_a_clear_error(owner, receiver, field, value):
    with pytest.raises(channels.ValidationError) as refused:
        channels.create_channel(
            owner, name="x", kind="webhook", destination=receiver.url, **{field: value}
        )
    assert field in refused.value.message_dict


def test_old_notifications_are_pruned_but_pending_ones_are_kept(
    make_connection, webhook, receiver, settings
):
    from notifications.history import prune_notifications

    settings.NOTIFY_EVENT_RETENTION = 3600
    old, pending = (make_connection(Status.CONNECTED, managed=True) for _ in range(2))
    down(old)
    run()  # sent and logged
    receiver.status = 503
    down(pending)
    run()  # failed once, queued for a retry
    later = timezone.now() + timedelta(hours=2)
    stats = prune_notifications(now=later)
    assert stats["messages"] == 1 and stats["deliveries"] == 2
    assert not Event.objects.filter(connection=old).exists()
    kept = Message.objects.get()
    assert kept.connection_id == pending.pk and kept.status == MessageStatus.QUEUED
    assert Event.objects.filter(connection=pending, to_status="disconnected").exists()


# ---- issue 13's review, as regression tests (each held the review's defect before it was fixed)
# ---- Apprise's error text


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
