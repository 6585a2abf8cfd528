"""Live refresh under a real gunicorn: what an unchanged poll costs, what 1,000 open tabs cost
while nothing changes, and what 20 users loading pages cost while probes run.

    python bench/refresh.py [--size 1000] [--tabs 1000] [--users 20] [--seconds 30]

Fills the PostgreSQL database ``bench_refresh`` (``--size`` connections over states, kinds and
20 environments, 30 probe results each), starts ``gunicorn meshplay.wsgi`` as the Procfile does
(3 sync workers, DEBUG off, static files collected) and signs in through the login form.

1. Server time (gunicorn's own %(D)s per request) of the table's fragment poll: unchanged (the
   poll sends its ETag: 304) against the baseline of rendering it (no ETag: 200), same run.
2. ``--tabs`` tabs, each polling the table fragment every 5 s with its ETag, nothing changing,
   for ``--seconds``: client latency p50 / p95 (target p95 < 200 ms) and the share of 304s.
3. ``--users`` users loading whole pages while a probe process keeps probing every connection
   against a loopback HTTP server (in a process of its own; interval 30 s): client latency
   p50 / p95 (target p95 < 250 ms). Each kind of page is as likely as another: the overview,
   three table pages (the first, page 3, filtered), the environments, a connection's page.
   Every user signs in before the clock starts (a password hash is ~0.3 s of CPU: twenty at
   once would measure sign-in, not pages), arrives within the first reading time and reads each
   page for 1 to 3 s. Then the same users back to back, with no reading time: what this machine
   saturates at, for comparison. ``BENCH_SLOWEST=1`` adds the server time per kind of page.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import percentile
from _setup import PG_URL, ROOT, django_on_postgres

DB_NAME = "bench_refresh"
PASSWORD = "bench-pw-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(size: int, endpoint: str) -> tuple[str, list[int]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from django.db import connection as db
    from table import fill as fill_table

    user = fill_table(size)
    user.set_password(PASSWORD)
    user.save()
    with db.cursor() as cursor:
        cursor.execute(
            "UPDATE connections_connection SET url = %s || id, probe_interval = 30,"
            " next_probe_at = now() + (random() * interval '30 seconds')",
            [f"{endpoint}/c"],
        )
        cursor.execute(
            "INSERT INTO connections_proberesult"
            " (connection_id, checked_at, ok, latency_ms, status_code, error_class, error)"
            " SELECT c.id, now() - n * interval '30 seconds', (c.id + n) % 7 <> 0,"
            "  5 + (n % 11), 200, '', ''"
            " FROM connections_connection c, generate_series(1, 30) n"
        )
        cursor.execute("ANALYZE")
        cursor.execute("SELECT id FROM connections_connection ORDER BY id LIMIT 200")
        ids = [row[0] for row in cursor.fetchall()]
    return user.username, ids


ENDPOINT = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Endpoint:
    """A loopback HTTP server that answers 200 to every probe, in a process of its own: the
    probes it answers must not take the interpreter from the clients this process measures."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", ENDPOINT], stdout=subprocess.PIPE, text=True
        )
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"


def server_env(static_root: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"{PG_URL}/{DB_NAME}",
        "DJANGO_SETTINGS_MODULE": "meshplay.settings",
        "DEBUG": "false",
        "LIVE_RELEASE": "bench",
        # sessions cached in Redis, as production runs (REDIS_URL is required there)
        "CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/14"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "STATIC_ROOT": static_root,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def start_gunicorn(env: dict[str, str], port: int, log: Path, workers: int) -> subprocess.Popen:
    bin_dir = Path(sys.executable).parent
    process = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "meshplay.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--access-logfile",
            str(log),
            "--access-logformat",
            "%(m)s %(U)s?%(q)s %(s)s %(D)s",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


async def sign_in(session, base: str, username: str) -> None:
    page = await (await session.get(f"{base}/accounts/login/")).text()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = await session.post(
        f"{base}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD},
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
    )
    assert response.status == 302, f"sign-in failed: {response.status}"


POLL_HEADERS = {"HX-Request": "true", "HX-Target": "table-region"}


async def poll(session, url: str, etag: str | None) -> tuple[int, str | None, float]:
    headers = dict(POLL_HEADERS, **({"If-None-Match": etag} if etag else {}))
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        await response.read()
        return response.status, response.headers.get("ETag"), time.perf_counter() - started


def server_times(log: Path, since: int, status: str, method: str = "GET") -> list[float]:
    """Server times in ms of the requests logged after byte ``since`` with ``status``."""
    with log.open() as f:
        f.seek(since)
        lines = [line.split() for line in f.read().splitlines()]
    return [int(p[3]) / 1000 for p in lines if len(p) == 4 and p[2] == status and p[0] == method]


async def scenario(args, base: str, username: str, log: Path, ids: list[int]) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies of an IP address (127.0.0.1) too
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as session:
        await sign_in(session, base, username)
        table = f"{base}/connections/"
        # 1. server time: rendered (baseline) against unchanged
        status, etag, _ = await poll(session, table, None)
        assert status == 200 and etag, (status, etag)
        mark = log.stat().st_size
        for _ in range(args.repeat):
            await poll(session, table, None)
        await asyncio.sleep(0.5)
        rendered = server_times(log, mark, "200")
        status, etag, _ = await poll(session, table, None)  # what the page shows now
        mark = log.stat().st_size
        for _ in range(args.repeat):
            status, new, _ = await poll(session, table, etag)
            etag = new or etag  # a healing slice may end meanwhile: one render, then 304s
        await asyncio.sleep(0.5)
        unchanged = server_times(log, mark, "304")
        a, b = statistics.median(rendered), statistics.median(unchanged)
        print(
            f"1. table fragment, server time: rendered median {a:.1f} ms (p95 "
            f"{percentile(rendered, 95):.1f}), unchanged median {b:.2f} ms (p95 "
            f"{percentile(unchanged, 95):.2f}); unchanged/rendered {b / a:.3f} (target < 5 ms)"
        )

        # 2. many open tabs, nothing changing
        latencies: list[float] = []
        statuses: list[int] = []
        stop = time.monotonic() + args.seconds

        async def tab() -> None:
            tag = etag
            await asyncio.sleep(random.uniform(0, 5))
            while time.monotonic() < stop:
                started = time.monotonic()
                code, new, took = await poll(session, table, tag)
                tag = new or tag
                latencies.append(took * 1000)
                statuses.append(code)
                await asyncio.sleep(max(0.0, 5 - (time.monotonic() - started)))

        await asyncio.gather(*(tab() for _ in range(args.tabs)))
        share = statuses.count(304) / max(1, len(statuses))
        print(
            f"2. {args.tabs} tabs polling every 5 s, nothing changing, {args.seconds} s: "
            f"{len(latencies)} polls ({len(latencies) / args.seconds:.0f}/s), "
            f"p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
            f"{share:.0%} answered 304 (target p95 < 200 ms)"
        )


async def users(
    args, base: str, username: str, ids: list[int], think: tuple[float, float], log: Path
) -> tuple[list[float], int]:
    """The users' latencies, and where the server's log stood once they had signed in."""
    import aiohttp

    slowest: list[tuple[float, str]] = []
    # each kind of page as likely as another: half of them the table (the heaviest)
    pages = ["/", "/connections/", "/connections/?page=3", "/connections/?status=connected"]
    pages += ["/environments/", "connection"]
    latencies: list[float] = []
    sessions = [
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(args.users)
    ]
    # every user signs in before the clock starts: 20 password hashes at once (PBKDF2, about
    # half a second of CPU each) would otherwise hold all workers for the first seconds
    for session in sessions:
        await sign_in(session, base, username)
    await asyncio.sleep(0.5)  # the last sign-in logged
    mark = log.stat().st_size
    stop = time.monotonic() + args.seconds

    async def user(session) -> None:
        # users arrive over the first reading time, as the tabs above do over their 5 s: all
        # twenty in one millisecond would queue 20 pages on 3 workers, a burst of the bench's own
        await asyncio.sleep(random.uniform(0, think[1]))
        async with session:
            while time.monotonic() < stop:
                started = time.perf_counter()
                path = random.choice(pages)
                if path == "connection":
                    path = f"/connections/{random.choice(ids[:50])}/"
                async with session.get(base + path) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append((time.perf_counter() - started) * 1000)
                slowest.append((latencies[-1], path))
                await asyncio.sleep(random.uniform(*think))

    await asyncio.gather(*(user(session) for session in sessions))
    if os.environ.get("BENCH_SLOWEST"):
        print(sorted(slowest, reverse=True)[:12])
    return latencies, mark


PROBER = """
import time, django
django.setup()
from connections.probing.scheduling import run_round
while True:
    run_round()
    time.sleep(0.5)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--tabs", type=int, default=1000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    endpoint = Endpoint()
    django_on_postgres(DB_NAME, ALLOWED_HOSTS="127.0.0.1")
    username, ids = fill(args.size, endpoint.url)
    print(f"{args.size} connections, 30 probe results each; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as static_root:
        env = server_env(static_root)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        port, log = free_port(), Path(static_root) / "access.log"
        server = start_gunicorn(env, port, log, args.workers)
        base = f"http://127.0.0.1:{port}"
        prober = None
        try:
            asyncio.run(scenario(args, base, username, log, ids))
            prober = subprocess.Popen([sys.executable, "-c", PROBER], cwd=ROOT, env=env)
            time.sleep(3)
            for label, think in (("reading 1-3 s", (1.0, 3.0)), ("back to back", (0.0, 0.0))):
                latencies, mark = asyncio.run(users(args, base, username, ids, think, log))
                time.sleep(0.5)
                served = server_times(log, mark, "200")
                if os.environ.get("BENCH_SLOWEST"):  # server time per kind of page
                    with log.open() as f:
                        f.seek(mark)
                        rows = [line.split() for line in f.read().splitlines()]
                    kinds: dict[str, list[float]] = {}
                    for row in rows:
                        kind = re.sub(r"/\d+/", "/<id>/", row[1])
                        kinds.setdefault(kind, []).append(int(row[3]) / 1000)
                    for kind, times in sorted(kinds.items()):
                        p50, p95 = percentile(times, 50), percentile(times, 95)
                        print(f"   {kind}: p50 {p50:.0f} p95 {p95:.0f} ms")
                print(
                    f"3. {args.users} users loading pages while probes run, {label}, "
                    f"{args.seconds} s: {len(latencies)} pages "
                    f"({len(latencies) / args.seconds:.0f}/s), "
                    f"p50 {percentile(latencies, 50):.0f} ms, "
                    f"p95 {percentile(latencies, 95):.0f} ms (target p95 < 250 ms); server time "
                    f"p50 {percentile(served, 50):.0f} ms, p95 {percentile(served, 95):.0f} ms"
                )
        finally:
            for process in (prober, server, endpoint.process):
                if process is not None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(20)


if __name__ == "__main__":
    main()
