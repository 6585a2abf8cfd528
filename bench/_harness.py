"""What the probe benchmarks share: a loopback fleet in processes of its own, a real Celery
worker, beat's tick done from the bench process, CPU accounting and the machine's load.

The fleet answers ``GET /hang/...`` by accepting and never answering (the connection stays open
until the client gives up) and everything else with ``200 ok`` and ``Connection: close``. It is
an ``asyncio.Protocol`` on uvloop (no stream objects, no HTTP parsing beyond the request line),
listening on ``hosts`` distinct loopback (address, port) pairs so that each endpoint is its own
"host" for a client's per-host limits, in ``processes`` processes sharing every listening port
through SO_REUSEPORT: the kernel spreads accepted connections over them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _setup import ROOT

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

LOOP_NAME = "uvloop" if uvloop is not None else "asyncio (uvloop not installed)"


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_loop(coroutine):
    """A coroutine on a fresh event loop: uvloop where installed (as the probes run)."""
    if uvloop is None:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# ---- the fleet ---------------------------------------------------------------------------

_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)


class _Endpoint(asyncio.Protocol):
    __slots__ = ("transport", "buffer")

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        if self.buffer is None:
            return  # a hung request: read and ignore whatever else comes
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > 65536:
                self.transport.close()
            return
        line = self.buffer.split(b"\r\n", 1)[0]
        if b" /hang/" in line:
            self.buffer = None  # accepted, never answered: the client closes it
            return
        self.transport.write(_OK)
        self.transport.close()

    def connection_lost(self, exc) -> None:
        self.transport = None


async def _serve(addresses: list[tuple[str, int]], report, ready) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    bound = []
    for host, port in addresses:
        server = await loop.create_server(
            _Endpoint, host, port, backlog=4096, reuse_port=True, reuse_address=True
        )
        servers.append(server)
        bound.append(server.sockets[0].getsockname()[:2])
    if report is not None:
        report.put(bound)
    ready.set()
    await asyncio.Event().wait()


def _fleet_main(addresses, report, ready) -> None:
    raise_nofile()
    run_loop(_serve(addresses, report, ready))


@dataclass
class Fleet:
    processes: list = field(default_factory=list)
    endpoints: list[tuple[str, int]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(10)


def start_fleet(hosts: int, processes: int, addresses: int = 8) -> Fleet:
    """``hosts`` listening (address, port) pairs over 127.0.0.1..127.0.0.<addresses>, served
    by ``processes`` processes (SO_REUSEPORT)."""
    context = multiprocessing.get_context("spawn")
    wanted = [(f"127.0.0.{1 + i % addresses}", 0) for i in range(hosts)]
    report = context.Queue()
    ready = context.Event()
    first = context.Process(target=_fleet_main, args=(wanted, report, ready), daemon=True)
    first.start()
    endpoints = [tuple(e) for e in report.get(timeout=60)]
    if not ready.wait(60):
        raise RuntimeError("the fleet did not start")
    fleet = Fleet([first], endpoints)
    for _ in range(processes - 1):
        ready = context.Event()
        process = context.Process(target=_fleet_main, args=(endpoints, None, ready), daemon=True)
        process.start()
        if not ready.wait(60):
            raise RuntimeError("a fleet process did not start")
        fleet.processes.append(process)
    return fleet


# ---- CPU and load ------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return load()


def _cpu(pid: int, tree: bool) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)] if tree else [root]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class CpuMeter:
    """CPU seconds of named processes (with their descendants, for ``trees``) and of the whole
    machine between two snapshots. A process that exits in between is not counted."""

    def __init__(self, trees: dict[str, list[int]], single: dict[str, list[int]]) -> None:
        self.trees, self.single = trees, single

    def snapshot(self) -> dict[str, float]:
        import psutil

        machine = psutil.cpu_times()
        snap = {"wall": time.monotonic()}
        snap["machine"] = sum(
            getattr(machine, name, 0.0)
            for name in ("user", "system", "nice", "irq", "softirq", "steal")
        )
        for name, pids in self.trees.items():
            snap[name] = sum(_cpu(pid, True) for pid in pids)
        for name, pids in self.single.items():
            snap[name] = sum(_cpu(pid, False) for pid in pids)
        return snap

    @staticmethod
    def describe(before: dict[str, float], after: dict[str, float]) -> str:
        wall = after["wall"] - before["wall"]
        parts = []
        for name in before:
            if name == "wall":
                continue
            used = after[name] - before[name]
            parts.append(f"{name} {used / wall:4.0%}")
        return "CPU (100% = one core): " + ", ".join(parts) + f" over {wall:.1f}s"


# ---- the worker ----------------------------------------------------------------------------


class Worker:
    """A real Celery worker in its own process group, logging at INFO into a file."""

    def __init__(
        self, queues: str = "probes", pool: str = "prefork", concurrency: int = 2, **env: str
    ):
        self.queues, self.pool, self.concurrency = queues, pool, concurrency
        self.env = {
            **os.environ,
            "LOG_LEVEL": "INFO",
            "DEBUG": "false",
            "LIVE_RELEASE": "bench",
            **env,
        }
        # DEBUG=false as in production; its HTTPS redirects do not touch a worker
        self.log_path = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        command = [sys.executable, "-m", "celery", "-A", "meshplay", "worker", "-Q", self.queues]
        command += ["--pool", self.pool, "--concurrency", str(self.concurrency)]
        command += ["--loglevel", "INFO", "-n", f"bench{os.getpid()}-{time.time_ns()}@%h"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while b" ready." not in self.log_path.read_bytes():
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        import signal

        if self.process and self.process.poll() is None:
            # warm shutdown: the main process lets the running batches end (a SIGTERM to the
            # whole group would kill them and log WorkerLostError)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


_BATCH_LINE = re.compile(
    r"probe batch size=(\d+) ok=(\d+) failed=(\d+) transitions=(\d+) stale=(\d+) skipped=(\d+)"
)
_SUCCEEDED = re.compile(r"Task connections\.tasks\.probe_batch\[[^\]]+\] succeeded in ([\d.]+)s")


def batch_summary(log_text: str) -> dict[str, float]:
    """What the worker's log says of the probe batches it ran (a slice of its log)."""
    lines = _BATCH_LINE.findall(log_text)
    seconds = [float(s) for s in _SUCCEEDED.findall(log_text)]
    summary = {
        "batches": len(lines),
        "rows": sum(int(line[0]) for line in lines),
        "stale": sum(int(line[4]) for line in lines),
        "skipped": sum(int(line[5]) for line in lines),
        "empty": sum(1 for line in lines if int(line[5]) == int(line[0])),
        "longest": max(seconds, default=0.0),
        "errors": log_text.count("ERROR") + log_text.count("Traceback"),
    }
    return summary


# ---- beat's tick ---------------------------------------------------------------------------


class Ticker:
    """Beat's schedule, done from the bench process: ``dispatch_due_probes`` every PROBE_TICK
    seconds on a fixed schedule from ``start``, called here (``local``) or sent to a worker on
    the ``celery`` queue as beat sends it (``worker``)."""

    def __init__(self, tick: float, mode: str = "local") -> None:
        self.tick, self.mode = tick, mode
        self.next_at = time.monotonic()
        self.calls: list[tuple[float, float, int]] = []  # (late by, seconds, rows dispatched)

    def start(self, at: float | None = None) -> None:
        self.next_at = at if at is not None else time.monotonic()

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def fire(self) -> int:
        from connections.tasks import dispatch_due_probes

        late = time.monotonic() - self.next_at
        started = time.perf_counter()
        if self.mode == "worker":
            dispatch_due_probes.apply_async(queue="celery")
            sent = -1
        else:
            sent = dispatch_due_probes()
        self.calls.append((late, time.perf_counter() - started, sent))
        self.next_at += self.tick
        while self.next_at < time.monotonic():  # a tick that took longer than a tick: skip
            self.next_at += self.tick
        return sent

    def run_for(self, seconds: float, between=None) -> None:
        """Tick until ``seconds`` have passed, calling ``between()`` in the gaps."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.due():
                self.fire()
            if between is not None:
                between()
            time.sleep(max(0.0, min(0.05, self.next_at - time.monotonic())))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median_get(client, path: str, repeat: int, params=None, **headers) -> tuple[float, int]:
    """A page through the Django test client: one warm-up GET, then the median of ``repeat``
    GETs in ms, and the number of queries the last one made."""
    import statistics

    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    assert client.get(path, params, **headers).status_code == 200  # warm up
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(db) as queries:
            started = time.perf_counter()
            response = client.get(path, params, **headers)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return statistics.median(times) * 1000, len(queries.captured_queries)
