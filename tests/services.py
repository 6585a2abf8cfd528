"""Real services the tests start themselves: Prometheus (Debian's package) on a free port."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A test's HTTP server on loopback. Python's listen backlog of 5 drops connections when
    many probes or senders connect at once; on a loaded machine the retried SYN lands after
    the client's deadline and a test fails by timing alone. The server is never what is
    measured, so it listens with a real backlog."""

    daemon_threads = True
    request_queue_size = 1024


@contextmanager
def serving(handler: type, address: str = "127.0.0.1", **attributes):
    """A LoopbackHTTPServer with ``handler`` on its own thread, ``attributes`` set on it and
    ``url`` its base URL; shut when the block ends."""
    server = LoopbackHTTPServer((address, 0), handler)
    for name, value in attributes.items():
        setattr(server, name, value)
    server.url = f"http://{address}:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class UdpSink:
    """A UDP socket that records the datagrams it receives (``received``), on its own thread."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self.received.append(self.sock.recv(65536))
            except OSError:  # the timeout included: look at ``_stop`` again
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


_attempts: list[list] = []


def _record_connects(event: str, args: tuple) -> None:
    if _attempts and event in ("socket.connect", "socket.sendto"):
        _attempts[-1].append(args[1])


@contextmanager
def connect_attempts():
    """The addresses connected or sent to inside the block that the egress guard let through
    (this audit hook runs after the guard's: a refused connect never reaches it)."""
    from core import egress

    egress.install()
    global _hooked
    if not _hooked:
        sys.addaudithook(_record_connects)
        _hooked = True
    _attempts.append([])
    try:
        yield _attempts[-1]
    finally:
        _attempts.pop()


_hooked = False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name: str) -> str:
    """The path of a service binary; missing is a failure under CI, a skip elsewhere."""
    path = shutil.which(name)
    if path:
        return path
    message = f"'{name}' is not installed (Debian package {name}; see .ci/system-packages)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def wait_until(condition, timeout: float = 30.0, interval: float = 0.1, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    detail = message() if callable(message) else message
    raise AssertionError(f"timed out after {timeout}s waiting for {detail or condition}")


class Prometheus:
    """A real Prometheus on 127.0.0.1:<free port>, with its own config and storage."""

    def __init__(
        self,
        scrape_targets: list[str] | None = None,
        scrape_interval: str = "1s",
        bearer_token: str = "",
    ):
        self.binary = require_binary("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        targets = scrape_targets or [f"127.0.0.1:{self.port}"]
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: targets\n"
            "    static_configs:\n"
            f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
            # as production scrapes /metrics: with the METRICS_TOKEN
            + (
                f"    authorization: {{type: Bearer, credentials: {bearer_token!r}}}\n"
                if bearer_token
                else ""
            )
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> Prometheus:
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "prometheus.log", "ab"),  # noqa: SIM115
        )
        wait_until(self.ready, timeout=60, message="Prometheus to be ready")
        return self

    def ready(self) -> bool:
        if self.process and self.process.poll() is not None:
            log = (self.workdir / "prometheus.log").read_text()[-2000:]
            raise RuntimeError(f"Prometheus exited: {log}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class CeleryWorker:
    """A real Celery worker (with embedded beat) in its own process, on the test database."""

    def __init__(self, database_name: str, broker_url: str, **env: str):
        from django.conf import settings

        root = Path(__file__).resolve().parent.parent
        db = settings.DATABASES["default"]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "meshplay.settings",
            "DATABASE_URL": (
                f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:"
                f"{db['PORT'] or 5432}/{database_name}"
            ),
            "CELERY_BROKER_URL": broker_url,
            "CREDENTIAL_KEYS": ",".join(settings.CREDENTIAL_KEYS),
            "SECRET_KEY": settings.SECRET_KEY,
            "PROBE_TICK": "1",
            **env,
        }
        self.root = root
        self.log_path = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(
        self,
        *,
        queues: str = "celery,probes",
        beat: bool = True,
        as_deployed: bool = False,
        prefix: list[str] | tuple[str, ...] = (),
        name: str = "",
    ) -> CeleryWorker:
        """``as_deployed``: the Procfile's worker command as it stands (two processes), not
        the quieter one most tests use. ``prefix``: what runs the command (``ip netns exec
        …``: a worker in a network namespace of its own); ``name``: its node name."""
        import sys

        if as_deployed:
            command = procfile_command("worker", WORKER_CONCURRENCY="2")
        else:
            command = [sys.executable, "-m", "celery", "-A", "meshplay", "worker", "-Q", queues]
            command += ["--pool", "prefork", "--concurrency", "2", "--loglevel", "INFO"]
            command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        if beat:
            command += ["-B", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
        if name:
            command += ["-n", name]
        self.process = subprocess.Popen(
            [*prefix, *command],
            cwd=self.root,
            env=self.env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: b"ready." in self.log_path.read_bytes(), 60, message="worker ready")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def runs(self, task: str, state: str = "succeeded") -> int:
        """How many runs of ``task`` (its dotted name) this worker's log says were ``received``
        or have ``succeeded`` (the lines of ``--loglevel INFO``: not the Procfile's command)."""
        return len(re.findall(rf"Task {re.escape(task)}\[[^\]]*\] {state}\b", self.log()))

    def wait_for_a_new_run(self, task: str, timeout: float = 30.0) -> None:
        """Wait until a run of ``task`` received after this call has succeeded: whatever was true
        when it was called, that run has seen it."""
        received = self.runs(task, "received")
        # more successes than runs received before: at least one of them came after
        wait_until(lambda: self.runs(task) > received, timeout, 0.05, message=self.log)

    def kill(self) -> None:
        """SIGKILL the whole process group: a worker lost mid-task, no clean shutdown."""
        import signal

        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        import signal

        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def procfile_command(process: str, **env: str) -> list[str]:
    """The Procfile's command line of ``process``, its ``${VAR:-default}`` filled from ``env``
    (else the default), ``celery`` run by this interpreter."""
    import re
    import shlex
    import sys

    root = Path(__file__).resolve().parent.parent
    lines = dict(
        line.split(":", 1) for line in (root / "Procfile").read_text().splitlines() if ":" in line
    )
    text = re.sub(
        r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), lines[process]
    )
    words = shlex.split(text)
    return [sys.executable, "-m", "celery", *words[1:]] if words[0] == "celery" else words


class CeleryBeat(CeleryWorker):
    """A real beat in its own process (as the Procfile runs it), on the test database."""

    def start(self, **_: object) -> CeleryBeat:

        self.process = subprocess.Popen(
            procfile_command("beat"),
            cwd=self.root,
            env=self.env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: b"beat: Starting" in self.log_path.read_bytes(), 60, message="beat")
        return self


class RedisServer:
    """A Redis of a test's own on a free port (never the machine's): stopped and started again
    on the same port to play an outage."""

    def __init__(self) -> None:
        self.binary = require_binary("redis-server")
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="redis-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def answers() -> bool:
            try:
                return redis.Redis(port=self.port, socket_timeout=1).ping()
            except redis.RedisError:
                return False

        wait_until(answers, 20, interval=0.05, message="redis to answer")
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
