"""Running for real: Prometheus scrapes /metrics; two workers share the probes queue."""

import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection as db

from connections.models import ProbeResult
from connections.tasks import dispatch_due_probes
from tests.services import CeleryWorker, LoopbackHTTPServer, Prometheus, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_real_prometheus_scrapes_the_metrics(live_server, make_connection, settings):
    settings.METRICS_TOKEN = "scrape-token-" + "0123456789abcdef"
    make_connection("connected", kind="prometheus", name="p1")
    make_connection("disconnected", kind="http", name="h1")
    target = urlsplit(live_server.url).netloc.replace("localhost", "127.0.0.1")
    assert httpx.get(f"http://{target}/metrics", timeout=5).status_code == 401
    prometheus = Prometheus(scrape_targets=[target], bearer_token=settings.METRICS_TOKEN).start()
    try:

        def series():
            answer = httpx.get(
                f"{prometheus.url}/api/v1/query",
                params={"query": "meshplay_connections"},
                timeout=5,
            ).json()
            return answer["data"]["result"]

        found = wait_until(series, 60, message="Prometheus to scrape /metrics")
        values = {(r["metric"]["state"], r["metric"]["kind"]): float(r["value"][1]) for r in found}
        assert values == {("connected", "prometheus"): 1.0, ("disconnected", "http"): 1.0}
        up = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": "up"}, timeout=5)
        assert up.json()["data"]["result"][0]["value"][1] == "1"
    finally:
        prometheus.close()


class CountingEndpoint(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        with self.server.lock:
            self.server.seen[self.path] += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_two_workers_probe_every_due_connection_once(make_connection, settings):
    # 300 probes connect within a moment: at Python's backlog of 5 a loaded machine dropped
    # some, a probe timed out, and its retry was rightly due again (CI failed so once)
    server = LoopbackHTTPServer(("127.0.0.1", 0), CountingEndpoint)
    server.seen, server.lock = Counter(), threading.Lock()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    conns = [
        make_connection("connected", url=f"{base}/c/{i}", probe_interval=3600) for i in range(300)
    ]
    broker = django_settings.CELERY_BROKER_URL
    redis.Redis.from_url(broker).flushdb()
    workers = [
        CeleryWorker(db.settings_dict["NAME"], broker).start(queues="probes", beat=False)
        for _ in range(2)
    ]
    try:
        settings.PROBE_BATCH_SIZE = 15  # 20 batches for two workers to share
        # beat's ticks: each claims at most what fits beside the batches still queued
        dispatched = [0]

        def tick() -> bool:
            dispatched[0] += dispatch_due_probes()
            return dispatched[0] >= 300

        wait_until(tick, 60, 0.2, message="every connection dispatched")
        assert dispatched[0] == 300
        wait_until(
            lambda: ProbeResult.objects.count() >= 300,
            60,
            message=lambda: workers[0].log()[-2000:] + workers[1].log()[-2000:],
        )
        # a failed probe is rightly retried within the tick: say so, not "13 != 0"
        failed = list(ProbeResult.objects.filter(ok=False).values_list("error", flat=True)[:5])
        assert not failed, f"probes failed, so their retries are due: {failed}"
        # a second dispatch finds nothing due: nothing is probed twice in a round
        assert dispatch_due_probes() == 0
    finally:
        for worker in workers:
            worker.stop()
        server.shutdown()
        server.server_close()
    assert ProbeResult.objects.count() == 300
    assert set(server.seen.values()) == {1} and len(server.seen) == 300
    per_connection = Counter(ProbeResult.objects.values_list("connection_id", flat=True))
    assert set(per_connection.values()) == {1} and len(per_connection) == len(conns)
    batches = [len(re.findall(r"probe batch size=", w.log())) for w in workers]
    assert all(n > 0 for n in batches), f"both workers took batches: {batches}"
    redis.Redis.from_url(broker).flushdb()


def test_the_procfile_names_web_worker_discovery_and_beat():
    from pathlib import Path

    procfile = (Path(__file__).resolve().parent.parent / "Procfile").read_text()
    processes = dict(line.split(":", 1) for line in procfile.splitlines() if line.strip())
    assert set(processes) == {"web", "worker", "discovery", "beat"}
    assert "gunicorn meshplay.wsgi" in processes["web"]
    # probes never wait behind a discovery pass: each queue has its own worker
    assert "-Q celery,probes " in processes["worker"]
    assert "-Q discovery " in processes["discovery"]
    assert "DatabaseScheduler" in processes["beat"]
    import subprocess
    import sys

    checked = subprocess.run(
        [sys.executable, "-m", "honcho", "check"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "web, worker, discovery, beat" in checked.stderr + checked.stdout


@pytest.mark.django_db(transaction=False)
def test_gunicorn_serves_with_production_settings(tmp_path):
    import os
    import subprocess
    import sys

    from cryptography.fernet import Fernet

    from tests.services import free_port

    root = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("CI",)}
    env.update(
        DJANGO_SETTINGS_MODULE="meshplay.settings",
        DEBUG="false",
        LIVE_RELEASE="production-test",
        SECRET_KEY="s" + Fernet.generate_key().decode() * 2,
        CREDENTIAL_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [python, "manage.py", "collectstatic", "--noinput"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    web = subprocess.Popen(
        [
            python,
            "-m",
            "gunicorn",
            "meshplay.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def answer(path, timeout=10, **kwargs):
            try:
                return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=timeout, **kwargs)
            except httpx.HTTPError:
                return None

        # polled with a short timeout while gunicorn starts; then a loaded machine gets 10 s
        assert wait_until(lambda: answer("/healthz", timeout=2), 30).json() == {"status": "ok"}
        # everything else is HTTPS-only in production; behind the proxy the page is served
        assert answer("/accounts/login/").status_code == 301
        login = answer("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
        assert login.status_code == 200 and "Sign in" in login.text
        css = re.search(r'href="(/static/css/app\.[0-9a-f]+\.css)"', login.text)
        assert css, "static files are collected and fingerprinted"
        assert answer(css.group(1), headers={"X-Forwarded-Proto": "https"}).status_code == 200
    finally:
        web.terminate()
        web.wait(20)


def test_each_transition_logs_one_line_without_secrets(caplog, make_connection, owner):
    from connections import lifecycle
    from credentials.models import Credential

    credential = Credential(name="c", kind="bearer_token", owner=owner)
    credential.set_secret({"token": "LOG-SECRET-123"})
    credential.save()
    conn = make_connection("connected", credential=credential)
    with caplog.at_level("INFO", logger="connections.lifecycle"):
        lifecycle.transition(conn, "maintenance", trigger="user", user=owner, reason="r")
    lines = [r.getMessage() for r in caplog.records if r.name == "connections.lifecycle"]
    expected = f"connection={conn.pk} from=connected to=maintenance trigger=user user={owner.pk}"
    assert lines == [f"transition {expected}"]
    assert "LOG-SECRET-123" not in caplog.text


@pytest.mark.redis
@pytest.mark.django_db(transaction=False)
def test_honcho_starts_web_worker_and_beat(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.services import free_port

    root = Path(__file__).resolve().parent.parent
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="meshplay.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=django_settings.CELERY_BROKER_URL,
        PORT=str(port),
        HOST="127.0.0.1",
        WEB_CONCURRENCY="1",
        WORKER_CONCURRENCY="1",
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "honcho.log"
    stack = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start"],
        cwd=root,
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115  (the child keeps writing to it)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def healthy():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, message=lambda: log.read_text(errors="replace")[-3000:])
        wait_until(lambda: "ready." in log.read_text(errors="replace"), 60, message="worker")
        wait_until(lambda: "beat: Starting" in log.read_text(errors="replace"), 60, message="beat")
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        stack.wait(30)
