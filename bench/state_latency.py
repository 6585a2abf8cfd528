"""State latency against a real Prometheus: how long until an outage, and a recovery, show in
the database, and whether a flaky endpoint ever changes state.

    python bench/state_latency.py [--down-minutes 2 [5.5 10 15 …]] [--flaky-minutes 10]
                                  [--trials 1]
                                  [--flaky-pattern both|one-in-three|two-in-a-row]
                                  [--fail-how 503|reset|hang] [--skip-flaky]

Sets up (PostgreSQL database ``bench_state_latency``, Redis db 15 as the broker) Debian's
``prometheus`` on a free loopback port (as tests/services.py starts it), a ``prometheus``
connection to it in state Connected with the defaults (interval 30 s, retry 5 s, threshold 3),
a real Celery worker (prefork, DEBUG=false) on the probes queue, and beat's tick
(``dispatch_due_probes`` every PROBE_TICK s, called from this process). Then:

1. SIGKILL Prometheus at a random moment of the probe interval: seconds until the connection
   is Disconnected in the database (target < 50 s);
2. keep it down ``--down-minutes`` (each length given, in turn), start it again on the same
   port: seconds until Connected, from the restart and from the moment Prometheus answers
   ready (targets: < 35 s after an outage of up to 10 minutes, < 2 minutes after any);
3. a second connection, to a loopback proxy in front of Prometheus that fails ``/-/ready``
   (the start of each probe) one probe in three, or two in a row then one succeeds, for
   ``--flaky-minutes`` (split between the patterns with ``both``): the state changes of both
   connections (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _harness import Ticker, Worker, batch_summary, uptime
from _setup import django_on_postgres

DB_NAME = os.environ.get("BENCH_DB", "bench_state_latency")
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Prometheus:
    """Debian's prometheus on 127.0.0.1:<port>, restartable on the same port and storage."""

    def __init__(self) -> None:
        binary = shutil.which("prometheus")
        if not binary:
            raise SystemExit("prometheus is not installed (Debian package prometheus)")
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-prometheus-"))
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(
            "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: self\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{self.port}']\n"
        )
        self.process: subprocess.Popen | None = None

    def spawn(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "prometheus.log", "ab"),  # noqa: SIM115
        )

    def ready(self) -> bool:
        import httpx

        if self.process is not None and self.process.poll() is not None:
            log = (self.workdir / "prometheus.log").read_text()[-2000:]
            raise RuntimeError(f"Prometheus exited: {log}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


class FlakyProxy:
    """A loopback HTTP proxy in front of ``upstream``: each ``GET /-/ready`` (the first request
    of a Prometheus probe) is a new probe, failed or passed by ``pattern``; every other request
    is passed through."""

    def __init__(self, upstream: str, fail_how: str = "503") -> None:
        self.upstream, self.fail_how = upstream, fail_how
        self.pattern = "pass"
        self.probes = 0
        self.failed = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="flaky-proxy", daemon=True)

    def start(self) -> FlakyProxy:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the proxy did not start")
        return self

    def set_pattern(self, pattern: str) -> None:
        self.pattern, self.probes, self.failed = pattern, 0, 0

    def _fails(self, number: int) -> bool:
        if self.pattern == "one-in-three":
            return number % 3 == 0
        if self.pattern == "two-in-a-row":
            return number % 3 != 0  # fail, fail, pass, fail, fail, pass, ...
        return False

    def _run(self) -> None:
        from aiohttp import ClientSession, ClientTimeout, web

        async def handle(request: web.Request) -> web.StreamResponse:
            if request.path == "/-/ready":
                self.probes += 1
                if self._fails(self.probes):
                    self.failed += 1
                    if self.fail_how == "reset":
                        request.transport.close()
                        raise web.HTTPServiceUnavailable()
                    if self.fail_how == "hang":
                        await asyncio.sleep(60)
                    return web.Response(status=503, text="Service Unavailable (flaky)")
            async with (
                ClientSession(timeout=ClientTimeout(total=10)) as session,
                session.get(self.upstream + request.path_qs) as upstream,
            ):
                body = await upstream.read()
                return web.Response(
                    status=upstream.status,
                    body=body,
                    headers={"Content-Type": upstream.headers.get("Content-Type", "")},
                )

        async def main() -> None:
            app = web.Application()
            app.router.add_route("GET", "/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down-minutes", type=float, nargs="+", default=[2])
    parser.add_argument("--flaky-minutes", type=float, default=10)
    parser.add_argument(
        "--flaky-pattern", choices=("both", "one-in-three", "two-in-a-row"), default="both"
    )
    parser.add_argument("--fail-how", choices=("503", "reset", "hang"), default="503")
    parser.add_argument("--trials", type=int, default=1, help="outage/recovery cycles")
    parser.add_argument("--skip-flaky", action="store_true")
    parser.add_argument("--worker-concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups
    rng = random.Random(args.seed)

    django_on_postgres(DB_NAME, CELERY_BROKER_URL=BROKER, DEBUG="false")
    import redis
    from django.conf import settings
    from django.utils import timezone

    from connections.models import Connection, ConnectionTransition, ProbeResult

    redis_client = redis.Redis.from_url(BROKER)
    redis_client.flushdb()
    prometheus = Prometheus()
    prometheus.spawn()
    atexit.register(prometheus.close)
    deadline = time.monotonic() + 60
    while not prometheus.ready():
        if time.monotonic() > deadline:
            raise RuntimeError("Prometheus did not become ready")
        time.sleep(0.2)

    def new_connection(name: str, url: str) -> Connection:
        connection = Connection(
            name=name, kind="prometheus", url=url, identity=f"prometheus|{url}", status="connected"
        )
        Connection.objects.bulk_create([connection])  # as if connected earlier; defaults kept
        return Connection.objects.get(name=name)

    direct = new_connection("prometheus-direct", prometheus.url)
    worker = Worker(queues="probes", concurrency=args.worker_concurrency).start()
    atexit.register(worker.stop)
    tick = settings.PROBE_TICK
    ticker = Ticker(tick)
    ticker.start()
    print(
        f"Prometheus {prometheus.url} (pid {prometheus.process.pid}); connection interval "
        f"{direct.probe_interval}s, retry {direct.retry_interval}s, threshold "
        f"{direct.failure_threshold}; PROBE_TICK {tick:g}s, PROBE_APPLY_EVERY "
        f"{settings.PROBE_APPLY_EVERY:g}s, PROBE_BACKOFF_AFTER {settings.PROBE_BACKOFF_AFTER}s; "
        f"worker prefork x{args.worker_concurrency}; {uptime()}",
        flush=True,
    )

    def status(pk: int) -> str:
        return Connection.objects.values_list("status", flat=True).get(pk=pk)

    def wait_for(condition, limit: float, poll: float = 0.1) -> float | None:
        """Tick as beat does while waiting; seconds until ``condition()`` held (None: never)."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if ticker.due():
                ticker.fire()
            if condition():
                return time.monotonic() - started
            time.sleep(poll)
        return None

    def probes_of(pk: int, since) -> list[tuple]:
        return list(
            ProbeResult.objects.filter(connection_id=pk, checked_at__gte=since)
            .order_by("checked_at")
            .values_list("checked_at", "ok", "error_class")
        )

    results: dict[str, list] = {"down": [], "up": [], "up_ready": []}
    flaky_figures: list[str] = []
    proxy = None
    try:
        # steady state: two successful probes of the running Prometheus
        started_at = timezone.now()
        if wait_for(lambda: ProbeResult.objects.filter(ok=True).count() >= 2, 120) is None:
            raise RuntimeError("no successful probes of the running Prometheus")
        print(f"steady: {len(probes_of(direct.pk, started_at))} probes ok", flush=True)

        lengths = [m for m in args.down_minutes for _ in range(args.trials)]
        for trial, down_minutes in enumerate(lengths, 1):
            # (1) SIGKILL at a random moment of the interval
            wait_for(lambda: False, rng.uniform(0, direct.probe_interval))
            last = Connection.objects.get(pk=direct.pk).last_probe_at
            killed_at = timezone.now()
            prometheus.kill()
            killed = time.monotonic()
            phase = (killed_at - last).total_seconds() if last else float("nan")
            down = wait_for(lambda: status(direct.pk) == "disconnected", 300)
            failures = probes_of(direct.pk, killed_at)
            detail = ", ".join(
                f"+{(at - killed_at).total_seconds():.1f}s {'ok' if ok else error}"
                for at, ok, error in failures
            )
            results["down"].append(down)
            print(
                f"trial {trial} (1): killed {phase:.1f}s after the last probe started; "
                f"Disconnected after {down if down is None else round(down, 2)}s "
                f"(target < 50 s); probes since the kill: {detail}",
                flush=True,
            )

            # (2) down for --down-minutes from the kill, restart on the same port
            wait_for(lambda: False, max(0.0, down_minutes * 60 - (time.monotonic() - killed)))
            state_before = status(direct.pk)
            restarted_at = timezone.now()
            prometheus.spawn()
            restarted = time.monotonic()
            ready_after: list[float] = []

            def connected(ready_after=ready_after, restarted=restarted) -> bool:
                if not ready_after and prometheus.ready():
                    ready_after.append(time.monotonic() - restarted)
                return status(direct.pk) == "connected"

            up = wait_for(connected, 600)
            while not ready_after and not prometheus.ready():
                time.sleep(0.1)
            ready = ready_after[0] if ready_after else time.monotonic() - restarted
            detail = ", ".join(
                f"+{(at - restarted_at).total_seconds():.1f}s {'ok' if ok else error}"
                for at, ok, error in probes_of(direct.pk, restarted_at)
            )
            results["up"].append(up)
            results["up_ready"].append(None if up is None else up - ready)
            results.setdefault("lengths", []).append(down_minutes)
            print(
                f"trial {trial} (2): state while down {state_before}; restarted, ready after "
                f"{ready:.2f}s; Connected {up if up is None else round(up, 2)}s after the restart"
                f" ({'n/a' if up is None else round(up - ready, 2)}s after ready; down "
                f"{down_minutes:g} min, target < {35 if down_minutes <= 10 else 120} s);"
                f" probes since the restart: {detail}",
                flush=True,
            )

        # (3) flaky
        if not args.skip_flaky:
            proxy = FlakyProxy(prometheus.url, args.fail_how).start()
            flaky = new_connection("prometheus-flaky", proxy.url)
            patterns = (
                ["one-in-three", "two-in-a-row"]
                if args.flaky_pattern == "both"
                else [args.flaky_pattern]
            )
            each = args.flaky_minutes * 60 / len(patterns)
            for pattern in patterns:
                since = timezone.now()
                proxy.set_pattern(pattern)
                wait_for(lambda: False, each)
                changes = ConnectionTransition.objects.filter(created_at__gte=since)
                flaky_changes = changes.filter(connection_id=flaky.pk).count()
                direct_changes = changes.filter(connection_id=direct.pk).count()
                outcomes = probes_of(flaky.pk, since)
                longest = run = 0
                for _, ok, _ in outcomes:
                    run = 0 if ok else run + 1
                    longest = max(longest, run)
                line = (
                    f"(3) flaky {pattern} ({args.fail_how}) for {each / 60:.1f} min: "
                    f"{proxy.probes} probes seen by the proxy, {proxy.failed} failed; "
                    f"{len(outcomes)} results, {sum(not ok for _, ok, _ in outcomes)} failed, "
                    f"longest failure run {longest}; state changes: flaky {flaky_changes}, "
                    f"direct {direct_changes} (target 0); flaky now "
                    f"{status(flaky.pk)}"
                )
                flaky_figures.append(line)
                print(line, flush=True)
    finally:
        worker_log = worker.log()
        worker.stop()
        prometheus.close()
        redis_client.flushdb()

    def figure(values: list) -> str:
        shown = ["never" if v is None else f"{v:.2f}s" for v in values]
        return ", ".join(shown) or "-"

    summary = batch_summary(worker_log)
    print("\n==== state latency (interval 30 s, retry 5 s, threshold 3; real Prometheus)")
    print(f"(1) SIGKILL -> Disconnected: {figure(results['down'])} (target < 50 s)")
    print(
        f"PROBE_BACKOFF_AFTER {settings.PROBE_BACKOFF_AFTER}s, PROBE_BACKOFF_MAX "
        f"{settings.PROBE_BACKOFF_MAX}s"
    )
    for minutes, up, up_ready in zip(
        results.get("lengths", []), results["up"], results["up_ready"], strict=True
    ):
        target = 35 if minutes <= 10 else 120
        verdict = "met" if up_ready is not None and up_ready < target else "MISSED"
        print(
            f"(2) restart after {minutes:g} min down -> Connected: {figure([up])} from the "
            f"restart; {figure([up_ready])} from ready (target < {target} s): {verdict}"
        )
    for line in flaky_figures:
        print(line)
    lates = [late for late, _, _ in ticker.calls]
    print(
        f"beat ticks {len(ticker.calls)} (latest {max(lates, default=0) * 1000:.0f} ms late); "
        f"worker: {summary['batches']} batches, {summary['stale']} stale, "
        f"{summary['errors']} errors"
    )
    print(uptime())


if __name__ == "__main__":
    main()
