"""Discovery end to end against the in-suite Kubernetes API server, through the real client."""

import json
import signal
import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection as db

from connections import discovery, lifecycle
from connections.choices import Status, Trigger
from connections.discovery import resources
from connections.discovery.resources import service_resource
from connections.editing import update_connection
from connections.identity import validate_endpoint_url
from connections.metadata import merge_metadata
from connections.models import Connection, DiscoveredResource
from connections.probing.probes.kubernetes import encode_ca
from credentials.bounds import origin_of
from credentials.models import Credential
from environments.models import Environment
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert

pytestmark = pytest.mark.django_db

TOKEN, LIMITED = "disc-admin-token", "disc-limited-token"


@pytest.fixture
def cluster_api():
    with FakeKubernetesAPI(tokens={TOKEN: "admin", LIMITED: "limited"}) as server:
        server.forbidden_resources = {"deployments"}
        server.add_namespace("monitoring")
        server.add_node("node-a")
        server.add_node("node-b")
        server.add_service(
            "monitoring", "prometheus-server", {"app.kubernetes.io/name": "prometheus"}, [9090, 80]
        )
        server.add_service(
            "monitoring",
            "grafana",
            {"app": "grafana"},
            [3000],
            type="LoadBalancer",
            external_ip="127.0.0.1",
        )
        server.add_service("default", "web", {"app": "nginx"}, [80])
        # a Service named plainly, in front of a Deployment running Prometheus's image
        server.add_deployment("metrics", "tsdb", {"app": "tsdb"}, "prom/prometheus:v2.53.0")
        server.add_service("metrics", "tsdb", {"app": "tsdb"}, [9090])
        server.add_deployment("default", "web", {"app": "nginx"}, "nginx:1.27")
        yield server


def connect_cluster(server, owner, make_connection, name="prod-cluster"):
    """A Connected Kubernetes connection to ``server``, with a token credential bound to it."""
    credential = Credential(
        name=f"{name} token", kind="bearer_token", owner=owner, endpoints=[origin_of(server.url)]
    )
    credential.set_secret({"token": TOKEN})
    credential.save()
    return make_connection(
        Status.CONNECTED,
        name=name,
        owner=owner,
        kind="kubernetes",
        url=server.url,
        credential=credential,
        metadata={"certificate_authority_data": encode_ca(server.ca_pem)},
    )


@pytest.fixture
def cluster(cluster_api, owner, make_connection):
    return connect_cluster(cluster_api, owner, make_connection)


def discovered(cluster):
    return {
        c.metadata["namespace"] + "/" + c.name.split(" ")[0]: c
        for c in cluster.discovered_connections.all()
    }


def test_a_first_pass_creates_managed_discovered_connections(cluster_api, cluster):
    report = discovery.discover_cluster(cluster)
    assert report.error == "" and report.forbidden == {}
    found = discovered(cluster)
    assert set(found) == {"monitoring/prometheus-server", "monitoring/grafana", "metrics/tsdb"}
    prometheus = found["monitoring/prometheus-server"]
    assert (prometheus.kind, prometheus.status, prometheus.managed) == (
        "prometheus",
        "discovered",
        True,
    )
    assert prometheus.url == "http://prometheus-server.monitoring.svc:9090"
    assert (
        prometheus.identity
        == f"discovered|{cluster_api.cluster_uid}/monitoring/prometheus-server:9090"
    )
    assert found["monitoring/grafana"].url == "http://127.0.0.1:3000"  # the external address
    assert (
        found["monitoring/grafana"].metadata["in_cluster_url"]
        == "http://grafana.monitoring.svc:3000"
    )
    assert found["metrics/tsdb"].kind == "prometheus"  # recognised through its Deployment
    assert prometheus.history.get().trigger == Trigger.DISCOVERY
    resources = DiscoveredResource.objects.filter(cluster=cluster)
    assert resources.filter(kind="service").count() == 4
    assert resources.filter(kind="deployment").count() == 2
    cluster.refresh_from_db()
    assert cluster.metadata["nodes"] == 2 and cluster.metadata["namespaces"] >= 4


def test_a_second_pass_over_an_unchanged_cluster_writes_nothing(cluster_api, cluster):
    discovery.discover_cluster(cluster)
    before = Connection.all_objects.count(), DiscoveredResource.objects.count()
    report = discovery.discover_cluster(cluster)
    assert report.rows_written == 0 and report.created == []
    assert (Connection.all_objects.count(), DiscoveredResource.objects.count()) == before


def test_an_ignored_connection_stays_ignored(cluster_api, cluster, owner):
    discovery.discover_cluster(cluster)
    prometheus = discovered(cluster)["monitoring/prometheus-server"]
    lifecycle.transition(prometheus, Status.IGNORED, trigger=Trigger.USER, user=owner)
    cluster_api.add_service(  # it changes in the cluster: exposed outside now
        "monitoring",
        "prometheus-server",
        {"app.kubernetes.io/name": "prometheus"},
        [9090],
        type="LoadBalancer",
        external_ip="127.0.0.2",
    )
    discovery.discover_cluster(cluster)
    cluster_api.remove_service("monitoring", "prometheus-server")  # and it vanishes
    discovery.discover_cluster(cluster)
    prometheus.refresh_from_db()
    assert prometheus.status == Status.IGNORED
    assert prometheus.url == "http://prometheus-server.monitoring.svc:9090"
    assert [h.to_status for h in prometheus.history.all()] == [Status.DISCOVERED, Status.IGNORED]
    assert Connection.all_objects.filter(identity=prometheus.identity).count() == 1


def test_a_vanished_resource_disconnects_its_connection(cluster_api, cluster):
    discovery.discover_cluster(cluster)
    grafana = discovered(cluster)["monitoring/grafana"]
    cluster_api.remove_service("monitoring", "grafana")
    report = discovery.discover_cluster(cluster)
    assert report.vanished == [grafana.identity]
    grafana.refresh_from_db()
    assert grafana.status == Status.DISCONNECTED
    lost = grafana.history.last()
    assert (lost.trigger, lost.reason) == (Trigger.DISCOVERY, "vanished from its cluster")


def test_a_deleted_connection_is_discovered_afresh(cluster_api, cluster, owner):
    discovery.discover_cluster(cluster)
    old = discovered(cluster)["monitoring/prometheus-server"]
    lifecycle.transition(old, Status.DELETED, trigger=Trigger.USER, user=owner)
    discovery.discover_cluster(cluster)
    fresh = Connection.objects.get(identity=old.identity)
    assert fresh.pk != old.pk and fresh.status == Status.DISCOVERED
    assert [h.to_status for h in fresh.history.all()] == [Status.DISCOVERED]
    tombstone = Connection.all_objects.get(pk=old.pk)
    assert [h.to_status for h in tombstone.history.all()] == [Status.DISCOVERED, Status.DELETED]


def test_a_forbidden_resource_type_is_reported_and_the_rest_goes_on(cluster_api, cluster):
    cluster.credential.set_secret({"token": LIMITED})
    cluster.credential.save()
    report = discovery.discover_cluster(cluster)
    assert "deployments" in report.forbidden
    assert 'cannot list resource "deployments"' in report.forbidden["deployments"]
    assert {"monitoring/prometheus-server", "monitoring/grafana"} <= set(discovered(cluster))
    cluster.refresh_from_db()
    assert "deployments" in cluster.metadata["discovery_forbidden"]


def test_large_lists_are_read_in_pages(cluster_api, cluster):
    for i in range(1200):
        cluster_api.add_service("bulk", f"svc-{i:04d}", {"app": "svc"}, [8080])
    discovery.discover_cluster(cluster)
    assert DiscoveredResource.objects.filter(cluster=cluster, namespace="bulk").count() == 1200
    pages = [q for m, path, q in cluster_api.requests if path == "/api/v1/services"]
    assert len(pages) == 3 and all(q.get("limit") == "500" for q in pages)
    assert "continue" in pages[1] and "continue" in pages[2]


def test_discovered_connections_join_the_clusters_environments(cluster_api, cluster, owner):
    env = Environment.objects.create(name="prod", owner=owner)
    env.connections.add(cluster)
    discovery.discover_cluster(cluster)
    assert set(env.connections.values_list("kind", flat=True)) == {
        "kubernetes",
        "prometheus",
        "grafana",
    }


def test_deleting_the_cluster_purges_what_discovery_saw(cluster_api, cluster, owner):
    discovery.discover_cluster(cluster)
    assert DiscoveredResource.objects.filter(cluster=cluster).exists()
    lifecycle.transition(cluster, Status.DELETED, trigger=Trigger.USER, user=owner)
    assert not DiscoveredResource.objects.filter(cluster=cluster).exists()


def test_an_unreachable_cluster_is_reported_not_raised(cluster_api, cluster):
    cluster_api.set_down(True)
    report = discovery.discover_cluster(cluster)
    assert report.error.startswith("refused:")  # nothing listens
    assert not cluster.discovered_connections.exists()


@pytest.mark.parametrize(
    ("name", "labels", "image", "expected"),
    [
        ("x", {"app.kubernetes.io/name": "prometheus"}, "", "prometheus"),
        ("kube-prometheus-stack-prometheus", {}, "", "prometheus"),
        ("prometheus-operator", {}, "", ""),
        ("node-exporter", {}, "prom/node-exporter", ""),
        ("dash", {}, "grafana/grafana:11.2.0", "grafana"),
        ("web", {"app": "nginx"}, "nginx", ""),
    ],
)
def test_recognition(name, labels, image, expected):
    assert resources.recognise(name, labels, image) == expected


def test_the_cluster_page_browses_what_discovery_saw(
    cluster_api, cluster, owner, client, http_endpoint
):
    discovery.discover_cluster(cluster)
    client.force_login(owner)
    page = f"/connections/{cluster.pk}/"
    body = client.get(page).content.decode()
    assert "Discovered in this cluster" in body and "(6 resources)" in body
    only = client.get(page, {"rkind": "deployment", "rns": "metrics"}).content.decode()
    only = only.split('id="discovered"')[1].split("</section>")[0]  # the resources' list
    assert "tsdb" in only and "prometheus-server" not in only
    services = client.get(page, {"rkind": "service", "rns": "monitoring"})
    rows = {r.name: r for r in services.context["discovered"]["rows"]}
    assert rows["grafana"].can_register and rows["grafana"].connection.status == "discovered"
    # Register runs the reachability check: point it at a live endpoint first
    grafana = rows["grafana"].connection
    Connection.objects.filter(pk=grafana.pk).update(url=http_endpoint.url)
    client.post(f"/connections/{grafana.pk}/transition/", {"to": "registered"})
    grafana.refresh_from_db()
    assert grafana.status == Status.REGISTERED


def test_a_forbidden_resource_type_shows_on_the_cluster_page(cluster_api, cluster, owner, client):
    cluster.credential.set_secret({"token": LIMITED})
    cluster.credential.save()
    discovery.discover_cluster(cluster)
    client.force_login(owner)
    body = client.get(f"/connections/{cluster.pk}/").content.decode()
    assert "Discovery may not read deployments" in body


def test_the_beat_task_queues_connected_clusters_and_the_pass_runs(cluster_api, cluster):
    from connections import tasks
    from meshplay.celery import app

    app.conf.task_always_eager = True
    try:
        assert tasks.discover_clusters() == 1
    finally:
        app.conf.task_always_eager = False
    assert cluster.discovered_connections.count() == 3
    # a cluster that is not connected is left alone
    assert tasks.discover_cluster(cluster.pk + 999) == {}


# ---- review: odd clusters, refused lists, colliding identities ---------------------------


def test_odd_objects_are_skipped_and_the_pass_goes_on(cluster_api, cluster):
    cluster_api.add_service("monitoring", "p" * 300, {"app": "prometheus"}, [9090])  # name too long
    cluster_api.add_service("monitoring", "numbers", {"app": 5, "tier": None}, [9090])  # odd labels
    report = discovery.discover_cluster(cluster)
    assert report.error == "" and report.skipped == 1
    assert "monitoring/prometheus-server" in discovered(cluster)
    kept = DiscoveredResource.objects.get(cluster=cluster, name="numbers")
    assert kept.labels == {"app": "5", "tier": "None"}


def test_a_forbidden_list_is_not_an_empty_one(cluster_api, cluster):
    discovery.discover_cluster(cluster)
    before = set(discovered(cluster))
    cluster.credential.set_secret({"token": LIMITED})
    cluster.credential.save()
    cluster_api.forbid("services")
    report = discovery.discover_cluster(cluster)
    assert "services" in report.forbidden and report.vanished == []
    assert {c.status for c in cluster.discovered_connections.all()} == {"discovered"}
    assert set(discovered(cluster)) == before
    assert DiscoveredResource.objects.filter(cluster=cluster, kind="service").count() == 4


def test_another_cluster_claiming_the_same_identity_changes_nothing(cluster_api, cluster, stranger):
    discovery.discover_cluster(cluster)
    mine = discovered(cluster)["monitoring/prometheus-server"]
    credential = Credential(name="theirs", kind="bearer_token", owner=stranger)
    credential.set_secret({"token": TOKEN})
    credential.save()
    impostor = Connection.objects.create(
        name="impostor",
        kind="kubernetes",
        url=cluster_api.url.replace("127.0.0.1", "localhost"),
        status="connected",
        owner=stranger,
        credential=credential,
        metadata={"certificate_authority_data": cluster.metadata["certificate_authority_data"]},
    )
    cluster_api.add_service(
        "monitoring",
        "prometheus-server",
        {"app.kubernetes.io/name": "prometheus"},
        [9090],
        type="LoadBalancer",
        external_ip="127.0.0.9",
    )
    discovery.discover_cluster(impostor)
    mine.refresh_from_db()
    assert mine.url == "http://prometheus-server.monitoring.svc:9090" and mine.owner != stranger
    assert not impostor.discovered_connections.filter(identity=mine.identity).exists()


def test_a_cluster_that_hides_kube_system_is_still_discovered(cluster_api, cluster):
    cluster_api.forbid("namespaces")
    cluster.credential.set_secret({"token": LIMITED})
    cluster.credential.save()
    cluster.metadata = {k: v for k, v in cluster.metadata.items() if k != "cluster_id"}
    report = discovery.discover_cluster(cluster)
    assert report.error == "" and "namespaces" in report.forbidden
    # the server's origin stands in for the uid: as stable as it across a delete and re-add
    assert discovered(cluster)["monitoring/grafana"].identity.startswith(
        f"discovered|server:{origin_of(cluster_api.url)}/"
    )


def test_an_unreachable_cluster_records_why(cluster_api, cluster):
    cluster_api.set_down(True)
    discovery.discover_cluster(cluster)
    cluster.refresh_from_db()
    assert cluster.metadata["discovery_error"].startswith("refused:")


def test_odd_browser_parameters_are_not_a_500(cluster_api, cluster, owner, client):
    discovery.discover_cluster(cluster)
    client.force_login(owner)
    for params in ({"rns": "a\x00b"}, {"rpage": "9" * 30}, {"rkind": "<x>"}):
        assert client.get(f"/connections/{cluster.pk}/", params).status_code == 200


# --- identity, adoption, races (issue 12's first points) --------------------------------------


def test_a_probe_never_changes_the_identity_an_ignored_child_is_keyed_by(
    cluster_api, cluster, owner
):
    """The cluster's identity is recorded once; a later probe answering another kube-system uid
    (a restored etcd, an RBAC change) does not re-key its children, so ignored stays ignored."""
    from connections.probing.outcomes import apply_outcomes
    from connections.probing.probes import ProbeOutcome

    discovery.discover_cluster(cluster)
    cluster.refresh_from_db()
    recorded = cluster.metadata["cluster_id"]
    prometheus = discovered(cluster)["monitoring/prometheus-server"]
    lifecycle.transition(prometheus, Status.IGNORED, trigger=Trigger.USER, user=owner)
    apply_outcomes([(cluster, ProbeOutcome(ok=True, metadata={"cluster_id": "another-uid"}))])
    cluster.refresh_from_db()
    assert cluster.metadata["cluster_id"] == recorded
    report = discovery.discover_cluster(cluster)
    assert report.created == []
    assert Connection.all_objects.filter(name__startswith="prometheus-server").count() == 1
    assert Connection.objects.get(pk=prometheus.pk).status == Status.IGNORED


def test_a_cluster_deleted_and_added_again_adopts_its_live_children(
    cluster_api, cluster, owner, make_connection
):
    discovery.discover_cluster(cluster)
    cluster.refresh_from_db()
    children = discovered(cluster)
    lifecycle.transition(
        children["monitoring/grafana"], Status.IGNORED, trigger=Trigger.USER, user=owner
    )
    credential = cluster.credential  # deleting the cluster releases it
    lifecycle.transition(cluster, Status.DELETED, trigger=Trigger.USER, user=owner)
    again = make_connection(
        Status.CONNECTED,
        name="prod-cluster again",
        kind="kubernetes",
        url=cluster_api.url + "/",
        credential=credential,
        metadata={
            "certificate_authority_data": encode_ca(cluster_api.ca_pem),
            "cluster_id": cluster.metadata["cluster_id"],  # what its registration read
        },
    )
    report = discovery.discover_cluster(again)
    assert report.error == "" and report.created == [], report  # nothing discovered twice
    adopted = {c.pk for c in Connection.all_objects.filter(cluster=again)}
    assert adopted == {c.pk for c in children.values()}
    assert Connection.objects.get(pk=children["monitoring/grafana"].pk).status == Status.IGNORED
    # and the adopted ones are judged by the new cluster: a vanished one disconnects
    cluster_api.remove_service("monitoring", "prometheus-server")
    report = discovery.discover_cluster(again)
    assert "prometheus-server" in " ".join(report.vanished)


def test_an_expired_continue_token_restarts_the_list(cluster_api, cluster, monkeypatch):
    monkeypatch.setattr(resources, "PAGE_SIZE", 2)
    calls = {"n": 0}
    real = resources.list_all

    def expire_once(call, report, resource):
        def wrapped(**kwargs):
            calls["n"] += 1
            if calls["n"] == 2:  # after the first page: the snapshot is gone
                cluster_api.expire_continue_tokens()
            return call(**kwargs)

        return real(wrapped, report, resource)

    monkeypatch.setattr(resources, "list_all", expire_once)
    report = discovery.discover_cluster(cluster)
    assert report.error == ""
    assert set(discovered(cluster)) >= {"monitoring/prometheus-server", "monitoring/grafana"}


def test_a_pass_racing_a_delete_writes_nothing_into_the_tombstone(
    cluster_api, cluster, owner, monkeypatch
):
    real = resources.parse_page

    def delete_meanwhile(items, build, report):
        if Connection.objects.filter(pk=cluster.pk).exists():
            lifecycle.transition(
                Connection.objects.get(pk=cluster.pk),
                Status.DELETED,
                trigger=Trigger.USER,
                user=owner,
            )
        return real(items, build, report)

    monkeypatch.setattr(resources, "parse_page", delete_meanwhile)
    report = discovery.discover_cluster(cluster)
    assert "no longer connected" in report.error
    assert not DiscoveredResource.objects.filter(cluster=cluster).exists()
    assert not Connection.all_objects.filter(cluster=cluster).exists()


def test_a_pass_merges_its_metadata_and_never_undoes_a_write_made_meanwhile(
    cluster_api, cluster, monkeypatch
):
    real = resources.parse_page

    def probe_writes_meanwhile(items, build, report):
        from connections.metadata import merge_metadata

        merge_metadata(Connection.objects.filter(pk=cluster.pk), {"version": "v9.9.9"})
        return real(items, build, report)

    monkeypatch.setattr(resources, "parse_page", probe_writes_meanwhile)
    discovery.discover_cluster(cluster)
    cluster.refresh_from_db()
    assert cluster.metadata["version"] == "v9.9.9"  # the probe's write survived the pass
    assert cluster.metadata["nodes"] is not None or "nodes" in cluster.metadata


def test_a_disconnected_discovered_connection_follows_its_new_address(cluster_api, cluster, owner):
    discovery.discover_cluster(cluster)
    prometheus = discovered(cluster)["monitoring/prometheus-server"]
    Connection.objects.filter(pk=prometheus.pk).update(status=Status.DISCONNECTED)
    cluster_api.add_service(
        "monitoring",
        "prometheus-server",
        {"app.kubernetes.io/name": "prometheus"},
        [9090],
        external_ip="127.0.0.9",
    )
    discovery.discover_cluster(cluster)
    prometheus.refresh_from_db()
    assert prometheus.url == "http://127.0.0.9:9090"


# --- a trickling API server, the egress guard, children of a deleted cluster ------------------


class PassHung(BaseException):
    """Not an Exception: a pass cannot mistake it for the cluster's failure and swallow it."""


@contextmanager
def hung_after(seconds: float):
    """Ends a pass still running after ``seconds`` (SIGALRM, in this main thread), so that a
    pass that never ends fails its test instead of holding the run."""

    def ring(signum, frame):
        raise PassHung(f"the pass was still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_trickling_api_server_costs_its_pass_the_pass_timeout_and_nothing_more(
    cluster_api, cluster, owner, make_connection, settings
):
    """One byte every half second never trips a per-read timeout, and a pass run outside Celery
    has no soft time limit: the deadline on the pass's network phase ends it, writing nothing,
    and the next cluster's pass is not touched by it."""
    settings.DISCOVERY_PASS_TIMEOUT = 2
    cluster_api.trickle("services", 0.5)
    # the client imports its API classes on first use (a second or two): not on the clock
    assert discovery.k8s.AppsV1Api and discovery.k8s.CoreV1Api
    started = time.monotonic()
    with hung_after(30):
        report = discovery.discover_cluster(cluster)
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 3, elapsed
    assert report.error == (
        "the API server did not finish answering within 2 s (DISCOVERY_PASS_TIMEOUT); "
        "nothing was changed"
    )
    assert ("GET", "/api/v1/services") in {(m, path) for m, path, _ in cluster_api.requests}
    assert report.rows_written == 0 and report.created == []
    assert not DiscoveredResource.objects.filter(cluster=cluster).exists()
    assert not Connection.all_objects.filter(cluster=cluster).exists()
    cluster.refresh_from_db()
    assert "DISCOVERY_PASS_TIMEOUT" in cluster.metadata["discovery_error"]

    with FakeKubernetesAPI(tokens={TOKEN: "admin"}) as healthy_api:
        healthy_api.add_namespace("monitoring")
        healthy_api.add_service(
            "monitoring", "prometheus", {"app.kubernetes.io/name": "prometheus"}, [9090]
        )
        healthy = connect_cluster(healthy_api, owner, make_connection, name="healthy-cluster")
        with hung_after(30):
            report = discovery.discover_cluster(healthy)
    assert report.error == "" and len(report.created) == 1, report
    assert healthy.discovered_connections.get().status == Status.DISCOVERED


def test_discovery_connects_only_where_the_egress_guard_allows(
    cluster_api, cluster, settings, monkeypatch
):
    """The early check of the server's address can be outrun (a name that resolves elsewhere
    when the client connects): the guard refuses the connect itself, and nothing is sent."""
    from connections.probing.probes import kubernetes as kubernetes_probe

    settings.PROBE_ALLOWED_NETWORKS = ["10.0.0.0/8"]  # loopback, where the server is, is not
    monkeypatch.setattr(kubernetes_probe, "refusal_for", lambda url: None)
    cluster_api.clear_requests()
    report = discovery.discover_cluster(cluster)
    assert report.error.startswith("bounds:"), report.error
    assert "outside PROBE_ALLOWED_NETWORKS" in report.error
    assert cluster_api.requests == []
    assert not cluster.discovered_connections.exists()


@pytest.mark.parametrize("gone", [True, False], ids=["service-gone", "service-still-there"])
def test_a_child_of_a_deleted_cluster_is_judged_by_the_cluster_added_again(
    cluster_api, cluster, owner, make_connection, gone
):
    """Deleted frees the identity: the cluster added again is the same cluster (its kube-system
    uid), so what was found under its tombstone is its to judge: adopted if still there, turned
    Disconnected (and adopted) if gone. Ignored stays ignored either way."""
    discovery.discover_cluster(cluster)
    children = discovered(cluster)
    prometheus, grafana = children["monitoring/prometheus-server"], children["monitoring/grafana"]
    lifecycle.transition(grafana, Status.IGNORED, trigger=Trigger.USER, user=owner)
    lifecycle.transition(cluster, Status.DELETED, trigger=Trigger.USER, user=owner)
    if gone:
        cluster_api.remove_service("monitoring", "prometheus-server")
        cluster_api.remove_service("monitoring", "grafana")
    again = connect_cluster(cluster_api, owner, make_connection, name="prod-cluster again")

    report = discovery.discover_cluster(again)
    assert report.error == "" and report.created == [], report
    prometheus.refresh_from_db()
    grafana.refresh_from_db()
    assert prometheus.cluster_id == again.pk  # not left on the tombstone
    if gone:
        assert report.vanished == [prometheus.identity]
        assert prometheus.status == Status.DISCONNECTED
        lost = prometheus.history.last()
        assert (lost.trigger, lost.reason) == (Trigger.DISCOVERY, "vanished from its cluster")
    else:
        assert report.vanished == [] and prometheus.status == Status.DISCOVERED
    assert grafana.status == Status.IGNORED
    assert [h.to_status for h in grafana.history.all()] == [Status.DISCOVERED, Status.IGNORED]
    assert discovery.discover_cluster(again).rows_written == 0  # judged once


def test_children_of_another_deleted_cluster_are_left_alone(
    cluster_api, cluster, owner, make_connection
):
    with FakeKubernetesAPI(tokens={TOKEN: "admin"}) as other_api:  # another kube-system uid
        other_api.add_namespace("monitoring")
        other_api.add_service(
            "monitoring", "prometheus-server", {"app.kubernetes.io/name": "prometheus"}, [9090]
        )
        other = connect_cluster(other_api, owner, make_connection, name="other-cluster")
        discovery.discover_cluster(other)
    stranded = other.discovered_connections.get()
    lifecycle.transition(other, Status.DELETED, trigger=Trigger.USER, user=owner)
    cluster_api.remove_service("monitoring", "prometheus-server")  # gone here too, by the same name
    report = discovery.discover_cluster(cluster)
    assert report.error == "" and stranded.identity not in report.vanished
    stranded.refresh_from_db()
    assert (stranded.status, stranded.cluster_id) == (Status.DISCOVERED, other.pk)


@pytest.mark.parametrize("gone", [True, False], ids=["service-gone", "service-still-there"])
def test_a_strangers_cluster_claiming_the_same_identity_takes_over_nothing(
    cluster_api, cluster, owner, stranger, make_connection, gone
):
    """Anyone may add a cluster whose API server answers another's kube-system uid (a child's
    identity shows it): once the owner deleted theirs, the stranger's pass must neither adopt,
    judge nor move the owner's children."""
    discovery.discover_cluster(cluster)
    prometheus = discovered(cluster)["monitoring/prometheus-server"]
    before = (prometheus.url, prometheus.status)
    lifecycle.transition(cluster, Status.DELETED, trigger=Trigger.USER, user=owner)
    if gone:
        cluster_api.remove_service("monitoring", "prometheus-server")
    else:  # still there, at an address the stranger chose
        cluster_api.add_service(
            "monitoring",
            "prometheus-server",
            {"app.kubernetes.io/name": "prometheus"},
            [9090],
            type="LoadBalancer",
            external_ip="127.0.0.9",
        )
    impostor = connect_cluster(cluster_api, stranger, make_connection, name="impostor")
    report = discovery.discover_cluster(impostor)
    assert report.error == "" and prometheus.identity not in report.vanished + report.updated
    prometheus.refresh_from_db()
    assert prometheus.cluster_id == cluster.pk and (prometheus.url, prometheus.status) == before
    assert prometheus.owner == owner


# ---- issue 12's review: hostile clusters and races in discovery, each now held ------------


# 1. A continue token that comes back: the pass ends with an error instead of paging forever.
@pytest.mark.django_db(transaction=True)
def test_a_continue_token_that_comes_back_ends_the_pass_with_an_error(cluster_api, cluster):
    real = cluster_api._list
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

    cluster_api._list = looping
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
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["x@127.0.0.2:8080/", "a/b", "UPPER", "x:80", "a" * 64])
def test_a_service_name_that_is_not_a_dns_label_is_skipped(cluster_api, cluster, name):
    cluster_api.add_service("monitoring", name, {"app": "prometheus"}, [9090])
    report = discovery.discover_cluster(cluster)
    assert report.error == "", report
    assert report.skipped >= 1
    assert not Connection.objects.filter(cluster=cluster, name__startswith=name[:5]).exists()
    for url in Connection.objects.filter(cluster=cluster).values_list("url", flat=True):
        validate_endpoint_url(url)  # every child's URL is one a user could have saved


# 3. Absurd labels: at most MAX_LABELS kept per object.
@pytest.mark.django_db(transaction=True)
def test_labels_kept_per_object_are_bounded(cluster_api, cluster):
    labels = {f"k{i}": "v" * 63 for i in range(20000)}
    cluster_api.add_service("default", "fat", labels, [80])
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
@pytest.mark.django_db(transaction=True)
def test_following_a_new_address_keeps_what_others_wrote_meanwhile(
    cluster_api, cluster, monkeypatch
):
    discovery.discover_cluster(cluster)
    child = discovered(cluster)["monitoring/grafana"]
    cluster_api.add_service(
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
@pytest.mark.django_db(transaction=True)
def test_a_users_edit_of_the_cluster_id_is_not_taken(cluster_api, cluster, owner):
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
@pytest.mark.django_db(transaction=True)
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
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("uid", [None, "", 42, "bad\x00uid"])
def test_a_cluster_without_a_usable_uid_is_known_by_its_server(cluster_api, cluster, uid):
    real = cluster_api._get

    def get(resource, namespace, name):
        status, ctype, body = real(resource, namespace, name)
        if resource == "namespaces" and name == "kube-system":
            obj = json.loads(body)
            obj["metadata"]["uid"] = uid
            body = json.dumps(obj).encode()
        return status, ctype, body

    cluster_api._get = get
    cluster.metadata.pop("cluster_id", None)
    report = discovery.discover_cluster(cluster)
    cluster.refresh_from_db()
    assert report.error == ""
    assert cluster.metadata["cluster_id"] == f"server:{origin_of(cluster_api.url)}"


def test_a_load_balancer_hostname_that_is_not_a_plain_name_is_not_a_connection_host():
    item = {
        "metadata": {"namespace": "monitoring", "name": "prometheus"},
        "spec": {"ports": [{"port": 9090}], "type": "LoadBalancer\x00"},
        "status": {"loadBalancer": {"ingress": [{"hostname": "user:pw@evil.example/x?y"}]}},
    }
    row = service_resource(item, {})
    assert "external" not in row["details"]
    assert "\x00" not in row["details"]["type"]
