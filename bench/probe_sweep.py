"""Probe sweep: N connections through the real claim -> batch -> apply path, vs a bare loop.

    python bench/probe_sweep.py [--connections 10000] [--rounds 2] [--hang 0.02]

Sets up (PostgreSQL database ``bench_probe_sweep``, Redis db 13 as the broker):
- a loopback fleet in its own process: asyncio HTTP servers on several ports; a share of the
  endpoints (``--hang``) accept the connection and never answer, to exercise timeouts;
- N connections to it (state connected), and a real Celery worker process on the probes queue.

Each round marks every connection due, then does what beat does (``dispatch_due_probes``:
claim with SKIP LOCKED, queue batches) and waits until every connection has a new result. In the
same run, a bare asyncio + httpx loop GETs the same URLs with the same concurrency and timeouts.
Prints probes per second for both, their ratio, and the wall time of a full round.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import time

from _setup import ROOT, django_on_postgres

DB_NAME = "bench_probe_sweep"
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")


# ---- the fleet ---------------------------------------------------------------------------


async def _serve(ports: list[int], ready) -> None:
    async def handle(reader, writer):
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()
            return
        if b" /hang/" in request.split(b"\r\n", 1)[0]:
            await asyncio.sleep(3600)  # accepted, never answered
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nok"
        )
        try:
            await writer.drain()
        finally:
            writer.close()

    servers = [
        await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096) for port in ports
    ]
    ready.set()
    await asyncio.gather(*(server.serve_forever() for server in servers))


def _fleet_main(ports: list[int], ready) -> None:
    asyncio.run(_serve(ports, ready))


def start_fleet(count: int) -> tuple[multiprocessing.Process, list[int]]:
    import socket

    ports = []
    for _ in range(count):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=_fleet_main, args=(ports, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError("the fleet did not start")
    return process, ports


def fleet_urls(n: int, ports: list[int], hang: float) -> list[str]:
    every = round(1 / hang) if hang else 0
    urls = []
    for i in range(n):
        kind = "hang" if every and i % every == 0 else "e"
        urls.append(f"http://127.0.0.1:{ports[i % len(ports)]}/{kind}/{i}")
    return urls


# ---- the bare loop -------------------------------------------------------------------------


async def bare_loop(urls: list[str], concurrency: int, connect: float, total: float) -> int:
    import httpx

    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    timeout = httpx.Timeout(total, connect=connect)

    async def get(client, url):
        async with slots:
            try:
                async with asyncio.timeout(total):
                    response = await client.get(url, timeout=timeout)
                return response.status_code < 500
            except (TimeoutError, httpx.HTTPError):
                return False

    async with httpx.AsyncClient(limits=limits) as client:
        results = await asyncio.gather(*(get(client, url) for url in urls))
    return sum(results)


# ---- our path ------------------------------------------------------------------------------


def setup_django() -> None:
    django_on_postgres(DB_NAME, CELERY_BROKER_URL=BROKER)


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
                probe_interval=3600,
            )
            for i, url in enumerate(urls)
        ),
        batch_size=2000,
    )


def start_worker(pool: str, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "celery", "-A", "meshplay", "worker", "-Q", "probes"]
    command += ["--pool", pool, "--concurrency", str(concurrency), "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    worker = subprocess.Popen(command, cwd=ROOT, env=env)
    time.sleep(4)  # let it connect and start consuming
    return worker


def our_round(n: int) -> tuple[float, int]:
    from datetime import timedelta

    from django.utils import timezone

    from connections.models import Connection
    from connections.tasks import dispatch_due_probes

    start_at = timezone.now()
    Connection.objects.update(next_probe_at=start_at - timedelta(seconds=1))
    started = time.perf_counter()
    while dispatch_due_probes():
        pass
    pending = Connection.objects.filter(last_probe_at__lt=start_at) | Connection.objects.filter(
        last_probe_at__isnull=True
    )
    deadline = time.monotonic() + 600
    while pending.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"round not finished: {pending.count()} connections unprobed")
        time.sleep(0.1)
    wall = time.perf_counter() - started
    ok = Connection.objects.filter(last_probe_ok=True).count()
    assert ok + Connection.objects.filter(last_probe_ok=False).count() == n
    return wall, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hang", type=float, default=0.02)
    parser.add_argument("--ports", type=int, default=16)
    # as deployed: one prefork process per core on the probes queue
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--worker-concurrency", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    setup_django()
    import redis
    from django.conf import settings

    redis.Redis.from_url(BROKER).flushdb()
    connect, total = settings.PROBE_TIMEOUTS["default"]
    concurrency = settings.PROBE_CONCURRENCY

    fleet, ports = start_fleet(args.ports)
    urls = fleet_urls(args.connections, ports, args.hang)
    create_connections(urls)
    worker = start_worker(args.pool, args.worker_concurrency)
    print(
        f"{args.connections} connections, {args.hang:.0%} never answer, timeout {total:g}s, "
        f"batch {settings.PROBE_BATCH_SIZE}, concurrency {concurrency}/batch, "
        f"worker --pool {args.pool} --concurrency {args.worker_concurrency}"
    )
    try:
        for round_number in range(1, args.rounds + 1):
            started = time.perf_counter()
            bare_ok = asyncio.run(bare_loop(urls, concurrency, connect, total))
            bare = time.perf_counter() - started
            wall, ok = our_round(args.connections)
            bare_rate, our_rate = args.connections / bare, args.connections / wall
            print(
                f"round {round_number}: ours {wall:6.2f}s {our_rate:7.0f} probes/s ({ok} ok) | "
                f"bare loop {bare:6.2f}s {bare_rate:7.0f} probes/s ({bare_ok} ok) | "
                f"ratio {our_rate / bare_rate:.2f} | target round <= {total + 20:g}s: "
                f"{'met' if wall <= total + 20 else 'MISSED'}"
            )
    finally:
        worker.terminate()
        worker.wait(30)
        fleet.terminate()
        redis.Redis.from_url(BROKER).flushdb()


if __name__ == "__main__":
    main()
