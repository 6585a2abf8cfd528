"""The broker goes away and comes back, under a real worker and a real beat (the Procfile's
commands), several times, each time while a probe batch is running and a worker process waits
for work (the case that stopped workers: meshplay/broker.py): the worker survives every outage
and probing resumes within a tick of the broker's return. The broker is a Redis of the test's
own, killed and started again on its port.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
from django.db import connection as db
from django.db.models import Min
from django.utils import timezone

from connections import creating
from connections.models import Connection, ProbeResult
from connections.periodic import ensure_periodic_tasks
from tests.services import CeleryBeat, CeleryWorker, RedisServer, serving, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TICK = 5  # PROBE_TICK as deployed
OUTAGES = (20, 5, 40)  # seconds the broker is down, one after another
HOLD = 2.0  # seconds the endpoint takes to answer: a batch is running when the broker goes


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.arrived.set()
        time.sleep(HOLD)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


def test_probing_resumes_within_a_tick_after_each_broker_outage(owner, redis_server, settings):
    settings.PROBE_TICK = TICK
    ensure_periodic_tasks()
    name = db.settings_dict["NAME"]
    env = {"PROBE_TICK": str(TICK)}
    with serving(_Slow, arrived=threading.Event()) as endpoint:
        conn = creating.create_discovered_connection(
            name="api", kind="http", url=endpoint.url, identity="discovered|t/ns/api:80"
        )
        Connection.objects.filter(pk=conn.pk).update(probe_interval=5, retry_interval=5)
        worker = CeleryWorker(name, redis_server.url, **env).start(beat=False, as_deployed=True)
        beat = CeleryBeat(name, redis_server.url, **env).start()

        def logs() -> str:
            return f"worker:\n{worker.log()[-6000:]}\nbeat:\n{beat.log()[-2000:]}"

        def first_probe_since(moment):
            return ProbeResult.objects.filter(connection=conn, checked_at__gt=moment).aggregate(
                first=Min("checked_at")
            )["first"]

        resumed_after = []
        try:
            for outage in OUTAGES:
                endpoint.arrived.clear()
                assert endpoint.arrived.wait(60), f"no probe came:\n{logs()}"
                redis_server.kill()  # while that probe's batch runs
                time.sleep(outage)  # the outage itself: nothing to wait for
                redis_server.start()
                back = timezone.now()
                first = wait_until(
                    lambda m=back: first_probe_since(m), 4 * TICK + HOLD, message=logs
                )
                resumed_after.append(round((first - back).total_seconds(), 1))
                assert worker.process.poll() is None, f"the worker exited:\n{logs()}"
                assert beat.process.poll() is None, f"beat exited:\n{logs()}"
            assert "Unrecoverable error" not in worker.log(), logs()
        finally:
            worker.stop()
            beat.stop()
    print(f"probing resumed {resumed_after} s after the broker came back (tick {TICK} s)")
    assert all(seconds <= TICK + 1 for seconds in resumed_after), (resumed_after, logs())
