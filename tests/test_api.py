"""The REST API: both kinds of auth, the visibility rule, the lifecycle's answers, every group."""

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken
from connections.choices import Status
from connections.models import Connection
from connections.probing.probes.kubernetes import encode_ca
from credentials.bounds import origin_of
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from tests.helpers import SHARED_SECRET
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert

pytestmark = pytest.mark.django_db

SECRET = "api-SECRET-never-returned-77"


@pytest.fixture
def token_client(owner):
    _, key = ApiToken.issue(owner, "tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def session_client(owner):
    client = APIClient()
    client.force_login(owner)
    return client


@pytest.fixture(params=["token", "session"])
def owner_api(request, token_client, session_client):
    return token_client if request.param == "token" else session_client


def test_anonymous_and_revoked_tokens_are_refused(owner):
    assert APIClient().get("/api/connections/").status_code == 401
    token, key = ApiToken.issue(owner, "old")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/connections/").status_code == 200
    token.revoked_at = token.created_at
    token.save()
    refused = client.get("/api/connections/")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Invalid or revoked token."


def test_tokens_are_stored_hashed_and_shown_once(owner, client):
    client.force_login(owner)
    page = client.post("/accounts/tokens/", {"name": "ci"}).content.decode()
    token = ApiToken.objects.get(name="ci")
    key = page.split('id="new-key">')[1].split("<")[0]
    assert (
        key.startswith("mpc_")
        and token.key_hash == ApiToken.hash(key)
        and key not in token.key_hash
    )
    assert key not in client.get("/accounts/tokens/").content.decode()
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_list_filters_orders_pages_and_counts_per_state(owner_api, make_connection):
    for i, (status, kind) in enumerate(
        [("connected", "prometheus"), ("connected", "http"), ("disconnected", "http")]
    ):
        make_connection(status, name=f"c{i}", kind=kind)
    body = owner_api.get("/api/connections/", {"kind": "http", "ordering": "-name"}).json()
    assert [c["name"] for c in body["results"]] == ["c2", "c1"]
    assert body["summary"]["connected"] == 1 and body["summary"]["disconnected"] == 1
    paged = owner_api.get("/api/connections/", {"page_size": 2}).json()
    assert paged["count"] == 3 and len(paged["results"]) == 2 and paged["next"]
    bad = owner_api.get("/api/connections/", {"status": "nonsense"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"


def test_another_users_objects_are_404(owner_api, stranger, make_connection):
    theirs = make_connection("connected", owner=stranger)
    env = Environment.objects.create(name="theirs", owner=stranger)
    cred = Credential(name="theirs", kind="api_key", owner=stranger)
    cred.set_secret({"key": "k"})
    cred.save()
    assert owner_api.get(f"/api/connections/{theirs.pk}/").status_code == 404
    assert (
        owner_api.post(
            f"/api/connections/{theirs.pk}/transition/", {"to": "maintenance"}
        ).status_code
        == 404
    )
    assert owner_api.get(f"/api/environments/{env.pk}/").status_code == 404
    assert owner_api.get(f"/api/credentials/{cred.pk}/").status_code == 404
    bulk = owner_api.post(
        "/api/connections/bulk-transition/", {"ids": [theirs.pk], "to": "ignored"}, format="json"
    )
    assert bulk.status_code == 404
    assert Connection.objects.get(pk=theirs.pk).status == "connected"


def test_create_runs_the_reachability_check(owner_api, http_endpoint, dead_url):
    up = owner_api.post(
        "/api/connections/", {"name": "up", "kind": "http", "url": http_endpoint.url}, format="json"
    )
    assert up.status_code == 201 and up.json()["status"] == "registered"
    down = owner_api.post(
        "/api/connections/", {"name": "down", "kind": "http", "url": dead_url}, format="json"
    )
    assert down.status_code == 201 and down.json()["status"] == "not_found"
    assert "connect" in down.json()["last_probe_error"]
    dup = owner_api.post(
        "/api/connections/",
        {"name": "x", "kind": "http", "url": http_endpoint.url + "/"},
        format="json",
    )
    assert dup.status_code == 409 and dup.json()["error"]["existing"] == up.json()["id"]
    bad = owner_api.post(
        "/api/connections/", {"name": "x", "kind": "http", "url": "ftp://x"}, format="json"
    )
    assert bad.status_code == 400 and "url" in bad.json()["error"]["fields"]


def test_the_retry_interval_is_set_and_bounded_as_on_the_pages(
    owner_api, http_endpoint, make_connection
):
    made = owner_api.post(
        "/api/connections/",
        {"name": "r", "kind": "http", "url": http_endpoint.url, "retry_interval": 7},
        format="json",
    )
    assert made.status_code == 201 and made.json()["retry_interval"] == 7
    conn = make_connection()
    for bad in (0, 3601, "soon", None):
        refused = owner_api.patch(
            f"/api/connections/{conn.pk}/", {"retry_interval": bad}, format="json"
        )
        assert refused.status_code == 400, bad
    changed = owner_api.patch(f"/api/connections/{conn.pk}/", {"retry_interval": 60}, format="json")
    assert changed.status_code == 200 and changed.json()["retry_interval"] == 60
    conn.refresh_from_db()
    assert conn.retry_interval == 60


def test_update_and_the_viewer_rule(owner_api, owner, stranger, make_connection):
    conn = make_connection("connected", name="old")
    changed = owner_api.patch(
        f"/api/connections/{conn.pk}/", {"name": "new", "metadata": {"team": "sre"}}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["name"] == "new"
    assert changed.json()["status"] == "connected"  # not writable
    owner_api.patch(f"/api/connections/{conn.pk}/", {"status": "deleted"}, format="json")
    assert Connection.objects.get(pk=conn.pk).status == "connected"
    env = Environment.objects.create(name="e", owner=owner)
    env.connections.add(conn)
    EnvironmentMembership.objects.create(environment=env, user=stranger, role="viewer")
    viewer = APIClient()
    viewer.force_login(stranger)
    assert viewer.get(f"/api/connections/{conn.pk}/").status_code == 200
    assert (
        viewer.patch(f"/api/connections/{conn.pk}/", {"name": "x"}, format="json").status_code
        == 403
    )
    assert (
        viewer.post(
            f"/api/connections/{conn.pk}/transition/", {"to": "ignored"}, format="json"
        ).status_code
        == 403
    )


def test_transition_answers_200_or_409_naming_the_state(owner_api, make_connection):
    conn = make_connection("connected")
    ok = owner_api.post(
        f"/api/connections/{conn.pk}/transition/",
        {"to": "maintenance", "reason": "patching"},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["status"] == "maintenance"
    refused = owner_api.post(
        f"/api/connections/{conn.pk}/transition/", {"to": "disconnected"}, format="json"
    )
    assert refused.status_code == 409
    body = refused.json()["error"]
    assert body["current"] == "maintenance" and body["allowed"] == ["connected", "deleted"]
    assert "is Maintenance" in body["message"]
    bad = owner_api.post(f"/api/connections/{conn.pk}/transition/", {"to": "flying"}, format="json")
    assert bad.status_code == 400 and "to" in bad.json()["error"]["fields"]
    history = owner_api.get(f"/api/connections/{conn.pk}/history/").json()
    assert history["count"] == 1
    assert [(h["from_status"], h["to_status"], h["reason"]) for h in history["results"]] == [
        ("connected", "maintenance", "patching")
    ]


def test_bulk_transition_reports_refusals_by_name(owner_api, make_connection):
    a, b = make_connection("connected", name="a"), make_connection("ignored", name="b")
    body = owner_api.post(
        "/api/connections/bulk-transition/",
        {"ids": [a.pk, b.pk], "to": "maintenance"},
        format="json",
    ).json()
    assert body["changed"] == ["a"] and body["refused"][0]["name"] == "b"


def test_credentials_never_return_their_secret(owner_api, make_connection):
    created = owner_api.post(
        "/api/credentials/", {"name": "t", "kind": "bearer_token", "secret": SECRET}, format="json"
    )
    assert created.status_code == 201 and SECRET not in created.content.decode()
    assert "secret" not in created.json()
    pk = created.json()["id"]
    assert Credential.objects.get(pk=pk).get_secret() == {"token": SECRET}
    listed = owner_api.get("/api/credentials/").content.decode()
    assert "t" in listed and SECRET not in listed
    owner_api.patch(f"/api/credentials/{pk}/", {"secret": "rotated"}, format="json")
    assert Credential.objects.get(pk=pk).get_secret() == {"token": "rotated"}
    make_connection("connected", name="user", credential=Credential.objects.get(pk=pk))
    in_use = owner_api.delete(f"/api/credentials/{pk}/")
    assert in_use.status_code == 409 and in_use.json()["error"]["used_by"] == ["user"]
    bad = owner_api.post(
        "/api/credentials/",
        {"name": "k", "kind": "kubeconfig", "secret": "contexts: []"},
        format="json",
    )
    assert bad.status_code == 400 and "no contexts" in bad.json()["error"]["message"]


def test_environments_members_assignment_and_group_transition(
    owner_api, owner, stranger, make_connection
):
    env = owner_api.post(
        "/api/environments/", {"name": "prod", "description": "p"}, format="json"
    ).json()
    conns = [make_connection("connected", name=f"s{i}") for i in range(3)]
    assigned = owner_api.post(
        f"/api/environments/{env['id']}/connections/", {"add": [c.pk for c in conns]}, format="json"
    )
    assert sorted(assigned.json()["changed"]) == ["s0", "s1", "s2"]
    group = owner_api.post(
        f"/api/environments/{env['id']}/transition/", {"to": "maintenance"}, format="json"
    ).json()
    assert sorted(group["changed"]) == ["s0", "s1", "s2"]
    assert set(Connection.objects.values_list("status", flat=True)) == {"maintenance"}
    owner_api.post(f"/api/environments/{env['id']}/transition/", {"to": "resume"}, format="json")
    assert set(Connection.objects.values_list("status", flat=True)) == {"connected"}
    members = owner_api.post(
        f"/api/environments/{env['id']}/members/",
        {"username": "stranger", "role": "viewer"},
        format="json",
    )
    assert members.json() == [
        {"id": members.json()[0]["id"], "username": "stranger", "role": "viewer"}
    ]
    viewer = APIClient()
    viewer.force_login(stranger)
    assert viewer.get(f"/api/environments/{env['id']}/").status_code == 200
    assert (
        viewer.post(
            f"/api/environments/{env['id']}/transition/", {"to": "maintenance"}, format="json"
        ).status_code
        == 403
    )
    assert (
        owner_api.delete(
            f"/api/environments/{env['id']}/members/{members.json()[0]['id']}/"
        ).status_code
        == 204
    )
    assert viewer.get(f"/api/environments/{env['id']}/").status_code == 404
    assert owner_api.delete(f"/api/environments/{env['id']}/").status_code == 204
    assert Connection.objects.count() == 3


def test_kubeconfig_import(owner_api):
    with FakeKubernetesAPI(tokens={"tok": "admin"}) as cluster:
        text = yaml.safe_dump(cluster.kubeconfig("tok", context="east"))
        body = owner_api.post("/api/kubeconfig-import/", {"kubeconfig": text}, format="json").json()
        assert [c["name"] for c in body["created"]] == ["east"] and body["created"][0][
            "status"
        ] == "registered"
        again = owner_api.post(
            "/api/kubeconfig-import/", {"kubeconfig": text}, format="json"
        ).json()
        assert again["created"] == [] and again["present"][0]["context"] == "east"
    bad = owner_api.post("/api/kubeconfig-import/", {"kubeconfig": "a: ["}, format="json")
    assert bad.status_code == 400 and "not valid YAML" in bad.json()["error"]["message"]


def test_the_schema_validates_and_the_reference_page_is_vendored(session_client, tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
    schema = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert "/api/connections/{id}/transition/" in schema["paths"]
    assert session_client.get("/api/schema/").status_code == 200
    docs = session_client.get("/api/docs/").content.decode()
    assert "drf_spectacular_sidecar" in docs and "cdn" not in docs.lower()


def test_health_readiness_and_metrics(client, make_connection, admin_user):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    make_connection(Status.CONNECTED, kind="prometheus")
    assert client.get("/metrics").status_code == 401  # see tests/test_metrics_auth.py
    client.force_login(admin_user)
    text = client.get("/metrics").content.decode()
    assert 'meshplay_connections{kind="prometheus",state="connected"} 1.0' in text
    assert "meshplay_probe_backlog" in text and "meshplay_last_beat_tick_timestamp_seconds" in text


def test_a_long_history_is_paginated_on_the_page_and_in_the_api(
    owner_api, client, owner, make_connection
):
    from connections.models import ConnectionTransition

    conn = make_connection("connected")
    ConnectionTransition.objects.bulk_create(
        ConnectionTransition(
            connection=conn,
            from_status="connected",
            to_status="disconnected",
            trigger="probe",
            reason=f"flap {n}",
        )
        for n in range(250)
    )
    first = owner_api.get(f"/api/connections/{conn.pk}/history/").json()
    assert first["count"] == 250 and len(first["results"]) == 100 and first["next"]
    last = owner_api.get(f"/api/connections/{conn.pk}/history/", {"page": 3}).json()
    assert len(last["results"]) == 50
    client.force_login(owner)
    page = client.get(f"/connections/{conn.pk}/").content.decode()
    assert page.count("flap ") == 50 and "page 1 of 5" in page
    older = client.get(f"/connections/{conn.pk}/", {"hpage": 5}).content.decode()
    assert older.count("flap ") == 50


# ---- the trust boundaries' review: a host two clients read differently, a CA an editor could
# swap, names learned through error messages ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://glaß.test:8080/",  # IDNA 2003 says glass.test, IDNA 2008 xn--gla-7ka.test
        "http://127.0.0.1%2eevil.test:8080/",  # one client decodes %2e into the name
        "http://bücher.example/",
    ],
)
def test_a_host_clients_would_read_differently_is_refused_everywhere(shared_token, url):
    _, _, credential, _, api = shared_token
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


def test_an_editor_cannot_swap_the_ca_a_shared_token_trusts(shared_token, make_connection):
    owner, _, credential, env, api = shared_token
    with FakeKubernetesAPI(tokens={SHARED_SECRET: "admin"}) as kube:
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


def test_a_non_owner_learns_no_credential_name_from_a_patch(shared_token, django_user_model):
    owner, editor, credential, _, api = shared_token
    hidden = Credential(name="prod-db-root", kind="api_key", owner=owner)
    hidden.set_secret({"key": "another-secret"})
    hidden.save()
    for name in ("prod-db-root", "no-such-name"):
        response = api.patch(f"/api/credentials/{credential.pk}/", {"name": name}, format="json")
        assert response.status_code == 403, response.content


def test_the_api_root_is_a_page_for_a_browser_and_json_for_a_client(session_client):
    page = session_client.get("/api/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    html = page.content.decode()
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert 'href="/api/docs/"' in html and 'href="/api/redoc/"' in html
    assert "/api/connections/" in html and 'href="/accounts/tokens/"' in html
    data = session_client.get("/api/", HTTP_ACCEPT="application/json").json()
    assert data["connections"].endswith("/api/connections/")
    browser_json = session_client.get("/api/?format=json", HTTP_ACCEPT="text/html,*/*;q=0.8")
    assert browser_json.json().keys() == data.keys()
