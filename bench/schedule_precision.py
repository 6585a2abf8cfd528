"""Schedule precision: how close to its interval each connection is probed, through beat's tick,
Redis and a real worker.

    python bench/schedule_precision.py [--connections 1000] [--interval 30] [--minutes 10]
                                       [--dispatch local|worker] [--burst]

Sets up (PostgreSQL database ``bench_schedule_precision``, Redis db 14 as the broker): a loopback
fleet of healthy endpoints (bench/_harness.py), ``--connections`` connections to it (state
connected, ``probe_interval`` = ``--interval``), first due spread evenly over one interval (or
all at once with ``--burst``), and a real Celery worker (prefork, DEBUG=false). Beat's tick is
``dispatch_due_probes`` every PROBE_TICK seconds on a fixed schedule, called from this process
(``--dispatch local``) or sent on the ``celery`` queue to a worker that also takes ``probes``
(``--dispatch worker``: the README's one-worker deployment, where the tick queues behind batches).

After ``--minutes`` it reads every ProbeResult (``checked_at`` is the probe's start) and prints,
over the gaps between consecutive probes of each connection, p50/p99/max of |gap - interval|,
the signed spread, and how many gaps there were. Target: p99 within 1 s.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import signal
import sys
import time
from collections import defaultdict

from _harness import (
    CpuMeter,
    Ticker,
    Worker,
    batch_summary,
    percentile,
    raise_nofile,
    start_fleet,
    uptime,
)
from _setup import django_on_postgres

DB_NAME = "bench_schedule_precision"
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--fleet-processes", type=int, default=1)
    # the Procfile's default: two prefork processes per core
    parser.add_argument("--worker-concurrency", type=int, default=2 * (os.cpu_count() or 2))
    parser.add_argument("--dispatch", choices=("local", "worker"), default="local")
    parser.add_argument("--burst", action="store_true", help="all first due at the same moment")
    parser.add_argument(
        "--hang",
        type=float,
        default=0.0,
        help="share of endpoints that accept and never answer (their gaps are not counted)",
    )
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups
    raise_nofile()
    django_on_postgres(DB_NAME, CELERY_BROKER_URL=BROKER, DEBUG="false")
    from datetime import timedelta

    import redis
    from django.conf import settings
    from django.utils import timezone

    from connections.models import Connection, ConnectionTransition, ProbeResult

    redis_client = redis.Redis.from_url(BROKER)
    redis_client.flushdb()
    fleet = start_fleet(args.hosts, args.fleet_processes)
    atexit.register(fleet.stop)
    queues = "celery,probes" if args.dispatch == "worker" else "probes"
    worker = Worker(queues=queues, concurrency=args.worker_concurrency).start()
    atexit.register(worker.stop)
    tick = settings.PROBE_TICK
    first_due = timezone.now() + timedelta(seconds=tick + 5)
    hung = set(
        random.Random(7).sample(range(args.connections), round(args.connections * args.hang))
    )
    rows = []
    for i in range(args.connections):
        host, port = fleet.endpoints[i % len(fleet.endpoints)]
        kind = "hang" if i in hung else "e"
        url = f"http://{host}:{port}/{kind}/{i}"
        offset = 0.0 if args.burst else args.interval * i / args.connections
        rows.append(
            Connection(
                name=f"endpoint-{i}",
                kind="http",
                url=url,
                identity=f"http|{url}",
                status="connected",
                probe_interval=args.interval,
                next_probe_at=first_due + timedelta(seconds=offset),
            )
        )
    Connection.objects.bulk_create(rows, batch_size=2000)

    meter = CpuMeter(
        trees={"fleet": fleet.pids, "worker": [worker.pid]}, single={"bench": [os.getpid()]}
    )
    print(
        f"{args.connections} connections, interval {args.interval}s, "
        f"{'all due at once' if args.burst else 'first due spread over one interval'}, "
        f"{len(hung)} never answer; "
        f"PROBE_TICK {tick:g}s, PROBE_BATCH_SIZE {settings.PROBE_BATCH_SIZE}, "
        f"PROBE_CONCURRENCY {settings.PROBE_CONCURRENCY}, PROBE_APPLY_EVERY "
        f"{settings.PROBE_APPLY_EVERY:g}s; worker -Q {queues} prefork x{args.worker_concurrency}; "
        f"dispatch {args.dispatch}; {args.minutes:g} min; {uptime()}",
        flush=True,
    )
    started_at = timezone.now()
    seconds = args.minutes * 60
    ticker = Ticker(tick, mode=args.dispatch)
    cpu_before = meter.snapshot()
    last_report = [time.monotonic()]

    def progress() -> None:
        if time.monotonic() - last_report[0] >= 60:
            last_report[0] = time.monotonic()
            done = ProbeResult.objects.count()
            print(f"  ... {done} probes so far; {uptime()}", flush=True)

    try:
        ticker.start()
        ticker.run_for(seconds, between=progress)
        ended_at = timezone.now()
        cpu = CpuMeter.describe(cpu_before, meter.snapshot())
        time.sleep(2 * settings.PROBE_APPLY_EVERY + 1)  # results of probes begun before the end
    finally:
        worker.stop()
        fleet.stop()
        redis_client.flushdb()

    starts: dict[int, list] = defaultdict(list)
    failed = 0
    hung_pks = set(Connection.objects.filter(url__contains="/hang/").values_list("pk", flat=True))
    for pk, checked_at, ok in ProbeResult.objects.filter(
        checked_at__gte=started_at, checked_at__lte=ended_at
    ).values_list("connection_id", "checked_at", "ok"):
        if pk in hung_pks:
            continue
        starts[pk].append(checked_at)
        failed += not ok
    deviations, signed = [], []
    for times in starts.values():
        times.sort()
        for before, after in zip(times, times[1:], strict=False):
            gap = (after - before).total_seconds()
            signed.append(gap - args.interval)
            deviations.append(abs(gap - args.interval))
    probes = sum(len(t) for t in starts.values())
    transitions = ConnectionTransition.objects.filter(created_at__gte=started_at).count()
    lates = [late for late, _, _ in ticker.calls]
    took = [spent for _, spent, _ in ticker.calls]
    summary = batch_summary(worker.log())
    over_1s = sum(1 for d in deviations if d > 1)

    print(
        f"\n==== schedule precision: {args.connections} connections, interval {args.interval}s,"
        f" {args.minutes:g} min, dispatch {args.dispatch}"
    )
    print(
        f"probes {probes} ({failed} failed) on {len(starts)} answering connections "
        f"({len(hung_pks)} hung ones left out); state changes {transitions}"
    )
    print(
        f"gaps {len(deviations)}: |gap - interval| p50 {percentile(deviations, 50):.3f}s, "
        f"p99 {percentile(deviations, 99):.3f}s, max {max(deviations, default=float('nan')):.3f}s"
        f"; {over_1s} gaps off by more than 1 s"
    )
    print(
        f"gap - interval: min {min(signed, default=float('nan')):+.3f}s, p1 "
        f"{percentile(signed, 1):+.3f}s, p50 {percentile(signed, 50):+.3f}s, p99 "
        f"{percentile(signed, 99):+.3f}s, max {max(signed, default=float('nan')):+.3f}s"
    )
    print(
        f"beat ticks {len(ticker.calls)}: late p99 {percentile(lates, 99) * 1000:.0f} ms, "
        f"dispatch call p50 {percentile(took, 50) * 1000:.0f} ms / max {max(took) * 1000:.0f} ms"
        f" ({'sending the task' if args.dispatch == 'worker' else 'claim + queue'})"
    )
    print(
        f"worker: {summary['batches']} batches, longest {summary['longest']:.1f}s, "
        f"{summary['stale']} stale, {summary['skipped']} skipped, {summary['errors']} errors"
    )
    verdict = "met" if percentile(deviations, 99) <= 1.0 else "MISSED"
    print(f"target p99 |gap - interval| <= 1 s: {verdict}")
    print(cpu)
    print(uptime())


if __name__ == "__main__":
    main()
