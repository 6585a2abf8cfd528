"""Discovery at scale, against the in-suite API server: lists streamed page by page (counted,
or parsed into compact rows), a 410 mid-list, and writes that are set-based per chunk: an
all-changed pass writes each row once, a no-change pass writes nothing, and the queries grow
with the pages and chunks, never with the objects."""

import math

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from connections import discovery
from connections.choices import Status
from connections.discovery import resources, store
from connections.models import Connection, DiscoveredResource
from connections.probing.probes.kubernetes import encode_ca
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.kube_api import FakeKubernetesAPI

pytestmark = pytest.mark.django_db

TOKEN = "scale-admin-token"
PER_KIND = 240  # Services, and as many Deployments
PAGE = 25


def fill(big_cluster_api, rev=0):
    """PER_KIND Services and Deployments over 6 namespaces, two of them Prometheus; ``rev``
    changes every object's labels (the Prometheus ones stay recognised)."""
    for i in range(PER_KIND):
        namespace = f"team-{i % 6}"
        labels = {"app.kubernetes.io/name": "prometheus"} if i < 2 else {"app": f"app-{i}"}
        if rev:
            labels["rev"] = str(rev)
        big_cluster_api.add_service(namespace, f"svc-{i:04d}", labels, [9090 if i < 2 else 8080])
        big_cluster_api.add_deployment(namespace, f"dep-{i:04d}", labels, "example/app:1")


@pytest.fixture
def big_cluster_api():
    with FakeKubernetesAPI(tokens={TOKEN: "admin"}) as server:
        fill(server)
        for n in range(7):
            server.add_node(f"node-{n}")
        yield server


@pytest.fixture
def big_cluster(big_cluster_api, make_connection, owner):
    credential = Credential(
        name="scale token",
        kind="bearer_token",
        owner=owner,
        endpoints=[origin_of(big_cluster_api.url)],
    )
    credential.set_secret({"token": TOKEN})
    credential.save()
    return make_connection(
        Status.CONNECTED,
        name="big-cluster",
        kind="kubernetes",
        url=big_cluster_api.url,
        credential=credential,
        metadata={"certificate_authority_data": encode_ca(big_cluster_api.ca_pem)},
    )


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(resources, "PAGE_SIZE", PAGE)
    monkeypatch.setattr(store, "WRITE_CHUNK", 100)  # several chunks per kind


def writes():
    """Rows inserted, updated and deleted so far in this transaction, per table (PostgreSQL)."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables"
        )
        return {name: (ins, upd, dele) for name, ins, upd, dele in cursor.fetchall()}


def delta(before, after):
    zero = (0, 0, 0)
    return {
        table: tuple(a - b for a, b in zip(after[table], before.get(table, zero), strict=True))
        for table in after
        if after[table] != before.get(table, zero)
    }


def list_requests(big_cluster_api, path):
    return [query for method, p, query in big_cluster_api.requests if p == path]


# --- lists counted and parsed page by page ----------------------------------------------------


def small_count_pages(monkeypatch, limit, each_page=None):
    """Nodes and namespaces listed ``limit`` at a time (the rest in pages of PAGE);
    ``each_page(resource, n)`` is called before the n-th request of a list."""
    real = resources.list_all
    requests: dict[str, int] = {}

    def listing(call, report, resource):
        def wrapped(**kwargs):
            requests[resource] = requests.get(resource, 0) + 1
            if each_page:
                each_page(resource, requests[resource])
            if resource in ("nodes", "namespaces"):
                kwargs["limit"] = limit
            return call(**kwargs)

        return real(wrapped, report, resource)

    monkeypatch.setattr(resources, "list_all", listing)
    return requests


def test_nodes_and_namespaces_are_counted_page_by_page(
    big_cluster_api, big_cluster, small_pages, monkeypatch
):
    for n in range(7, 20):
        big_cluster_api.add_node(f"node-{n}")
    for n in range(30):
        big_cluster_api.add_namespace(f"extra-{n:02d}")
    namespaces = 2 + 6 + 30  # kube-system, default, the teams', the extra ones
    requests = small_count_pages(monkeypatch, 3)
    report = discovery.discover_cluster(big_cluster)
    assert report.error == ""
    assert (report.counts["nodes"], report.counts["namespaces"]) == (20, namespaces)
    big_cluster.refresh_from_db()
    assert (big_cluster.metadata["nodes"], big_cluster.metadata["namespaces"]) == (20, namespaces)
    # read in pages of 3, each counted as it came: never one request for the whole list
    assert requests["nodes"] == math.ceil(20 / 3)
    assert requests["namespaces"] == math.ceil(namespaces / 3)
    assert all(q.get("limit") == "3" for q in list_requests(big_cluster_api, "/api/v1/nodes"))


def test_a_count_restarted_by_an_expired_token_is_not_counted_twice(
    big_cluster_api, big_cluster, small_pages, monkeypatch
):
    def expire(resource, n):
        if resource == "nodes" and n == 3:  # two pages counted already
            big_cluster_api.expire_continue_tokens()

    requests = small_count_pages(monkeypatch, 2, expire)
    report = discovery.discover_cluster(big_cluster)
    assert report.error == ""
    assert report.counts["nodes"] == 7
    assert requests["nodes"] == 3 + math.ceil(7 / 2)  # the refused page, then the list again


def test_services_and_deployments_are_parsed_page_by_page(
    big_cluster_api, big_cluster, small_pages, monkeypatch
):
    sizes = []
    real = resources.parse_page

    def record(items, build, report):
        sizes.append(len(items))
        return real(items, build, report)

    monkeypatch.setattr(resources, "parse_page", record)
    report = discovery.discover_cluster(big_cluster)
    assert report.error == "" and report.skipped == 0
    assert max(sizes) == PAGE and len(sizes) == 2 * math.ceil(PER_KIND / PAGE)
    assert (report.counts["services"], report.counts["deployments"]) == (PER_KIND, PER_KIND)
    assert DiscoveredResource.objects.filter(cluster=big_cluster).count() == 2 * PER_KIND


def test_a_services_list_restarted_midway_keeps_each_service_once(
    big_cluster_api, big_cluster, small_pages, monkeypatch
):
    real = resources.list_all
    seen = {"pages": 0}

    def expire_in_the_services_list(call, report, resource):
        def wrapped(**kwargs):
            if resource == "services":
                seen["pages"] += 1
                if seen["pages"] == 4:
                    big_cluster_api.remove_service(
                        "team-0", "svc-0006"
                    )  # gone in the list read again
                    big_cluster_api.expire_continue_tokens()
            return call(**kwargs)

        return real(wrapped, report, resource)

    monkeypatch.setattr(resources, "list_all", expire_in_the_services_list)
    report = discovery.discover_cluster(big_cluster)
    assert report.error == "" and report.skipped == 0
    assert report.counts["services"] == PER_KIND - 1
    stored = DiscoveredResource.objects.filter(cluster=big_cluster, kind="service")
    assert stored.count() == PER_KIND - 1
    assert not stored.filter(name="svc-0006").exists()


def test_an_object_listed_on_two_pages_is_kept_once(
    big_cluster_api, big_cluster, small_pages, monkeypatch
):
    real = resources.list_all

    def repeat_the_first_page(call, report, resource):
        first = None
        for fresh, items in real(call, report, resource):
            if resource == "deployments":
                if first is None:
                    first = list(items)
                else:
                    items = items + first[:3]
            yield fresh, items

    monkeypatch.setattr(resources, "list_all", repeat_the_first_page)
    report = discovery.discover_cluster(big_cluster)
    assert report.error == ""
    assert report.counts["deployments"] == PER_KIND
    assert report.skipped == 3 * (math.ceil(PER_KIND / PAGE) - 1)
    assert (
        DiscoveredResource.objects.filter(cluster=big_cluster, kind="deployment").count()
        == PER_KIND
    )


def test_rows_spooled_to_a_file_are_stored_the_same(
    big_cluster_api, big_cluster, small_pages, monkeypatch
):
    monkeypatch.setattr(resources, "SPOOL_MEMORY", 4096)  # a temporary file after a page
    report = discovery.discover_cluster(big_cluster)
    assert report.error == ""
    stored = DiscoveredResource.objects.filter(cluster=big_cluster)
    assert stored.count() == 2 * PER_KIND
    prometheus = stored.get(kind="service", name="svc-0001")
    assert prometheus.integration == "prometheus" and prometheus.identity
    assert prometheus.details["ports"] == [9090]
    assert stored.get(kind="deployment", name="dep-0100").labels == {"app": "app-100"}
    assert discovery.discover_cluster(big_cluster).rows_written == 0


# --- writes: each changed row once, nothing when nothing changed, queries per chunk -----------


@pytest.mark.postgres
def test_an_all_changed_pass_writes_each_row_once_and_a_no_change_pass_nothing(
    big_cluster_api, big_cluster, small_pages
):
    first = discovery.discover_cluster(big_cluster)
    assert first.error == "" and len(first.created) == 2
    resources = DiscoveredResource.objects.filter(cluster=big_cluster)

    before = writes()
    unchanged = discovery.discover_cluster(big_cluster)
    assert unchanged.rows_written == 0
    assert delta(before, writes()) == {}  # not one row of any table inserted, updated, deleted

    fill(big_cluster_api, rev=2)  # every object's labels change
    before = writes()
    with CaptureQueriesContext(db) as queries:
        changed = discovery.discover_cluster(big_cluster)
    assert changed.error == "" and changed.created == [] and changed.updated == []
    assert changed.rows_written == 2 * PER_KIND
    assert delta(before, writes()) == {"connections_discoveredresource": (0, 2 * PER_KIND, 0)}
    updates = [q for q in queries.captured_queries if q["sql"].startswith("\nUPDATE ")]
    assert len(updates) == 2 * math.ceil(PER_KIND / 100)  # one statement per chunk of 100
    assert all(r.labels.get("rev") == "2" for r in resources)
    assert resources.get(kind="service", name="svc-0000").integration == "prometheus"


@pytest.mark.postgres
def test_gone_objects_are_deleted_by_id_in_chunks(big_cluster_api, big_cluster, small_pages):
    discovery.discover_cluster(big_cluster)
    for i in range(150):
        big_cluster_api.remove_deployment(f"team-{i % 6}", f"dep-{i:04d}")
    before = writes()
    with CaptureQueriesContext(db) as queries:
        report = discovery.discover_cluster(big_cluster)
    assert report.rows_written == 150
    assert delta(before, writes()) == {"connections_discoveredresource": (0, 0, 150)}
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE ")]
    assert len(deletes) == 2  # 150 ids, in chunks of 100
    assert DiscoveredResource.objects.filter(cluster=big_cluster, kind="deployment").count() == (
        PER_KIND - 150
    )


def test_the_queries_of_a_pass_grow_with_its_pages_not_its_objects(
    big_cluster_api, big_cluster, small_pages
):
    def one_pass():
        big_cluster_api.clear_requests()
        with CaptureQueriesContext(db) as queries:
            report = discovery.discover_cluster(big_cluster)
        assert report.error == ""
        return len(queries.captured_queries), len(big_cluster_api.requests), report

    # first pass: every object is new (two connections are made, a few queries each)
    queries, pages, report = one_pass()
    assert report.rows_written >= 2 * PER_KIND
    assert queries <= 40 + pages, (queries, pages)
    fill(big_cluster_api, rev=3)
    queries, pages, report = one_pass()  # every object changed
    assert report.rows_written == 2 * PER_KIND
    assert pages >= 2 * PER_KIND / PAGE
    assert queries <= 12 + pages // 2, (queries, pages)
    assert queries < 2 * PER_KIND / 20  # nowhere near a query per object
    queries, pages, report = one_pass()  # nothing changed
    assert report.rows_written == 0 and queries <= 10


def test_the_other_databases_path_writes_changed_rows_with_bulk_update(
    big_cluster_api, big_cluster, small_pages, monkeypatch
):
    discovery.discover_cluster(big_cluster)
    monkeypatch.setattr(store, "_values_update", lambda: False)
    fill(big_cluster_api, rev=4)
    report = discovery.discover_cluster(big_cluster)
    assert report.rows_written == 2 * PER_KIND
    resources = DiscoveredResource.objects.filter(cluster=big_cluster)
    assert all(r.labels.get("rev") == "4" for r in resources)
    assert discovery.discover_cluster(big_cluster).rows_written == 0
    assert Connection.objects.filter(cluster=big_cluster).count() == 2
