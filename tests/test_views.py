"""The connection pages: visibility, the 404 rule, CSRF, filters, actions, adding, importing."""

import re

import pytest
import yaml
from django.test import Client
from django.urls import reverse

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection, ProbeResult
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from tests.kube_api import FakeKubernetesAPI

pytestmark = pytest.mark.django_db

LIST = reverse("connections:list")
SECRET = "s3cret-token-NEVER-SHOWN-d41"


def client_for(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


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
    assert "could not be reached (connect:" in response.content.decode()


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
    assert "75.0% up" in body and "<svg" in body and "chart-failure" in body
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
    with django_assert_max_num_queries(12) as small:
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
