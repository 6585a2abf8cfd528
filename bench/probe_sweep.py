"""Probe sweep: N connections through beat's dispatch -> Redis -> a real worker -> PostgreSQL,
against bare httpx, aiohttp and raw-stream loops on the same fleet in the same run.

    python bench/probe_sweep.py [--connections 10000] [--rounds 2] [--hang 0.02]
                                [--worker-concurrency 2] [--batch-size N] [--probe-concurrency N]
    python bench/probe_sweep.py --sweep          # worker/batch/concurrency grid, one table
    python bench/probe_sweep.py --connections 100000 --rounds 1

Sets up (PostgreSQL database ``bench_probe_sweep``, Redis db 13 as the broker):
- a loopback fleet in processes of its own (bench/_harness.py: uvloop protocol servers on
  ``--hosts`` distinct address:port pairs, SO_REUSEPORT over ``--fleet-processes``); a share
  (``--hang``, picked at random) of the endpoints accept and never answer;
- N connections to it (state connected, interval 3600 s so that only the round probes them),
  and a real Celery worker (prefork) on the probes queue, DEBUG=false, logging at INFO.

A round marks every connection due now (one UPDATE; the clock starts when it commits), then
does what beat does: ``dispatch_due_probes`` at once and again every PROBE_TICK while the round
lasts, and ends at the first poll of PostgreSQL that finds every connection with a
``last_probe_at`` from this round. Before it, each bare loop (in a process of its own, on
uvloop) GETs the same URLs with the same number in flight (PROBE_CONCURRENCY x worker
processes) and the same timeouts. Targets: a round within timeout + 5 s, and at least 0.8x the
rate of the bare aiohttp loop. The raw-stream loop is the ceiling the fleet allows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from _harness import (
    LOOP_NAME,
    CpuMeter,
    Ticker,
    Worker,
    batch_summary,
    raise_nofile,
    run_loop,
    start_fleet,
    uptime,
)
from _setup import django_on_postgres

DB_NAME = "bench_probe_sweep"
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
BARE_KINDS = ("raw", "aiohttp", "httpx")


# ---- the bare loops (each in a child process: python probe_sweep.py --bare-child KIND) -----


async def _bare_raw(urls, concurrency, connect, total, done):
    import asyncio
    from urllib.parse import urlsplit

    slots = asyncio.Semaphore(concurrency)

    async def one(url):
        parts = urlsplit(url)
        request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: bare\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        ).encode()
        async with slots:
            writer = None
            try:
                async with asyncio.timeout(total):
                    async with asyncio.timeout(connect):
                        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                    writer.write(request)
                    line = await reader.readline()
                    ok = int(line.split()[1]) < 500
            except (TimeoutError, OSError, ValueError, IndexError):
                ok = False
            finally:
                if writer is not None:
                    writer.close()
            return done(ok)

    return await asyncio.gather(*(one(url) for url in urls))


async def _bare_aiohttp(urls, concurrency, connect, total, done):
    import asyncio

    import aiohttp

    slots = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect)

    async def one(session, url):
        async with slots:
            try:
                async with session.get(url, allow_redirects=False, timeout=timeout) as response:
                    await response.content.read(256 * 1024)
                    return done(response.status < 500)
            except (TimeoutError, aiohttp.ClientError, OSError):
                return done(False)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        return await asyncio.gather(*(one(session, url) for url in urls))


async def _bare_httpx(urls, concurrency, connect, total, done):
    import asyncio

    import httpx

    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    timeout = httpx.Timeout(total, connect=connect)

    async def one(client, url):
        async with slots:
            try:
                async with asyncio.timeout(total):
                    response = await client.get(url)
                return done(response.status_code < 500)
            except (TimeoutError, httpx.HTTPError):
                return done(False)

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        return await asyncio.gather(*(one(client, url) for url in urls))


def bare_child(kind: str, path: str, concurrency: int, connect: float, total: float) -> None:
    """Read URLs, say ready, wait for 'go' on stdin, run, print what happened as JSON."""
    raise_nofile()
    with open(path) as handle:
        urls = handle.read().split()
    loop_function = {"raw": _bare_raw, "aiohttp": _bare_aiohttp, "httpx": _bare_httpx}[kind]
    last_ok = [0.0]

    def done(ok):
        if ok:
            last_ok[0] = time.time()
        return ok

    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    results = run_loop(loop_function(urls, concurrency, connect, total, done))
    ended = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "started": started,
                "ended": ended,
                "ok": sum(results),
                "last_ok": last_ok[0],
                "cpu": usage.ru_utime + usage.ru_stime,
            }
        )
    )


@dataclass
class BareResult:
    kind: str
    seconds: float
    ok: int
    healthy_done: float  # seconds until the last successful GET ended
    processes: int
    cpu: float  # CPU seconds of the loop's processes (imports included)


def run_bare(
    kind: str, urls: list[str], concurrency: int, connect: float, total: float, processes: int = 1
) -> BareResult:
    """The bare loop over ``urls`` in ``processes`` processes (``concurrency`` in flight in all)."""
    children, files = [], []
    for index in range(processes):
        part = urls[index::processes]
        handle = tempfile.NamedTemporaryFile("w", suffix=".urls", delete=False)  # noqa: SIM115
        handle.write("\n".join(part))
        handle.close()
        files.append(handle.name)
        command = [sys.executable, __file__, "--bare-child", kind, "--bare-file", handle.name]
        command += ["--bare-concurrency", str(max(1, concurrency // processes))]
        command += ["--bare-timeouts", f"{connect},{total}"]
        children.append(
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"bare {kind} child did not start")
    started = time.time()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    reports = []
    for child in children:
        out, _ = child.communicate(timeout=1800)
        reports.append(json.loads(out.strip().splitlines()[-1]))
    for name in files:
        os.unlink(name)
    ended = max(r["ended"] for r in reports)
    last_ok = max(r["last_ok"] for r in reports)
    return BareResult(
        kind,
        ended - started,
        sum(r["ok"] for r in reports),
        last_ok - started,
        processes,
        sum(r["cpu"] for r in reports),
    )


# ---- the fleet's URLs and our connections ------------------------------------------------


def fleet_urls(n: int, endpoints: list[tuple[str, int]], hang: float, seed: int = 7) -> list[str]:
    """Endpoint i on host i mod hosts; round(n * hang) of them, at random, never answer."""
    hung = set(random.Random(seed).sample(range(n), round(n * hang)))
    urls = []
    for i in range(n):
        host, port = endpoints[i % len(endpoints)]
        urls.append(f"http://{host}:{port}/{'hang' if i in hung else 'e'}/{i}")
    return urls


def setup_django(**env: str) -> None:
    django_on_postgres(DB_NAME, CELERY_BROKER_URL=BROKER, DEBUG="false", **env)


def create_connections(urls: list[str]) -> None:
    from connections.models import Connection

    Connection.all_objects.all().delete()
    Connection.objects.bulk_create(
        (
            Connection(
                name=f"endpoint-{i}",
                kind="http",
                url=url,
                identity=f"http|{url}",
                status="connected",
                # only the round probes them: a failure is not retried within it either, so
                # a second result of one connection is a duplicate, never a retry
                probe_interval=3600,
                retry_interval=3600,
                next_probe_at=None,
            )
            for i, url in enumerate(urls)
        ),
        batch_size=5000,
    )


# ---- our round -----------------------------------------------------------------------------


@dataclass
class OurRound:
    seconds: float  # from the commit that made every row due to the poll that found all written
    ok: int
    failed: int
    update_seconds: float
    first_start: float  # seconds from due to the first probe's start
    healthy_done: float  # ... to the end of the last successful probe (from its result row)
    probes: int  # result rows written in the round (N if nothing was probed twice)
    ticks: int
    dispatch_first: float  # seconds the first dispatch took
    dispatched_first: int
    dispatched_total: int
    batches_first: int
    worker: dict
    cpu: str
    worker_cpu: float
    poll: float


def drain(redis_client, timeout: float = 120) -> None:
    """Wait until no batch is queued and no row is still claimed (the previous round's tail)."""
    from connections.models import Connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = sum(redis_client.llen(q) for q in redis_client.scan_iter("probes*"))
        if not queued and not Connection.objects.filter(probe_claim__isnull=False).exists():
            time.sleep(1)
            return
        time.sleep(0.5)
    print("  (warning: the previous round's tail did not drain)")


def our_round(n: int, worker: Worker, meter: CpuMeter, tick: float) -> OurRound:
    from django.conf import settings
    from django.db import connection as db_connection
    from django.db import transaction
    from django.db.models import Min, Q
    from django.utils import timezone

    from connections.models import Connection, ProbeResult

    poll = 0.1 if n <= 20_000 else 0.25
    log_from = worker.log_path.stat().st_size
    # every round from the same start: connected, no failure counted, nothing claimed
    Connection.objects.update(
        status="connected", consecutive_failures=0, probe_claim=None, probe_due_at=None
    )
    marked_at = timezone.now()
    update_started = time.perf_counter()
    with transaction.atomic(), db_connection.cursor() as cursor:
        # all due now, in a random order (claims take the earliest first): the hung endpoints
        # are spread over the batches as in round 1, not left where the heap put them
        cursor.execute(
            "UPDATE connections_connection SET next_probe_at = "
            "%s - random() * interval '1 millisecond' WHERE status <> 'deleted'",
            [marked_at],
        )
    # the clock starts when every row is due and visible as due
    t0, due_at = time.monotonic(), timezone.now()
    update_seconds = time.perf_counter() - update_started
    cpu_before = meter.snapshot()

    ticker = Ticker(tick)
    ticker.start(t0)
    ticker.fire()  # beat's tick, at the moment they are due
    dispatch_first, dispatched_first = ticker.calls[0][1], ticker.calls[0][2]
    pending = Connection.objects.filter(
        Q(last_probe_at__lt=marked_at) | Q(last_probe_at__isnull=True)
    )
    deadline = t0 + 1800
    while True:
        if not pending.exists():
            seconds = time.monotonic() - t0
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"round not finished: {pending.count()} connections unprobed")
        if ticker.due():
            ticker.fire()  # beat keeps ticking while the round lasts
        time.sleep(max(0.0, min(poll, ticker.next_at - time.monotonic())))
    cpu_after = meter.snapshot()
    cpu = CpuMeter.describe(cpu_before, cpu_after)
    worker_cpu = cpu_after["worker"] - cpu_before["worker"]

    ok = Connection.objects.filter(last_probe_ok=True).count()
    failed = Connection.objects.filter(last_probe_ok=False).count()
    results = ProbeResult.objects.filter(checked_at__gte=marked_at)
    first = results.aggregate(first=Min("checked_at"))["first"]
    healthy_end = 0.0
    for checked_at, latency in results.filter(ok=True).values_list("checked_at", "latency_ms"):
        end = (checked_at - due_at).total_seconds() + (latency or 0) / 1000
        healthy_end = max(healthy_end, end)
    time.sleep(0.5)  # let the worker log the batches that just ended
    with open(worker.log_path, errors="replace") as handle:
        handle.seek(log_from)
        worker_log = handle.read()
    return OurRound(
        seconds=seconds,
        ok=ok,
        failed=failed,
        update_seconds=update_seconds,
        first_start=(first - due_at).total_seconds() if first else float("nan"),
        healthy_done=healthy_end,
        probes=results.count(),
        ticks=len(ticker.calls),
        dispatch_first=dispatch_first,
        dispatched_first=dispatched_first,
        dispatched_total=sum(max(c[2], 0) for c in ticker.calls),
        batches_first=math.ceil(dispatched_first / settings.PROBE_BATCH_SIZE),
        worker=batch_summary(worker_log),
        cpu=cpu,
        worker_cpu=worker_cpu,
        poll=poll,
    )


# ---- one configuration ---------------------------------------------------------------------


@dataclass
class Config:
    worker_concurrency: int
    batch_size: int
    probe_concurrency: int

    def label(self) -> str:
        return (
            f"prefork x{self.worker_concurrency}, PROBE_BATCH_SIZE {self.batch_size}, "
            f"PROBE_CONCURRENCY {self.probe_concurrency}"
        )


def run_config(config: Config, args, urls, fleet, redis_client) -> list[dict]:
    from django.conf import settings

    connect, total = settings.PROBE_TIMEOUTS["default"]
    settings.PROBE_BATCH_SIZE = config.batch_size  # the dispatch runs in this process
    worker = Worker(
        queues="probes",
        pool=args.pool,
        concurrency=config.worker_concurrency,
        PROBE_BATCH_SIZE=str(config.batch_size),
        PROBE_CONCURRENCY=str(config.probe_concurrency),
    ).start()
    meter = CpuMeter(
        trees={"fleet": fleet.pids, "worker": [worker.pid]}, single={"bench": [os.getpid()]}
    )
    bare_concurrency = args.bare_concurrency or config.probe_concurrency * config.worker_concurrency
    n = len(urls)
    rows = []
    print(
        f"\n== {config.label()}; bare loops: {bare_concurrency} in flight, "
        f"{args.bare_processes} process(es), {LOOP_NAME}",
        flush=True,
    )
    try:
        for round_number in range(1, args.rounds + 1):
            bare = {}
            for kind in args.bare:
                before = meter.snapshot()
                bare[kind] = run_bare(
                    kind, urls, bare_concurrency, connect, total, args.bare_processes
                )
                b = bare[kind]
                print(
                    f"  bare {kind:8s} {b.seconds:7.2f}s {n / b.seconds:7.0f} probes/s "
                    f"({b.ok} ok; last success at {b.healthy_done:.2f}s; loop CPU {b.cpu:.1f}s) | "
                    f"{CpuMeter.describe(before, meter.snapshot())}",
                    flush=True,
                )
            drain(redis_client)
            ours = our_round(n, worker, meter, settings.PROBE_TICK)
            rate = n / ours.seconds
            w = ours.worker
            print(
                f"  round {round_number}: ours {ours.seconds:7.2f}s {rate:7.0f} probes/s "
                f"({ours.ok} ok, {ours.failed} failed; poll every {ours.poll}s)\n"
                f"    due->first probe start {ours.first_start:.2f}s, last successful probe "
                f"ended {ours.healthy_done:.2f}s, UPDATE marking all due {ours.update_seconds:.2f}s"
                f"\n    dispatch: first tick {ours.dispatch_first:.2f}s for "
                f"{ours.dispatched_first} rows in {ours.batches_first} batches; {ours.ticks} ticks,"
                f" {ours.dispatched_total} rows dispatched in all; result rows {ours.probes}\n"
                f"    worker: {w['batches']} batches run ({w['empty']} found nothing still "
                f"theirs), {w['skipped']} rows skipped, {w['stale']} results dropped as stale, "
                f"longest batch {w['longest']:.1f}s, {w['errors']} errors\n    {ours.cpu}; "
                f"worker CPU {ours.worker_cpu:.1f}s",
                flush=True,
            )
            row = {
                "config": config.label(),
                "round": ours.seconds,
                "ours": rate,
                "ticks": ours.ticks,
                "dispatch": ours.dispatch_first,
                "batches": ours.batches_first,
                "dup": ours.probes - n,
                "load": os.getloadavg()[0],
            }
            for kind, b in bare.items():
                row[kind] = n / b.seconds
            rows.append(row)
            row["cpu_ours"] = ours.worker_cpu / n * 1000
            for kind, b in bare.items():
                row[f"cpu_{kind}"] = b.cpu / n * 1000
            parts = [f"{kind} {rate / row[kind]:.2f}x" for kind in bare]
            cpu_parts = [f"{kind} {row[f'cpu_{kind}']:.2f} ms" for kind in bare]
            print(
                f"    ratio ours/bare: {', '.join(parts)}; CPU a probe: ours "
                f"{row['cpu_ours']:.2f} ms, {', '.join(cpu_parts)} | {uptime()}",
                flush=True,
            )
            drain(redis_client)
    finally:
        worker.stop()
    return rows


def run_locations(config: Config, args, urls, fleet, redis_client, single: list[dict]) -> list:
    """The same fleet probed from ``--locations`` locations (a worker each, as many processes
    as the single location's), every connection from every location, a majority deciding."""
    from django.conf import settings
    from django.db.models import Q
    from django.utils import timezone

    from connections.models import Connection, Location, LocationWorker, ProbeResult, ProbeRound

    names = [f"loc{i}" for i in range(1, args.locations + 1)]
    Location.objects.all().delete()
    for name in names:
        Location.objects.create(name=name)
    workers = [
        Worker(
            queues=f"probes.{name}",
            pool=args.pool,
            concurrency=config.worker_concurrency,
            PROBE_LOCATION=name,
            LOCATION_HEARTBEAT="1",
            PROBE_BATCH_SIZE=str(config.batch_size),
            PROBE_CONCURRENCY=str(config.probe_concurrency),
        ).start()
        for name in names
    ]
    meter = CpuMeter(
        trees={"fleet": fleet.pids, "workers": [w.pid for w in workers]},
        single={"bench": [os.getpid()]},
    )
    n, rows = len(urls), []
    _, total = settings.PROBE_TIMEOUTS["default"]
    single_rate = max(row["ours"] for row in single) if single else float("nan")
    print(f"\n== {len(names)} locations, each: {config.label()}", flush=True)
    try:
        deadline = time.monotonic() + 60
        while LocationWorker.objects.count() < len(names) and time.monotonic() < deadline:
            time.sleep(0.2)
        for round_number in range(1, args.rounds + 1):
            drain(redis_client)
            ProbeRound.objects.all().delete()
            Connection.objects.update(
                status="connected", consecutive_failures=0, probe_claim=None, probe_due_at=None
            )
            marked_at = timezone.now()
            Connection.objects.update(next_probe_at=marked_at)
            t0 = time.monotonic()
            cpu_before = meter.snapshot()
            ticker = Ticker(settings.PROBE_TICK)
            ticker.start(t0)
            ticker.fire()
            # decided once since marked: probed (last_probe_at), or judged without an answer
            # (no location answered: its next probe is due again, unclaimed)
            pending = Connection.objects.exclude(
                Q(last_probe_at__gte=marked_at)
                | Q(next_probe_at__gt=marked_at, probe_claim__isnull=True)
            )
            while pending.exists():
                if time.monotonic() > t0 + 1800:
                    raise RuntimeError("the round did not end")
                if ticker.due():
                    ticker.fire()
                time.sleep(max(0.0, min(0.1, ticker.next_at - time.monotonic())))
            seconds = time.monotonic() - t0
            cpu_after = meter.snapshot()
            results = ProbeResult.objects.filter(checked_at__gte=marked_at, round__isnull=False)
            probes = results.count()
            partial = Connection.objects.filter(locations_note__startswith="down in").count()
            unjudged = Connection.objects.filter(locations_note__contains="answered").count()
            worker_cpu = cpu_after["workers"] - cpu_before["workers"]
            rate = probes / seconds
            print(
                f"  round {round_number}: {seconds:7.2f}s, {probes} results "
                f"({probes - len(names) * n:+d} against {len(names)} x {n}), aggregate "
                f"{rate:7.0f} probes/s = {rate / single_rate:.2f}x the single location's "
                f"{single_rate:.0f}/s; {partial} partial, {unjudged} with a location missing; "
                f"workers' CPU {worker_cpu:.1f}s "
                f"({worker_cpu / max(probes, 1) * 1000:.2f} ms a probe); "
                f"{CpuMeter.describe(cpu_before, cpu_after)} | {uptime()}",
                flush=True,
            )
            rows.append(
                {
                    "config": f"{len(names)} locations, {config.label()}",
                    "round": seconds,
                    "ours": rate,
                    "single": single_rate,
                    "results": probes,
                    "expected": len(names) * n,
                    "target": total + 5,
                }
            )
    finally:
        for worker in workers:
            worker.stop()
        Location.objects.all().delete()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hang", type=float, default=0.02)
    parser.add_argument("--hosts", type=int, default=256, help="distinct address:port pairs")
    parser.add_argument("--fleet-processes", type=int, default=2)
    parser.add_argument("--pool", default="prefork")
    # the Procfile's default: two prefork processes per core
    parser.add_argument("--worker-concurrency", type=int, default=2 * (os.cpu_count() or 2))
    parser.add_argument("--batch-size", type=int, default=0, help="default: settings")
    parser.add_argument("--probe-concurrency", type=int, default=0, help="default: settings")
    parser.add_argument("--bare", default=",".join(BARE_KINDS), help="which bare loops")
    parser.add_argument("--bare-processes", type=int, default=1)
    parser.add_argument(
        "--bare-concurrency",
        type=int,
        default=0,
        help="default: PROBE_CONCURRENCY x worker processes",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="prefork 2/4 x batch 1000/2500/5000 x PROBE_CONCURRENCY 500/1000",
    )
    parser.add_argument(
        "--locations",
        type=int,
        default=0,
        help="then the same fleet from this many locations (0: one, as without locations)",
    )
    parser.add_argument("--bare-child", choices=BARE_KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--bare-file", help=argparse.SUPPRESS)
    parser.add_argument("--bare-timeouts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        connect, total = (float(x) for x in args.bare_timeouts.split(","))
        bare_child(args.bare_child, args.bare_file, args.bare_concurrency, connect, total)
        return
    args.bare = [kind for kind in args.bare.split(",") if kind]

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups
    raise_nofile()
    setup_django()
    import redis
    from django.conf import settings

    redis_client = redis.Redis.from_url(BROKER)
    redis_client.flushdb()
    connect, total = settings.PROBE_TIMEOUTS["default"]
    fleet = start_fleet(args.hosts, args.fleet_processes)
    urls = fleet_urls(args.connections, fleet.endpoints, args.hang)
    created = time.perf_counter()
    create_connections(urls)
    print(
        f"{args.connections} connections ({time.perf_counter() - created:.1f}s to create), "
        f"{args.hang:.0%} never answer, timeouts connect {connect:g}s / total {total:g}s; "
        f"fleet: {len(fleet.endpoints)} loopback hosts in {args.fleet_processes} uvloop "
        f"processes (SO_REUSEPORT); PROBE_TICK {settings.PROBE_TICK:g}s, PROBE_CLAIM_LEASE "
        f"{settings.PROBE_CLAIM_LEASE}s, PROBE_PER_HOST_CONCURRENCY "
        f"{settings.PROBE_PER_HOST_CONCURRENCY}; {os.cpu_count()} cores; {uptime()}",
        flush=True,
    )
    if args.sweep:
        configs = [
            Config(wc, bs, pc) for wc in (2, 4) for bs in (1000, 2500, 5000) for pc in (500, 1000)
        ]
    else:
        configs = [
            Config(
                args.worker_concurrency,
                args.batch_size or settings.PROBE_BATCH_SIZE,
                args.probe_concurrency or settings.PROBE_CONCURRENCY,
            )
        ]
    rows, located = [], []
    try:
        for config in configs:
            single = run_config(config, args, urls, fleet, redis_client)
            rows += single
            if args.locations:
                located += run_locations(config, args, urls, fleet, redis_client, single)
    finally:
        fleet.stop()
        redis_client.flushdb()

    target = total + 5
    print(
        f"\n==== summary: {args.connections} connections, {args.hang:.0%} hung, "
        f"timeout {total:g}s; targets: round <= {target:g}s, ours >= 0.8x bare aiohttp"
    )
    header = f"{'configuration':62s} {'round':>7s} {'ours/s':>7s} " + " ".join(
        f"{kind + '/s':>9s}" for kind in args.bare
    )
    header += f" {'x aiohttp':>9s} {'batches':>7s} {'dispatch':>8s} {'dup':>5s} {'load1':>5s}"
    header += f" {'cpu/probe ours':>14s} {'aiohttp':>7s}"
    print(header)
    for row in rows:
        line = f"{row['config']:62s} {row['round']:6.2f}s {row['ours']:7.0f} "
        line += " ".join(f"{row[kind]:9.0f}" for kind in args.bare)
        ratio = row["ours"] / row["aiohttp"] if "aiohttp" in row else float("nan")
        verdict = (
            ("met" if row["round"] <= target else "MISSED")
            + "/"
            + ("met" if ratio >= 0.8 else "MISSED")
        )
        line += f" {ratio:9.2f} {row['batches']:7d} {row['dispatch']:7.2f}s {row['dup']:5d}"
        line += f" {row['load']:5.2f} {row['cpu_ours']:11.2f} ms"
        line += f" {row.get('cpu_aiohttp', float('nan')):5.2f} ms  {verdict}"
        print(line)
    if located:
        print(
            f"\n{'locations':62s} {'round':>7s} {'agg/s':>7s} {'single/s':>8s} {'ratio':>6s} "
            f"{'results':>8s}  targets: ratio >= 0.9, round <= {target:g}s"
        )
        for row in located:
            ratio = row["ours"] / row["single"]
            verdict = (
                ("met" if ratio >= 0.9 else "MISSED")
                + "/"
                + ("met" if row["round"] <= row["target"] else "MISSED")
            )
            print(
                f"{row['config']:62s} {row['round']:6.2f}s {row['ours']:7.0f} "
                f"{row['single']:8.0f} {ratio:6.2f} {row['results']:8d}  {verdict}"
            )
    print(uptime())


if __name__ == "__main__":
    main()
