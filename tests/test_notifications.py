"""Notifications end to end against real receivers: a signed-webhook receiver on loopback that
verifies the signature, a real SMTP server (aiosmtpd), Apprise's own code path to a loopback
json:// receiver. The outbox, routing, no-noise rules, retries and the address guard."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
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
from notifications import channels, delivery, routing
from notifications.choices import Category, MessageStatus
from notifications.models import Channel, Delivery, Event, Message
from tests.services import LoopbackHTTPServer, connect_attempts, wait_until

pytestmark = pytest.mark.django_db


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        signature = self.headers.get("X-Meshplay-Signature", "")
        expected = "sha256=" + hmac.new(server.secret.encode(), body, hashlib.sha256).hexdigest()
        with server.lock:
            server.received.append(
                {
                    "body": json.loads(body),
                    "key": self.headers.get("X-Meshplay-Idempotency-Key"),
                    "signed": hmac.compare_digest(signature, expected),
                    "path": self.path,
                }
            )
        if server.trickle:  # a status line, then a header every 0.3 s, never the end
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(100):
                time.sleep(0.3)
                self.wfile.write(b"X-Slow: 1\r\n")
                self.wfile.flush()
            return
        status = server.status
        if server.endless:  # no length: the answer ends when the connection does
            self.send_response(status)
            self.end_headers()
            try:
                while server.written < 256 * 1024 * 1024:
                    self.wfile.write(b"y" * 65536)
                    server.written += 65536
            except OSError:
                pass
            finally:
                server.finished.set()
            return
        answer = server.answer.replace("{path}", self.path).encode()  # "{path}": echo it
        self.send_response(status)
        if server.location:
            self.send_header("Location", server.location)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


_ReceiverServer = LoopbackHTTPServer  # two workers' pools connect at once


def start_receiver() -> _ReceiverServer:
    """A receiver on loopback, serving on its own thread; ``shutdown`` and ``server_close``
    it when done."""
    server = _ReceiverServer(("127.0.0.1", 0), _Receiver)
    server.lock = threading.Lock()
    server.received, server.status, server.answer, server.trickle = [], 200, "ok", False
    server.secret, server.location, server.endless = "", "", False
    server.written, server.finished = 0, threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook/s3cr3t-path-token"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver():
    server = start_receiver()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook(receiver, owner):
    """A webhook channel of ``owner`` to the receiver, no group window (sent at once)."""
    channel, secret = channels.create_channel(
        owner,
        name="hook",
        kind="webhook",
        destination=receiver.url,
        group_window=0,
        cooldown=300,
    )
    receiver.secret = secret
    return channel


def down(conn, reason="unreachable after 3 consecutive failed probes (connect: refused)"):
    conn.refresh_from_db()
    return lifecycle.transition(conn, Status.DISCONNECTED, trigger=Trigger.PROBE, reason=reason)


def up(conn):
    conn.refresh_from_db()
    return lifecycle.transition(conn, Status.CONNECTED, trigger=Trigger.PROBE, reason="reachable")


def run(now=None):
    """One beat tick of the notify task, in process."""
    routing.route_events(now=now)
    routing.sweep_alerts(now=now)
    return delivery.deliver_due(now=now)


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
    from tests.test_races import run_concurrently

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
