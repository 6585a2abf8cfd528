"""What an attacker's review of the trust boundaries found, each pinned: a host two clients read
differently, echoed secrets in odd shapes, a CA an editor could swap, values a database refuses,
answers split over several writes, and names learned through error messages."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient

from connections.discovery.resources import service_resource
from connections.models import Connection
from connections.probing.probes import check_reachability
from connections.probing.probes.kubernetes import encode_ca
from connections.probing.scrape import scrape_connected
from credentials.bounds import origin_of
from credentials.models import Credential
from credentials.scrub import scrub_text, secret_fragments
from environments.models import Environment, EnvironmentMembership
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert

SECRET = "tok-CANARY-0123456789abcdef"
pytestmark = pytest.mark.django_db


class Echo(BaseHTTPRequestHandler):
    """Answers JSON the test sets; can split the body over two writes."""

    def do_GET(self):  # noqa: N802
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps(self.server.answer(self.path, self.headers)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:20])
        self.wfile.flush()
        time.sleep(0.05)  # the rest arrives in a second write
        self.wfile.write(body[20:])

    def log_message(self, *args):
        pass


@pytest.fixture
def echo():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.seen = []
    server.answer = lambda path, headers: {"status": "ok"}
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def shared(django_user_model, echo):
    """An owner's token, bound to the echo server, shared into an environment with an editor."""
    owner = django_user_model.objects.create_user("own", password="pw-own-123")
    editor = django_user_model.objects.create_user("ed", password="pw-ed-123")
    credential = Credential(
        name="prod", kind="bearer_token", owner=owner, endpoints=[origin_of(echo.url)]
    )
    credential.set_secret({"token": SECRET})
    credential.save()
    env = Environment.objects.create(name="prod", owner=owner)
    env.credentials.add(credential)
    EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    api = APIClient()
    api.force_authenticate(editor)
    return owner, editor, credential, env, api


@pytest.mark.parametrize(
    "url",
    [
        "http://glaß.test:8080/",  # IDNA 2003 says glass.test, IDNA 2008 xn--gla-7ka.test
        "http://127.0.0.1%2eevil.test:8080/",  # one client decodes %2e into the name
        "http://bücher.example/",
    ],
)
def test_a_host_clients_would_read_differently_is_refused_everywhere(shared, url):
    _, _, credential, _, api = shared
    response = api.post(
        "/api/connections/",
        {"kind": "http", "name": "x", "url": url, "credential": credential.pk},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "host" in response.json()["error"]["message"].lower()
    assert not Connection.objects.filter(name="x").exists()
    with pytest.raises(ValueError):
        origin_of(url)


def test_a_load_balancer_hostname_that_is_not_a_plain_name_is_not_a_connection_host():
    item = {
        "metadata": {"namespace": "monitoring", "name": "prometheus"},
        "spec": {"ports": [{"port": 9090}], "type": "LoadBalancer\x00"},
        "status": {"loadBalancer": {"ingress": [{"hostname": "user:pw@evil.example/x?y"}]}},
    }
    row = service_resource(item, {})
    assert "external" not in row["details"]
    assert "\x00" not in row["details"]["type"]


def test_a_secret_echoed_inside_nested_metadata_is_scrubbed(shared, echo, make_connection):
    owner, _, credential, _, _ = shared
    credential.kind = "api_key"
    credential.set_secret({"key": SECRET})
    credential.save()
    echo.answer = lambda path, headers: {
        "database": "ok",
        "version": {"echo": headers.get("Authorization")},
    }
    conn = make_connection("registered", kind="grafana", url=echo.url, credential=credential)
    outcome = check_reachability(Connection.objects.get(pk=conn.pk))
    assert outcome.ok, outcome.summary
    assert SECRET not in json.dumps(outcome.metadata)
    assert "[redacted]" in json.dumps(outcome.metadata)


def test_an_answer_split_over_two_writes_is_read_whole(echo, make_connection):
    echo.answer = lambda path, headers: (
        {"status": "success", "data": {"version": "2.53.0", "revision": "r" * 100}}
        if "buildinfo" in path
        else {"data": {"activeTargets": [{"labels": {"job": "j" * 50}}] * 2000, "result": []}}
    )
    conn = make_connection("connected", kind="prometheus", url=echo.url)
    outcome = check_reachability(Connection.objects.get(pk=conn.pk))
    assert outcome.ok and outcome.metadata["version"] == "2.53.0", outcome
    assert scrape_connected()["failed"] == 0  # a 140 KB targets list, in two writes


def test_an_editor_cannot_swap_the_ca_a_shared_token_trusts(shared, make_connection):
    owner, _, credential, env, api = shared
    with FakeKubernetesAPI(tokens={SECRET: "admin"}) as kube:
        credential.endpoints = [origin_of(kube.url)]
        credential.save()
        conn = make_connection(
            "connected",
            kind="kubernetes",
            url=kube.url,
            credential=credential,
            metadata={"certificate_authority_data": encode_ca(kube.ca_pem)},
        )
        env.connections.add(conn)
        other_ca, _, _ = make_ca_and_cert()
        response = api.patch(
            f"/api/connections/{conn.pk}/",
            {"metadata": {"certificate_authority_data": encode_ca(other_ca)}},
            format="json",
        )
        assert response.status_code == 400
        assert "owner" in response.json()["error"]["message"]
        conn.refresh_from_db()
        assert conn.metadata["certificate_authority_data"] == encode_ca(kube.ca_pem)
        # its owner may
        owner_api = APIClient()
        owner_api.force_authenticate(owner)
        response = owner_api.patch(
            f"/api/connections/{conn.pk}/",
            {"metadata": {"certificate_authority_data": encode_ca(other_ca)}},
            format="json",
        )
        assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "metadata",
    [
        {"a": "\x00"},
        {"\x00": 1},
        {"a": {"b": {"c": "\ud800"}}},
        {"deep": json.loads("[" * 40 + "]" * 40)},
    ],
)
def test_metadata_a_database_refuses_is_a_400(shared, make_connection, metadata):
    owner, _, _, _, _ = shared
    conn = make_connection("registered", owner=owner)
    api = APIClient()
    api.force_authenticate(owner)
    response = api.patch(
        f"/api/connections/{conn.pk}/",
        json.dumps({"metadata": metadata}),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "metadata" in error.get("fields", {}) or "JSON" in error["message"], error


def test_a_non_owner_learns_no_credential_name_from_a_patch(shared, django_user_model):
    owner, editor, credential, _, api = shared
    hidden = Credential(name="prod-db-root", kind="api_key", owner=owner)
    hidden.set_secret({"key": "another-secret"})
    hidden.save()
    for name in ("prod-db-root", "no-such-name"):
        response = api.patch(f"/api/credentials/{credential.pk}/", {"name": name}, format="json")
        assert response.status_code == 403, response.content


def test_scrubbing_never_leaves_the_start_of_a_secret_behind():
    fragments = secret_fragments({"token": SECRET})
    text = "authorization=" + "x" * 7975 + "," + SECRET
    assert SECRET[:8] not in scrub_text(text, fragments)
    for form in (SECRET.upper(), base64.b64encode(SECRET.encode()).decode()):
        shown = scrub_text(f"server said {form}", fragments)
        assert form not in shown and "[redacted]" in shown


@pytest.mark.parametrize("token", ["abc\u2028def", "abc\u0085def", "abc\u200bdef"])
def test_a_token_with_an_invisible_separator_is_refused(token):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="control character"):
        Credential(kind="bearer_token").set_secret({"token": token})


def test_a_basic_auth_password_beyond_latin_1_is_sent_as_utf8_not_quoted(echo, make_connection):
    credential = Credential(name="b", kind="basic_auth", endpoints=[origin_of(echo.url)])
    credential.set_secret({"username": "admin", "password": "pässwörd€-CANARY"})
    conn = Connection(name="b", kind="http", url=echo.url, credential=credential)
    outcome = check_reachability(conn)
    assert outcome.ok, outcome.summary
    sent = echo.seen[-1][1]
    assert base64.b64decode(sent.split()[1]).decode() == "admin:pässwörd€-CANARY"
