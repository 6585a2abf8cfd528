"""Notifications under a burst: 10,000 connections go down at once; how soon are the people
told, and in how many messages?

    python bench/notify_burst.py [--connections 10000] [--channels 5]

In the PostgreSQL database ``bench_notify``: ``--connections`` connected connections, owned by
one user, and ``--channels`` webhook channels of that user (default rules, 10 s group window)
to a signed-webhook receiver on loopback. Their failures are applied through the real probe
path (``health.apply_outcomes``, in batches of 2,500 as a probe batch does), which writes each
transition's outbox event; then the notify task's work (route, sweep, deliver) runs once a
second, as beat would run it, until every channel has its message.

Prints the time to apply the failures (the baseline: the probe engine's own write), to route
the events, and from the last failure's commit to the last channel's delivery, with the
number of messages each channel received (target: one grouped message per channel, within a
minute).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _setup import django_on_postgres


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received.append((time.perf_counter(), self.path, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=5)
    args = parser.parse_args()
    django_on_postgres("bench_notify", LOG_LEVEL="WARNING")

    from django.contrib.auth import get_user_model

    from connections import hooks
    from connections.models import Connection
    from connections.probing import outcomes as health
    from connections.probing.probes.base import ProbeOutcome
    from notifications import channels, delivery, routing
    from notifications.events import record_event
    from notifications.models import Event, Message

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.lock, server.received = threading.Lock(), []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    owner = get_user_model().objects.create_user("bench", password="x")
    Connection.objects.bulk_create(
        Connection(
            name=f"conn-{i:05d}",
            kind="http",
            url=f"http://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:8080/",
            identity=f"bench|{i}",
            status="connected",
            managed=True,
            owner=owner,
            failure_threshold=1,
        )
        for i in range(args.connections)
    )
    for n in range(args.channels):
        channels.create_channel(
            owner, name=f"ops-{n}", kind="webhook", destination=f"{url}/{n}", group_window=10
        )
    conns = list(Connection.objects.order_by("pk"))
    failed = ProbeOutcome(ok=False, error_class="connect", error="connection refused")

    def apply_all(batch) -> float:
        started = time.perf_counter()
        for i in range(0, len(batch), 2500):
            health.apply_outcomes([(c, failed) for c in batch[i : i + 2500]])
        return time.perf_counter() - started

    # the baseline: the same failures applied without the outbox (its hook paused),
    # on a twin set of connections made for it and deleted after
    twins = Connection.objects.bulk_create(
        Connection(
            name=f"twin-{c.name}",
            kind="http",
            url=c.url + "twin",
            identity=c.identity + "|twin",
            status="connected",
            managed=True,
            owner=owner,
            failure_threshold=1,
        )
        for c in conns
    )
    with hooks.paused(record_event):
        bare = apply_all(twins)
    Connection.all_objects.filter(pk__in=[t.pk for t in twins]).delete()

    with_outbox = apply_all(conns)
    applied = time.perf_counter()
    events = Event.objects.filter(to_status="disconnected").count()
    print(
        f"{args.connections} connections down through the probe apply: {bare:.2f} s without the "
        f"outbox, {with_outbox:.2f} s with it ({events} events; {with_outbox / bare:.2f}×)"
    )

    route_time = 0.0
    while len({path for _, path, _ in server.received}) < args.channels:
        tick = time.perf_counter()
        routed = routing.route_events()
        while routed.get("events", 0) >= routing.ROUTE_BATCH:
            routed = routing.route_events()
        routing.sweep_alerts()
        route_time += time.perf_counter() - tick
        delivery.deliver_due()
        if time.perf_counter() - applied > 180:
            print("gave up after 180 s")
            break
        time.sleep(max(0.0, 1 - (time.perf_counter() - tick)))
    done = max((t for t, _, _ in server.received), default=time.perf_counter())
    per_channel = {}
    for _, path, body in server.received:
        per_channel.setdefault(path, []).append(body)
    print(
        f"routed into {Message.objects.exclude(kind='group').count()} queued messages "
        f"(routing and sweeps: {route_time:.2f} s in all)"
    )
    print(
        f"last channel told {done - applied:.1f} s after the last failure committed "
        f"(10 s of it is the group window; target under 60 s)"
    )
    for path, bodies in sorted(per_channel.items()):
        sizes = [b.get("total_events", len(b["events"])) for b in bodies]
        print(f"  channel {path}: {len(bodies)} message(s), events {sizes}: {bodies[0]['title']}")


if __name__ == "__main__":
    main()
