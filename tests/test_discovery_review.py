"""Issue 12's review: hostile clusters and races in discovery, each now held (PostgreSQL)."""

import json
import threading

import pytest
from django.db import connection as db

from connections import discovery, lifecycle
from connections.choices import Status, Trigger
from connections.discovery import resources
from connections.editing import update_connection
from connections.identity import validate_endpoint_url
from connections.metadata import merge_metadata
from connections.models import Connection, DiscoveredResource
from connections.probing.probes.kubernetes import encode_ca
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert
from tests.test_discovery import TOKEN, api, cluster, discovered  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


# 1. A continue token that comes back: the pass ends with an error instead of paging forever.
def test_a_continue_token_that_comes_back_ends_the_pass_with_an_error(api, cluster):  # noqa: F811
    real = api._list
    state = {"n": 0}

    def looping(resource, namespace, query):
        query = {k: v for k, v in query.items() if k != "continue"}
        status, ctype, body = real(resource, namespace, query)
        if resource == "services":
            state["n"] += 1
            page = json.loads(body)
            page["metadata"]["continue"] = "loop"  # the same page, the same token, forever
            body = json.dumps(page).encode()
        return status, ctype, body

    api._list = looping
    out = {}
    thread = threading.Thread(
        target=lambda: out.setdefault("r", discovery.discover_cluster(cluster))
    )
    thread.start()
    thread.join(30)
    db.close()
    assert not thread.is_alive()
    assert state["n"] == 2  # the token came back on the second page: stop
    assert "does not end" in out["r"].error


# 2. A Service name is a DNS label: one carrying userinfo or a host never becomes a URL.
@pytest.mark.parametrize("name", ["x@127.0.0.2:8080/", "a/b", "UPPER", "x:80", "a" * 64])
def test_a_service_name_that_is_not_a_dns_label_is_skipped(api, cluster, name):  # noqa: F811
    api.add_service("monitoring", name, {"app": "prometheus"}, [9090])
    report = discovery.discover_cluster(cluster)
    assert report.error == "", report
    assert report.skipped >= 1
    assert not Connection.objects.filter(cluster=cluster, name__startswith=name[:5]).exists()
    for url in Connection.objects.filter(cluster=cluster).values_list("url", flat=True):
        validate_endpoint_url(url)  # every child's URL is one a user could have saved


# 3. Absurd labels: at most MAX_LABELS kept per object.
def test_labels_kept_per_object_are_bounded(api, cluster):  # noqa: F811
    labels = {f"k{i}": "v" * 63 for i in range(20000)}
    api.add_service("default", "fat", labels, [80])
    report = discovery.discover_cluster(cluster)
    assert report.error == "", report
    row = DiscoveredResource.objects.get(cluster=cluster, name="fat", kind="service")
    with db.cursor() as c:
        c.execute(
            "select pg_column_size(labels) from connections_discoveredresource where id=%s",
            [row.pk],
        )
        size = c.fetchone()[0]
    assert len(row.labels) == resources.MAX_LABELS and size < 10_000


# 4. A child's new address is written alone: a metadata key written meanwhile stays.
def test_following_a_new_address_keeps_what_others_wrote_meanwhile(api, cluster, monkeypatch):  # noqa: F811
    discovery.discover_cluster(cluster)
    child = discovered(cluster)["monitoring/grafana"]
    api.add_service(
        "monitoring",
        "grafana",
        {"app": "grafana"},
        [3000],
        type="LoadBalancer",
        external_ip="127.0.0.9",
    )  # its address changes
    real = resources.endpoint
    done = {}

    def endpoint(row):
        if row["name"] == "grafana":
            done[len(done)] = True
        if row["name"] == "grafana" and len(done) == 2:  # the call in _sync_connections

            def other():  # a probe (or a user) writes a key on its own connection meanwhile
                merge_metadata(Connection.objects.filter(pk=child.pk), {"version": "11.0.0"})
                db.close()

            t = threading.Thread(target=other)
            t.start()
            t.join()
        return real(row)

    monkeypatch.setattr(resources, "endpoint", endpoint)
    discovery.discover_cluster(cluster)
    child = Connection.objects.get(pk=child.pk)
    assert child.url == "http://127.0.0.9:3000"
    assert child.metadata["version"] == "11.0.0"  # the concurrent write stays


# 5. cluster_id is the server's: a user's edit of it is not taken, children keep their keys.
def test_a_users_edit_of_the_cluster_id_is_not_taken(api, cluster, owner):  # noqa: F811
    discovery.discover_cluster(cluster)
    cluster.refresh_from_db()
    grafana = discovered(cluster)["monitoring/grafana"]
    lifecycle.transition(grafana, Status.IGNORED, trigger=Trigger.USER, user=owner)
    update_connection(cluster, user=owner, metadata={**cluster.metadata, "cluster_id": "typo"})
    cluster.refresh_from_db()
    report = discovery.discover_cluster(cluster)
    twins = Connection.objects.filter(name="grafana (monitoring)").values_list("status", flat=True)
    assert list(twins) == ["ignored"]
    assert report.created == [] and report.vanished == []
    assert cluster.metadata["cluster_id"] != "typo"


# 6. Re-pointing a cluster connection at another API server forgets the first's identity.
def test_pointing_a_cluster_at_another_server_takes_that_servers_identity(owner, make_connection):
    tls = make_ca_and_cert()
    with (
        FakeKubernetesAPI(tokens={TOKEN: "admin"}, tls=tls) as a,
        FakeKubernetesAPI(tokens={TOKEN: "admin"}, tls=tls) as b,
    ):
        for server in (a, b):
            server.forbidden_resources = set()
            server.add_service("monitoring", "prometheus-server", {"app": "prometheus"}, [9090])
        cred = Credential(
            name="t",
            kind="bearer_token",
            owner=owner,
            endpoints=[origin_of(a.url), origin_of(b.url)],
        )
        cred.set_secret({"token": TOKEN})
        cred.save()
        conn = make_connection(
            Status.CONNECTED,
            name="c",
            kind="kubernetes",
            url=a.url,
            credential=cred,
            metadata={"certificate_authority_data": encode_ca(tls[0])},
        )
        discovery.discover_cluster(conn)
        conn.refresh_from_db()
        assert conn.metadata["cluster_id"] == a.cluster_uid
        update_connection(conn, user=owner, url=b.url)
        conn.refresh_from_db()
        discovery.discover_cluster(conn)
        conn.refresh_from_db()
        child = Connection.objects.get(cluster=conn, status=Status.DISCOVERED)
        assert conn.metadata["cluster_id"] == b.cluster_uid
        assert b.cluster_uid in child.identity
        # A added back (a new connection) finds its Prometheus "taken" by the other one
        again = make_connection(
            Status.CONNECTED,
            name="a again",
            kind="kubernetes",
            url=a.url + "/",
            credential=cred,
            metadata={"certificate_authority_data": encode_ca(tls[0])},
        )
        report = discovery.discover_cluster(again)
        assert report.error == ""  # A's Prometheus (and its history) is A's again
        assert Connection.objects.filter(cluster=again).count() == 1


# 7. kube-system without a usable uid: the server's origin, never the text "None".
@pytest.mark.parametrize("uid", [None, "", 42, "bad\x00uid"])
def test_a_cluster_without_a_usable_uid_is_known_by_its_server(api, cluster, uid):  # noqa: F811
    real = api._get

    def get(resource, namespace, name):
        status, ctype, body = real(resource, namespace, name)
        if resource == "namespaces" and name == "kube-system":
            obj = json.loads(body)
            obj["metadata"]["uid"] = uid
            body = json.dumps(obj).encode()
        return status, ctype, body

    api._get = get
    cluster.metadata.pop("cluster_id", None)
    report = discovery.discover_cluster(cluster)
    cluster.refresh_from_db()
    assert report.error == ""
    assert cluster.metadata["cluster_id"] == f"server:{origin_of(api.url)}"
