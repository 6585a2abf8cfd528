"""The connection pages: visibility, the 404 rule, CSRF, filters, actions, adding, importing."""

import logging
import os
import re
from datetime import timedelta

import pytest
import yaml
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections import creating, lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection, ConnectionTransition, ProbeResult
from connections.probing.probes import ProbeOutcome
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from tests.helpers import client_for
from tests.kube_api import FakeKubernetesAPI
from tests.services import require_binary

pytestmark = pytest.mark.django_db

LIST = reverse("connections:list")
SECRET = "s3cret-token-NEVER-SHOWN-d41"


def names(response):
    return {row["connection"].name for row in response.context["rows"]}


def offered(html):
    return re.findall(r'name="to" value="(\w+)"', html)


@pytest.fixture
def shared(owner, stranger, make_connection, django_user_model):
    """owner's 'mine' and 'in-env'; stranger's 'theirs'; 'in-env' is in environment 'prod'."""
    mine = make_connection(Status.CONNECTED, name="mine")
    in_env = make_connection(Status.REGISTERED, name="in-env")
    theirs = make_connection(Status.CONNECTED, name="theirs", owner=stranger)
    prod = Environment.objects.create(name="prod", owner=owner)
    prod.connections.add(in_env)
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-1")
    editor = django_user_model.objects.create_user("editor", password="pw-editor-1")
    EnvironmentMembership.objects.create(environment=prod, user=viewer, role="viewer")
    EnvironmentMembership.objects.create(environment=prod, user=editor, role="editor")
    return {
        "mine": mine,
        "in_env": in_env,
        "theirs": theirs,
        "prod": prod,
        "viewer": viewer,
        "editor": editor,
    }


def test_the_table_needs_sign_in():
    response = Client().get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_each_user_sees_own_and_shared_connections_staff_see_all(
    shared, owner, stranger, admin_user
):
    assert names(client_for(owner).get(LIST)) == {"mine", "in-env"}
    assert names(client_for(stranger).get(LIST)) == {"theirs"}
    assert names(client_for(shared["viewer"]).get(LIST)) == {"in-env"}
    assert names(client_for(admin_user).get(LIST)) == {"mine", "in-env", "theirs"}


def test_another_users_connection_is_404_on_every_url(shared, stranger, owner):
    client = client_for(stranger)
    mine = shared["mine"]
    assert client.get(reverse("connections:detail", args=[mine.pk])).status_code == 404
    transition = reverse("connections:transition", args=[mine.pk])
    assert client.post(transition, {"to": "maintenance"}).status_code == 404
    bulk = client.post(
        reverse("connections:bulk"),
        {"action": "transition:maintenance", "ids": f"{mine.pk},{shared['theirs'].pk}"},
    )
    assert bulk.status_code == 404
    assert Connection.objects.get(pk=mine.pk).status == Status.CONNECTED
    assert Connection.objects.get(pk=shared["theirs"].pk).status == Status.CONNECTED
    # an environment that is not theirs is 404 for bulk assignment too
    assign = client.post(
        reverse("connections:bulk"),
        {"action": f"assign:{shared['prod'].pk}", "ids": str(shared["theirs"].pk)},
    )
    assert assign.status_code == 404


def test_a_viewer_sees_no_actions_and_cannot_transition(shared):
    viewer, in_env = shared["viewer"], shared["in_env"]
    client = client_for(viewer)
    page = client.get(reverse("connections:detail", args=[in_env.pk])).content.decode()
    assert offered(page) == []
    response = client.post(reverse("connections:transition", args=[in_env.pk]), {"to": "connected"})
    assert response.status_code == 302
    assert Connection.objects.get(pk=in_env.pk).status == Status.REGISTERED


def test_an_editor_may_transition_a_shared_connection(shared):
    editor, in_env = shared["editor"], shared["in_env"]
    client = client_for(editor)
    assert offered(client.get(LIST).content.decode()) == [
        "connected",
        "ignored",
        "maintenance",
        "deleted",
    ]
    client.post(reverse("connections:transition", args=[in_env.pk]), {"to": "connected"})
    in_env.refresh_from_db()
    assert in_env.status == Status.CONNECTED
    assert in_env.history.get().user == editor


def test_state_changes_need_the_csrf_token(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    client = client_for(owner, enforce_csrf_checks=True)
    url = reverse("connections:transition", args=[conn.pk])
    assert client.post(url, {"to": "maintenance"}).status_code == 403
    assert client.post(reverse("connections:bulk"), {"action": "x"}).status_code == 403
    assert Connection.objects.get(pk=conn.pk).status == Status.CONNECTED
    assert client.get(url).status_code == 405  # and never by GET


def test_filters_search_and_the_summary_strip(owner, make_connection):
    make_connection(Status.CONNECTED, name="prom-eu", kind="prometheus", managed=True)
    make_connection(Status.CONNECTED, name="prom-us", kind="prometheus")
    make_connection(Status.DISCONNECTED, name="graf", kind="grafana")
    gone = make_connection(Status.REGISTERED, name="old-api")
    lifecycle.transition(gone, Status.DELETED, trigger=Trigger.USER, user=owner)
    client = client_for(owner)

    assert names(client.get(LIST)) == {"prom-eu", "prom-us", "graf"}
    assert names(client.get(LIST, {"status": "connected"})) == {"prom-eu", "prom-us"}
    assert names(client.get(LIST, {"status": "deleted"})) == {"old-api"}
    assert names(client.get(LIST, {"kind": "grafana"})) == {"graf"}
    assert names(client.get(LIST, {"managed": "true"})) == {"prom-eu"}
    assert names(client.get(LIST, {"q": "PROM-"})) == {"prom-eu", "prom-us"}
    summary = {s["status"]: s["count"] for s in client.get(LIST).context["summary"]}
    assert (summary["connected"], summary["disconnected"], summary["registered"]) == (2, 1, 0)
    summary = {
        s["status"]: s["count"] for s in client.get(LIST, {"kind": "prometheus"}).context["summary"]
    }
    assert (summary["connected"], summary["disconnected"]) == (2, 0)
    assert client.get(LIST, {"status": "bogus"}).status_code == 400


def test_the_environment_filter(shared, owner):
    client = client_for(owner)
    assert names(client.get(LIST, {"environment": shared["prod"].pk})) == {"in-env"}


@pytest.mark.parametrize(
    "column",
    ["name", "kind", "url", "environments", "status", "last_probe_at", "created_at", "managed"],
)
def test_every_column_sorts_both_ways(column, owner, make_connection):
    for name in ("b", "a", "c"):
        make_connection(Status.CONNECTED, name=name)
    client = client_for(owner)
    assert client.get(LIST, {"sort": column}).status_code == 200
    assert client.get(LIST, {"sort": f"-{column}"}).status_code == 200
    if column == "name":
        ordered = [
            r["connection"].name for r in client.get(LIST, {"sort": "-name"}).context["rows"]
        ]
        assert ordered == ["c", "b", "a"]


def test_pagination_and_page_size(owner, make_connection):
    for i in range(30):
        make_connection(Status.CONNECTED, name=f"c{i:02d}")
    client = client_for(owner)
    first = client.get(LIST, {"per_page": 25})
    assert len(first.context["rows"]) == 25
    second = client.get(LIST, {"per_page": 25, "page": 2})
    assert [r["connection"].name for r in second.context["rows"]] == [
        f"c{i}" for i in range(25, 30)
    ]


def test_htmx_requests_get_just_the_table_fragment(owner, make_connection):
    make_connection(Status.CONNECTED, name="x")
    response = client_for(owner).get(LIST, {"status": "connected"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.startswith('<div id="table-region"') and "<html" not in body
    # the fragment polls itself with the same filters, so a refresh keeps them
    assert 'hx-get="/connections/?status=connected"' in body
    assert "every 5s" in body and "every 30s" in body


def test_the_status_menu_offers_only_allowed_transitions(owner, make_connection):
    make_connection(Status.MAINTENANCE, name="m", resume_status=Status.CONNECTED)
    body = client_for(owner).get(LIST).content.decode()
    assert offered(body) == ["connected", "deleted"]
    assert "End maintenance and return to Connected?" in body


def test_a_transition_from_the_menu(owner, make_connection):
    conn = make_connection(Status.CONNECTED, name="api")
    client = client_for(owner)
    url = reverse("connections:transition", args=[conn.pk])
    response = client.post(url, {"to": "maintenance", "next": LIST}, follow=True)
    assert "&#x27;api&#x27; is now Maintenance." in response.content.decode()
    refused = client.post(url, {"to": "disconnected"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 409
    assert "it cannot move to Disconnected" in refused.content.decode()
    assert refused["HX-Trigger"] == "connections-changed"
    assert client.post(url, {"to": "nonsense"}).status_code == 302  # message, no 500


def test_bulk_transition_reports_refused_rows_by_name(owner, make_connection):
    a = make_connection(Status.CONNECTED, name="alpha")
    b = make_connection(Status.REGISTERED, name="beta")
    c = make_connection(Status.IGNORED, name="gamma")
    response = client_for(owner).post(
        reverse("connections:bulk"),
        {"action": "transition:maintenance", "ids": f"{a.pk},{b.pk},{c.pk}"},
        follow=True,
    )
    body = response.content.decode()
    assert "Moved to Maintenance: 2 connection(s) (alpha, beta)" in body
    assert "&#x27;gamma&#x27; is Ignored: it cannot move to Maintenance" in body
    assert "&#x27;gamma&#x27;: &#x27;gamma&#x27;" not in body  # the name once
    states = dict(Connection.objects.values_list("name", "status"))
    assert states == {"alpha": "maintenance", "beta": "maintenance", "gamma": "ignored"}


def test_bulk_on_all_rows_matching_the_filter(owner, make_connection):
    for i in range(3):
        make_connection(Status.CONNECTED, name=f"prom{i}", kind="prometheus")
    make_connection(Status.CONNECTED, name="other", kind="http")
    client_for(owner).post(
        reverse("connections:bulk"),
        {
            "action": "transition:maintenance",
            "all_matching": "1",
            "query": "kind=prometheus",
            "confirm_count": "3",  # the count the user confirmed
        },
    )
    assert set(Connection.objects.filter(status="maintenance").values_list("name", flat=True)) == {
        "prom0",
        "prom1",
        "prom2",
    }
    client_for(owner).post(
        reverse("connections:bulk"),
        {
            "action": "transition:resume",
            "all_matching": "1",
            "query": "status=maintenance",
            "confirm_count": "3",
        },
    )
    assert not Connection.objects.filter(status="maintenance").exists()


def test_bulk_assign_and_remove_from_an_environment(owner, make_connection):
    a, b = make_connection(Status.CONNECTED, name="a"), make_connection(Status.CONNECTED, name="b")
    env = Environment.objects.create(name="staging", owner=owner)
    client = client_for(owner)
    client.post(
        reverse("connections:bulk"), {"action": f"assign:{env.pk}", "ids": f"{a.pk},{b.pk}"}
    )
    assert set(env.connections.values_list("name", flat=True)) == {"a", "b"}
    client.post(reverse("connections:bulk"), {"action": f"unassign:{env.pk}", "ids": f"{a.pk}"})
    assert set(env.connections.values_list("name", flat=True)) == {"b"}
    bad = client.post(reverse("connections:bulk"), {"action": "explode:1", "ids": "1"})
    assert bad.status_code == 302


def test_adding_a_reachable_connection_with_a_new_credential(owner, http_endpoint):
    env = Environment.objects.create(name="prod", owner=owner)
    client = client_for(owner)
    response = client.post(
        reverse("connections:add"),
        {
            "kind": "remote_provider",
            "name": "provider",
            "url": http_endpoint.url,
            "new_credential_kind": "bearer_token",
            "new_credential_name": "provider token",
            "new_credential_secret": SECRET,
            "environments": [env.pk],
            "failure_threshold": 3,
            "probe_interval": 30,
        },
        follow=True,
    )
    conn = Connection.objects.get(name="provider")
    assert response.redirect_chain[-1][0] == reverse("connections:detail", args=[conn.pk])
    assert conn.status == Status.REGISTERED
    assert list(conn.environments.all()) == [env]
    assert conn.credential.name == "provider token"
    assert http_endpoint.requests[-1][1] == f"Bearer {SECRET}"
    body = response.content.decode()
    assert "is reachable: registered" in body and "provider token" in body
    assert SECRET not in body


def test_adding_an_unreachable_connection_shows_why(owner, dead_url):
    response = client_for(owner).post(
        reverse("connections:add"),
        {
            "kind": "http",
            "name": "gone",
            "url": dead_url,
            "failure_threshold": 3,
            "probe_interval": 30,
        },
        follow=True,
    )
    assert Connection.objects.get(name="gone").status == Status.NOT_FOUND
    page = response.content.decode()
    assert "could not be reached: Nothing listens on 127.0.0.1:" in page
    assert "is the service running, on this port?" in page


def test_adding_a_duplicate_links_to_the_existing_one(owner, make_connection):
    existing = make_connection(Status.CONNECTED, url="http://127.0.0.1:9/x")
    response = client_for(owner).post(
        reverse("connections:add"),
        {
            "kind": "http",
            "name": "dup",
            "url": "http://127.0.0.1:9/x/",
            "failure_threshold": 3,
            "probe_interval": 30,
        },
    )
    assert response.status_code == 400
    assert reverse("connections:detail", args=[existing.pk]) in response.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "ftp://x"}, "Only http:// and https://"),
        ({"url": "http://h:99999"}, "Not a valid URL"),
        ({"kind": "nope"}, "Select a valid choice"),
        ({"new_credential_kind": "kubeconfig", "new_credential_secret": "a: ["}, "not valid YAML"),
        ({"probe_interval": 1}, "greater than or equal to 5"),
    ],
)
def test_bad_input_on_add_is_a_400_with_a_message(data, message, owner):
    form = {
        "kind": "http",
        "name": "x",
        "url": "http://127.0.0.1:9",
        "failure_threshold": 3,
        "probe_interval": 30,
    }
    response = client_for(owner).post(reverse("connections:add"), {**form, **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Connection.objects.exists()


def test_a_forged_credential_of_another_user_is_refused(owner, stranger):
    theirs = Credential(name="theirs", kind="bearer_token", owner=stranger)
    theirs.set_secret({"token": SECRET})
    theirs.save()
    response = client_for(owner).post(
        reverse("connections:add"),
        {
            "kind": "http",
            "name": "x",
            "url": "http://127.0.0.1:9",
            "credential": theirs.pk,
            "failure_threshold": 3,
            "probe_interval": 30,
        },
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Connection.objects.exists()


def test_the_connection_page(owner, make_connection):
    credential = Credential(name="prom token", kind="bearer_token", owner=owner)
    credential.set_secret({"token": SECRET})
    credential.save()
    conn = make_connection(
        Status.REGISTERED,
        name="prom",
        kind="prometheus",
        credential=credential,
        metadata={"version": "2.42.0", "server_id": "abc"},
    )
    lifecycle.transition(conn, Status.CONNECTED, trigger=Trigger.USER, user=owner, reason="go")
    for i, ok in enumerate([True, True, False, True]):
        ProbeResult.objects.create(connection=conn, ok=ok, latency_ms=10.0 + i)
    body = client_for(owner).get(reverse("connections:detail", args=[conn.pk])).content.decode()
    assert "2.42.0" in body and "abc" in body and "prom token" in body
    assert SECRET not in body
    assert 'id="range-uptime">75 %<' in body and "<svg" in body and "chart-failure" in body
    assert "Registered → <strong>Connected</strong>" in body and "go" in body
    assert offered(body) == ["ignored", "maintenance", "deleted"]


def kubeconfig_with(contexts):
    """A kubeconfig of several contexts: (name, server url, token, ca pem)."""
    import base64

    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": f"c-{n}",
                    "cluster": {
                        "server": url,
                        "certificate-authority-data": base64.b64encode(ca).decode(),
                    },
                }
                for n, url, _, ca in contexts
            ],
            "users": [{"name": f"u-{n}", "user": {"token": token}} for n, _, token, _ in contexts],
            "contexts": [
                {"name": n, "context": {"cluster": f"c-{n}", "user": f"u-{n}"}}
                for n, *_ in contexts
            ],
            "current-context": contexts[0][0],
        }
    )


def test_importing_a_kubeconfig_makes_one_connection_per_context(owner, dead_url):
    with (
        FakeKubernetesAPI(tokens={"tok-a": "admin"}) as a,
        FakeKubernetesAPI(tokens={"tok-b": "admin"}) as b,
    ):
        text = kubeconfig_with(
            [
                ("east", a.url, "tok-a", a.ca_pem),
                ("west", b.url, "tok-b", b.ca_pem),
                ("gone", dead_url.replace("http", "https"), "tok-c", a.ca_pem),
            ]
        )
        client = client_for(owner)
        response = client.post(reverse("connections:import"), {"text": text})
        assert response.status_code == 200
        states = dict(Connection.objects.values_list("name", "status"))
        assert states == {"east": "registered", "west": "registered", "gone": "not_found"}
        east = Connection.objects.get(name="east")
        assert east.metadata["version"] == a.git_version
        assert east.credential.kind == "kubeconfig"
        assert [
            c["name"]
            for c in yaml.safe_load(east.credential.get_secret()["kubeconfig"])["contexts"]
        ] == ["east"]
        assert Credential.objects.count() == 3
        body = response.content.decode()
        assert "tok-a" not in body and "tok-b" not in body

        again = client.post(reverse("connections:import"), {"text": text}).content.decode()
        assert again.count("is already tracked") == 3
        assert Connection.objects.count() == 3 and Credential.objects.count() == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [", "not valid YAML at line"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("contexts: []\n", "has no contexts"),
        (
            "contexts:\n- name: x\n  context: {cluster: nowhere}\n",
            "refers to cluster &#x27;nowhere&#x27;",
        ),
        ("", "Upload a kubeconfig or paste one"),
    ],
)
def test_a_malformed_kubeconfig_is_a_400_naming_the_problem(text, message, owner):
    response = client_for(owner).post(reverse("connections:import"), {"text": text})
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_table_costs_the_same_queries_at_10_and_500_rows(
    owner, make_connection, django_assert_max_num_queries, django_assert_num_queries
):
    env = Environment.objects.create(name="e", owner=owner)
    client = client_for(owner)

    def fill(n):
        conns = [make_connection(Status.CONNECTED) for _ in range(n)]
        env.connections.add(*conns)

    fill(10)
    client.get(LIST, {"per_page": 200})  # warm the session
    # 2 of them: the user's permissions (has_perm); 1: the locations (the Location filter)
    with django_assert_max_num_queries(15) as small:
        client.get(LIST, {"per_page": 200})
    fill(490)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(LIST, {"per_page": 200})
    assert len(response.context["rows"]) == 200


def test_a_secret_typed_into_a_form_is_not_sent_back_after_an_error(owner):
    """A form re-rendered with errors must not echo the secret the user typed."""
    add = client_for(owner).post(
        reverse("connections:add"),
        {
            "kind": "http",
            "name": "x",
            "url": "ftp://invalid",
            "new_credential_kind": "bearer_token",
            "new_credential_secret": SECRET,
            "failure_threshold": 3,
            "probe_interval": 30,
        },
    )
    assert add.status_code == 400 and SECRET not in add.content.decode()
    bad_kubeconfig = f"users:\n- name: u\n  user: {{token: {SECRET}}}\ncontexts: []\n"
    imported = client_for(owner).post(reverse("connections:import"), {"text": bad_kubeconfig})
    assert imported.status_code == 400 and SECRET not in imported.content.decode()


# ---- found in review: the dashboard ---------------------------------------------------------


def test_the_table_shows_only_environments_the_user_may_see(owner, stranger, make_connection):
    conn = make_connection(Status.CONNECTED, name="shared-thing")
    hidden = Environment.objects.create(name="HIDDEN-ENV", owner=stranger)
    hidden.connections.add(conn)
    mine = Environment.objects.create(name="mine", owner=owner)
    mine.connections.add(conn)
    client = client_for(owner)
    for params in ({}, {"sort": "environments"}, {"sort": "-environments"}):
        body = client.get(reverse("connections:list"), params).content.decode()
        assert "HIDDEN-ENV" not in body and "mine" in body


def test_a_duplicate_of_someone_elses_connection_is_not_named(owner, stranger, make_connection):
    make_connection(
        Status.MAINTENANCE, name="acme-prod-db", owner=stranger, url="http://10.9.9.9:8080"
    )
    response = client_for(owner).post(
        reverse("connections:add"),
        {
            "kind": "http",
            "name": "x",
            "url": "HTTP://10.9.9.9:8080/",
            "failure_threshold": 3,
            "probe_interval": 30,
        },
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "already tracked by another user" in body and "acme-prod-db" not in body


def test_a_viewer_triggers_no_probe(owner, stranger, make_connection, http_endpoint):
    conn = make_connection(Status.IGNORED, url=http_endpoint.url)
    env = Environment.objects.create(name="e", owner=owner)
    env.connections.add(conn)
    EnvironmentMembership.objects.create(environment=env, user=stranger, role="viewer")
    client = client_for(stranger)
    client.post(reverse("connections:transition", args=[conn.pk]), {"to": "registered"})
    client.post(
        reverse("connections:bulk"), {"action": "transition:registered", "ids": str(conn.pk)}
    )
    assert http_endpoint.requests == []
    assert Connection.objects.get(pk=conn.pk).status == Status.IGNORED


@pytest.mark.parametrize("per_page", ["-1", "100000", "abc"])
def test_the_page_size_cannot_be_forced_past_the_choices(per_page, owner, make_connection):
    for i in range(60):
        make_connection(Status.CONNECTED, name=f"c{i:02d}")
    response = client_for(owner).get(reverse("connections:list"), {"per_page": per_page})
    assert response.status_code == 200 and len(response.context["rows"]) == 50


@pytest.mark.parametrize("page", ["abc", "0", "-3", "99999"])
def test_any_page_number_answers(page, owner, make_connection):
    make_connection(Status.CONNECTED)
    assert client_for(owner).get(reverse("connections:list"), {"page": page}).status_code == 200


def test_malformed_urls_and_nul_bytes_are_4xx(owner, make_connection):
    client = client_for(owner)
    form = {"kind": "http", "name": "x", "failure_threshold": 3, "probe_interval": 30}
    for url, message in [
        ("http://[::1", "Not a valid URL"),
        ("http://admin:hunter2@127.0.0.1:9", "no user name or password in the URL"),
    ]:
        response = client.post(reverse("connections:add"), {**form, "url": url})
        assert response.status_code == 400 and message in response.content.decode()
        assert "hunter2" not in response.content.decode()
    kubeconfig = (
        'clusters: [{name: c, cluster: {server: "https://[::1"}}]\n'
        "users: [{name: u, user: {token: t}}]\n"
        'contexts: [{name: "a\\0b", context: {cluster: c, user: u}}]\n'
    )
    assert client.post(reverse("connections:import"), {"text": kubeconfig}).status_code == 400
    conn = make_connection(Status.CONNECTED)
    url = reverse("connections:transition", args=[conn.pk])
    client.post(url, {"to": "maintenance", "reason": "a\x00b"})
    assert conn.history.get().reason == "ab"
    assert (
        client.post(reverse("connections:bulk"), {"action": "assign:²", "ids": "1"}).status_code
        == 302
    )


def test_a_history_restore_gets_the_whole_page(owner):
    client = client_for(owner)
    response = client.get(
        reverse("connections:list"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()
    assert "HX-Request" in response["Vary"]


# ---- found on the connection page: the probe summary and the results list read the same data


def detail(client, connection) -> str:
    response = client.get(reverse("connections:detail", args=[connection.pk]))
    assert response.status_code == 200
    return response.content.decode()


def facts(body: str, css_class: str) -> str:
    """The text of one ``<dd class=…>`` of the facts list."""
    start = body.index(f'<dd class="{css_class}">')
    return body[start : body.index("</dd>", start)]


def test_a_connection_added_unreachable_shows_no_probe_beside_no_results(owner, dead_url):
    """The add form's check writes the row's last-probe fields but no result: the page used to
    say "Last probe … ok/failed" above "No probe results yet"."""
    candidate = creating.prepare_manual_connection(
        name="added", kind="http", url=f"{dead_url}/x", user=owner
    )
    outcome = ProbeOutcome(ok=True, latency_ms=3.0, status_code=200)
    connection = creating.insert_manual_connection(candidate, outcome, user=owner)
    assert connection.last_probe_at is not None and not connection.probe_results.exists()
    body = detail(client_for(owner), connection)
    assert "No probe results yet" in body
    assert "none yet" in facts(body, "last-probe") and "ok" not in facts(body, "last-probe")


def test_the_last_probe_is_the_newest_result_of_the_list(owner, make_connection):
    connection = make_connection(Status.CONNECTED)
    now = timezone.now()
    ProbeResult.objects.create(connection=connection, ok=True, checked_at=now - timedelta(hours=2))
    ProbeResult.objects.create(
        connection=connection,
        ok=False,
        checked_at=now - timedelta(minutes=3),
        error_class="refused",
        error="connection refused",
    )
    # the row's own copy says otherwise (as after a deletion, which does not clear it)
    Connection.objects.filter(pk=connection.pk).update(last_probe_at=now, last_probe_ok=True)
    last = facts(detail(client_for(owner), connection), "last-probe")
    assert "3 min ago" in last and "failed" in last and "connection refused" in last


# --- what the probes do, per state -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "extra", "says", "never"),
    [
        (Status.NOT_FOUND, {}, "Not probed while Not Found", "every 30 s"),
        (Status.IGNORED, {}, "Not probed while ignored", "every"),
        (Status.MAINTENANCE, {}, "Not probed during maintenance", "every"),
        (Status.DELETED, {}, "Not probed: it is deleted", "every"),
        (Status.DISCONNECTED, {}, "while down", "Retried every"),
        (Status.REGISTERED, {}, "Probed every 30 s; after a failure retried every 5 s", ""),
        (Status.CONNECTED, {"consecutive_failures": 2}, "Retried every 5 s: 2 failed", ""),
        (Status.CONNECTED, {"probe_interval": 3600}, "Probed every 1 h", ""),
    ],
)
def test_the_page_says_what_the_probes_do_in_each_state(
    owner, make_connection, status, extra, says, never
):
    connection = make_connection(status, **extra)
    probing = facts(detail(client_for(owner), connection), "probing")
    assert says in probing
    if never:
        assert never not in probing


# --- no "0 minutes ago" ----------------------------------------------------------------------


def test_times_just_past_read_just_now_not_zero_minutes(owner, make_connection):
    connection = make_connection(Status.CONNECTED)
    ProbeResult.objects.create(connection=connection, ok=True, checked_at=timezone.now())
    body = detail(client_for(owner), connection)
    assert "0 minutes" not in body and "0\xa0minutes" not in body and "0 min ago" not in body
    assert "just now" in facts(body, "last-probe")


# --- the kubeconfig import keeps what was pasted ----------------------------------------------


BROKEN_KUBECONFIG = (
    "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: 'https://k8s.example:6443'}\n"
    "users:\n- name: u\n  user: {token: pasted-token-7c41}\ncontexts: [\n"
)


def test_a_kubeconfig_refused_is_never_sent_back_nor_logged(owner, caplog):
    """The page keeps what was pasted in the browser (see the browser test below); the answer
    itself never carries the document's secrets."""
    caplog.set_level(logging.DEBUG)
    response = client_for(owner).post(reverse("connections:import"), {"text": BROKEN_KUBECONFIG})
    body = response.content.decode()
    assert response.status_code == 400 and "not valid YAML" in body
    assert "pasted-token-7c41" not in body
    assert 'hx-preserve="true"' in body  # the box htmx keeps as typed
    assert "no-store" in response["Cache-Control"]
    assert all("pasted-token-7c41" not in record.getMessage() for record in caplog.records)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_kubeconfig_refused_stays_in_the_box(live_server, django_user_model):
    chromium = require_binary("chromium")
    django_user_model.objects.create_user("paste", password="pw-paste-2026")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.goto(f"{live_server.url}/accounts/login/?next=/connections/import/")
            page.fill("input[name=username]", "paste")
            page.fill("input[name=password]", "pw-paste-2026")
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.fill("textarea[name=text]", BROKEN_KUBECONFIG)
            page.click("form.stack button[type=submit]")
            page.wait_for_selector("text=not valid YAML")
            assert page.input_value("textarea[name=text]") == BROKEN_KUBECONFIG
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_a_kubeconfig_imported_is_not_shown_back(owner, dead_url):
    document = BROKEN_KUBECONFIG.replace(
        "https://k8s.example:6443", dead_url.replace("http", "https")
    )
    document = document.replace(
        "contexts: [\n", "contexts: [{name: c1, context: {cluster: c, user: u}}]\n"
    )
    response = client_for(owner).post(reverse("connections:import"), {"text": document})
    assert response.status_code == 200 and "Added" in response.content.decode()
    assert "pasted-token-7c41" not in response.content.decode()


# --- the connection page at 1280 and 800 px ---------------------------------------------------


LONG = "x" * 400
# the elements that stick out of the window and are not inside a scrolling box
OFFENDERS = """[...document.querySelectorAll('body *')].filter(e => {
  if (e.getBoundingClientRect().right <= document.documentElement.clientWidth + 1) return false;
  for (let p = e.parentElement; p; p = p.parentElement)
    if (getComputedStyle(p).overflowX !== 'visible') return false;
  return true;
}).slice(0, 30).map(e => e.tagName + '.' + e.className + ' ' +
  Math.round(e.getBoundingClientRect().width))"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_connection_page_fits_1280_and_800_px(live_server, django_user_model):
    chromium = require_binary("chromium")
    user = django_user_model.objects.create_user("wide", password="pw-wide-2026")
    connection = Connection.objects.create(
        name="n" * 200,
        kind="http",
        url=f"http://127.0.0.1:9/{'path/' * 90}",
        status=Status.NOT_FOUND,
        owner=user,
        metadata={"annotation": LONG, LONG[:90]: "v", "list": [LONG] * 3},
        last_probe_error=LONG,
    )
    ConnectionTransition.objects.create(
        connection=connection,
        to_status=Status.NOT_FOUND,
        trigger=Trigger.USER,
        user=user,
        reason=f"reachability check failed: {LONG}",
    )
    ProbeResult.objects.create(connection=connection, ok=False, error_class="x", error=LONG)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=username]", "wide")
            page.fill("input[name=password]", "pw-wide-2026")
            with page.expect_navigation():
                page.click("button[type=submit]")
            for width in (1280, 800):
                page.set_viewport_size({"width": width, "height": 900})
                for path in (
                    reverse("connections:detail", args=[connection.pk]),
                    reverse("connections:edit", args=[connection.pk]),
                ):
                    page.goto(f"{live_server.url}{path}")
                    wide = page.evaluate(
                        "document.documentElement.scrollWidth - "
                        "document.documentElement.clientWidth"
                    )
                    offenders = page.evaluate(OFFENDERS) if wide > 0 else []
                    assert wide <= 0, f"{path} is {wide} px wider than {width} px: {offenders}"
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
