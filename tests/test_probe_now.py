"""Probe now: a connection probed at once from its page or the API, by the scheduled probe's
own rules, and bounded (per connection, per user), against a real local endpoint."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from connections.choices import Status
from connections.models import Connection, ProbeResult
from environments.models import Environment, EnvironmentMembership
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counts():
    cache.clear()  # the per-user counts of this minute
    yield
    cache.clear()


def probe(client, connection):
    return client.post(reverse("connections:probe", args=[connection.pk]), follow=True)


def test_probe_now_records_a_result_and_says_so(owner, make_connection, http_endpoint):
    conn = make_connection(Status.CONNECTED, name="api", url=http_endpoint.url)
    page = client_for(owner).get(reverse("connections:detail", args=[conn.pk])).content.decode()
    assert 'id="probe-now"' in page
    response = probe(client_for(owner), conn)
    html = response.content.decode()
    assert "&#x27;api&#x27; answered in " in html and " ms: Connected." in html
    assert ProbeResult.objects.filter(connection=conn, ok=True).count() == 1
    assert len(http_endpoint.requests) == 1


def test_a_failure_below_the_threshold_changes_no_state(owner, make_connection, dead_url):
    conn = make_connection(Status.CONNECTED, name="api", url=dead_url, failure_threshold=3)
    html = probe(client_for(owner), conn).content.decode()
    assert "failed the probe: Nothing listens on 127.0.0.1:" in html
    conn.refresh_from_db()
    assert (conn.status, conn.consecutive_failures) == (Status.CONNECTED, 1)


def test_twice_in_a_row_is_refused_without_a_second_probe(owner, make_connection, http_endpoint):
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url)
    client = client_for(owner)
    probe(client, conn)
    again = client.post(reverse("connections:probe", args=[conn.pk]))
    assert again.status_code == 302  # back to the page, with the warning
    follow = client.get(again["Location"]).content.decode()
    assert "was probed moments ago" in follow
    assert ProbeResult.objects.filter(connection=conn).count() == 1


def test_one_user_asks_at_most_so_many_a_minute(owner, make_connection, http_endpoint, settings):
    settings.PROBE_NOW_PER_MINUTE, settings.PROBE_NOW_MIN_SECONDS = 2, 0
    conns = [make_connection(Status.CONNECTED, url=f"{http_endpoint.url}/{i}") for i in range(3)]
    client = APIClient()
    client.force_login(owner)
    answers = [client.post(f"/api/connections/{c.pk}/probe/").status_code for c in conns]
    assert answers == [200, 200, 429]
    assert ProbeResult.objects.count() == 2


def test_who_may_not_act_gets_no_button_and_a_refusal(owner, make_connection, http_endpoint):
    viewer = get_user_model().objects.create_user("viewer", password="pw-viewer-123")
    env = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=env, user=viewer, role="viewer")
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url)
    env.connections.add(conn)
    page = client_for(viewer).get(reverse("connections:detail", args=[conn.pk])).content.decode()
    assert 'id="probe-now"' not in page
    refused = probe(client_for(viewer), conn).content.decode()
    assert "but not probe it now" in refused  # the page's message (403 to htmx)
    stranger = get_user_model().objects.create_user("someone", password="pw-someone-123")
    assert (
        client_for(stranger).post(reverse("connections:probe", args=[conn.pk])).status_code == 404
    )
    assert http_endpoint.requests == []


def test_a_connection_that_is_not_probed_is_not_probed_now(owner, make_connection, http_endpoint):
    conn = make_connection(Status.IGNORED, url=http_endpoint.url)
    page = client_for(owner).get(reverse("connections:detail", args=[conn.pk])).content.decode()
    assert 'id="probe-now"' not in page
    api = APIClient()
    api.force_login(owner)
    refused = api.post(f"/api/connections/{conn.pk}/probe/")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_probed"
    assert http_endpoint.requests == []


def test_the_api_answers_what_the_probe_found(owner, make_connection, http_endpoint):
    http_endpoint.status = 503
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url, failure_threshold=1)
    api = APIClient()
    api.force_login(owner)
    body = api.post(f"/api/connections/{conn.pk}/probe/").json()
    assert body["ok"] is False and body["error_class"] == "http"
    assert body["reason"].endswith(
        "answered 503 Service Unavailable: the service runs but is failing."
    )
    assert body["status"] == "disconnected"  # a threshold of one: the usual rule
    assert Connection.objects.get(pk=conn.pk).status == Status.DISCONNECTED


def test_one_running_probe_per_user_and_a_few_for_the_whole_web(
    owner, make_connection, http_endpoint, settings
):
    """The probe runs in the web request: a user has one running at a time, and the web runs
    at most PROBE_NOW_CONCURRENCY at once (slow endpoints never take every web worker)."""
    settings.PROBE_NOW_MIN_SECONDS, settings.PROBE_NOW_CONCURRENCY = 0, 1
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url)
    api = APIClient()
    api.force_login(owner)
    cache.add(f"probe-now:running:{owner.pk}", 1, timeout=30)  # as while one runs
    busy = api.post(f"/api/connections/{conn.pk}/probe/")
    assert busy.status_code == 429 and "still running" in busy.json()["error"]["message"]
    cache.delete(f"probe-now:running:{owner.pk}")
    cache.add("probe-now:slot:0", 1, timeout=30)  # another user's probe holds the only slot
    full = api.post(f"/api/connections/{conn.pk}/probe/")
    assert full.status_code == 429 and "Other probes" in full.json()["error"]["message"]
    cache.delete("probe-now:slot:0")
    assert api.post(f"/api/connections/{conn.pk}/probe/").status_code == 200
    # both are given back once it ends: the next one runs too
    assert api.post(f"/api/connections/{conn.pk}/probe/").status_code == 200
    assert ProbeResult.objects.filter(connection=conn).count() == 2
