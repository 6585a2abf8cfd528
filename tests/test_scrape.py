"""The data of connected connections: a real Prometheus scraping a local target; Grafana's API."""

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.utils import timezone

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection, MetricSample
from connections.probing.probes import check_reachability
from connections.probing.scrape import scrape_connected
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.helpers import FakeGrafana
from tests.services import Prometheus, wait_until

pytestmark = pytest.mark.django_db


class MetricsTarget(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"# TYPE demo_requests counter\ndemo_requests_total 42\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def target():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MetricsTarget)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def scraping_prometheus(target):
    server = Prometheus(scrape_targets=[f"127.0.0.1:{target.server_address[1]}"]).start()
    yield server
    server.close()


def up_results(scraping_prometheus):
    answer = httpx.get(
        f"{scraping_prometheus.url}/api/v1/query", params={"query": "up"}, timeout=5
    ).json()
    return answer["data"]["result"]


def latest(connection):
    values = {}
    for sample in connection.samples.order_by("scraped_at"):
        values[sample.name] = sample.value
    return values


def test_a_connected_prometheus_is_scraped(scraping_prometheus, target, make_connection, owner):
    conn = make_connection(Status.CONNECTED, kind="prometheus", url=scraping_prometheus.url)
    wait_until(
        lambda: up_results(scraping_prometheus), 30, message="Prometheus to scrape its target"
    )
    stats = scrape_connected()
    assert (stats["scraped"], stats["failed"]) == (1, 0)
    values = latest(conn)
    assert values["targets_up"] == 1 and values["targets_down"] == 0
    assert values["active_targets"] == 1 and values["series"] > 0
    conn.refresh_from_db()
    assert conn.metadata["version"].startswith("2.")

    # the target goes away: Prometheus sees it down, and so do we
    target.shutdown()
    target.server_close()
    wait_until(
        lambda: any(r["value"][1] == "0" for r in up_results(scraping_prometheus)),
        30,
        message="up == 0",
    )
    scrape_connected()
    assert latest(conn)["targets_down"] == 1

    # ignored: the scrape stops, the data stays
    lifecycle.transition(conn, Status.IGNORED, trigger=Trigger.USER, user=owner)
    kept = conn.samples.count()
    assert scrape_connected()["scraped"] == 0
    assert conn.samples.count() == kept > 0

    # deleted: the data goes
    lifecycle.transition(conn, Status.DELETED, trigger=Trigger.USER, user=owner)
    assert not MetricSample.objects.filter(connection=conn).exists()


class FakeGrafanaWithContent(FakeGrafana):
    def do_GET(self):  # noqa: N802
        if self.path.startswith("/api/search"):
            self.answer(200, [{"uid": "a", "type": "dash-db"}, {"uid": "b", "type": "dash-db"}])
        elif self.path == "/api/datasources":
            self.answer(200, [{"id": 1, "type": "prometheus"}])
        else:
            super().do_GET()


def test_a_connected_grafana_is_scraped_with_its_credential(make_connection, owner):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafanaWithContent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        credential = Credential(name="g", kind="api_key", owner=owner, endpoints=[origin_of(url)])
        credential.set_secret({"key": FakeGrafana.API_KEY})
        credential.save()
        conn = make_connection(
            Status.CONNECTED,
            kind="grafana",
            url=f"http://127.0.0.1:{server.server_address[1]}",
            credential=credential,
        )
        scrape_connected()
    finally:
        server.shutdown()
        server.server_close()
    assert latest(conn) == {"dashboards": 2, "datasources": 1}
    conn.refresh_from_db()
    assert conn.metadata["version"] == "11.2.0"


def test_a_failed_scrape_is_counted_not_raised(make_connection, dead_url):
    make_connection(Status.CONNECTED, kind="prometheus", url=dead_url)
    assert scrape_connected() == {"scraped": 0, "failed": 1, "samples": 0, "pruned": 0}


def test_old_samples_are_pruned_but_an_ignored_connections_are_kept(make_connection, settings):
    settings.SCRAPE_RETENTION = 3600
    conn = make_connection(Status.DISCONNECTED, kind="prometheus")
    ignored = make_connection(Status.IGNORED, kind="prometheus")
    old = timezone.now() - timedelta(hours=2)
    for connection in (conn, ignored):
        MetricSample.objects.create(connection=connection, name="series", value=1, scraped_at=old)
        MetricSample.objects.create(connection=connection, name="series", value=2)
    assert scrape_connected()["pruned"] == 1
    assert list(conn.samples.values_list("value", flat=True)) == [2.0]
    # the lifecycle spec: an ignored connection's data is kept until it is deleted
    assert sorted(ignored.samples.values_list("value", flat=True)) == [1.0, 2.0]


def test_samples_are_shown_on_the_connection_page(client, make_connection, owner):
    conn = make_connection(Status.CONNECTED, kind="prometheus")
    now = timezone.now()
    for minutes, value in ((10, 3), (5, 4), (0, 5)):
        MetricSample.objects.create(
            connection=conn,
            name="targets_up",
            value=value,
            scraped_at=now - timedelta(minutes=minutes),
        )
    client.force_login(owner)
    body = client.get(f"/connections/{conn.pk}/").content.decode()
    assert "<svg" in body
    assert "<td>targets_up</td><td>5</td>" in body  # the current value


def test_odd_numbers_from_an_api_are_not_samples():
    from connections.probing.scrape import number

    assert [number(v) for v in ("5", 3, "NaN", 1e400, "abc", None, [1], True)] == [
        5.0,
        3.0,
        None,
        None,
        None,
        None,
        None,
        None,
    ]


def test_an_answer_split_over_two_writes_is_read_whole(json_echo, make_connection):
    json_echo.answer = lambda path, headers: (
        {"status": "success", "data": {"version": "2.53.0", "revision": "r" * 100}}
        if "buildinfo" in path
        else {"data": {"activeTargets": [{"labels": {"job": "j" * 50}}] * 2000, "result": []}}
    )
    conn = make_connection("connected", kind="prometheus", url=json_echo.url)
    outcome = check_reachability(Connection.objects.get(pk=conn.pk))
    assert outcome.ok and outcome.metadata["version"] == "2.53.0", outcome
    assert scrape_connected()["failed"] == 0  # a 140 KB targets list, in two writes
