"""The real ``kubernetes`` client against the in-process fake API server (no database)."""

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert

ADMIN = "admin-token"
LIMITED = "limited-token"
TIMEOUT = 2


@pytest.fixture
def kube_server():
    with FakeKubernetesAPI(tokens={ADMIN: "admin", LIMITED: "limited"}) as server:
        yield server


@pytest.fixture
def clients():
    made = []

    def make(cfg):
        api_client = k8s_config.new_client_from_config_dict(cfg)
        made.append(api_client)
        return api_client

    yield make
    for api_client in made:
        api_client.close()


def raw_get(kube_server, path, token=ADMIN):
    """GET with the standard library, to check exact bodies; returns (status, json)."""
    ctx = ssl.create_default_context(cadata=kube_server.ca_pem.decode())
    req = urllib.request.Request(kube_server.url + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=TIMEOUT) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_version_over_verified_tls(kube_server, clients):
    api_client = clients(kube_server.kubeconfig(ADMIN))
    info = k8s.VersionApi(api_client).get_code(_request_timeout=TIMEOUT)
    assert info.git_version == "v1.31.2"
    assert (info.major, info.minor, info.platform) == ("1", "31", "linux/amd64")
    assert kube_server.url.startswith("https://127.0.0.1:")
    assert kube_server.requests[-1][:2] in (("GET", "/version"), ("GET", "/version/"))


def test_other_ca_is_rejected(kube_server, clients):
    other_ca, _, _ = make_ca_and_cert()
    cfg = kube_server.kubeconfig(ADMIN)
    cfg["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        other_ca
    ).decode()
    api_client = clients(cfg)
    with pytest.raises((urllib3.exceptions.MaxRetryError, ApiException)) as exc_info:
        k8s.VersionApi(api_client).get_code(_request_timeout=TIMEOUT)
    assert "CERTIFICATE_VERIFY_FAILED" in str(exc_info.value)


def test_hostname_is_verified(clients):
    # A certificate valid only for "localhost" is refused when dialling 127.0.0.1 ...
    with FakeKubernetesAPI(
        tokens={ADMIN: "admin"}, tls=make_ca_and_cert(("localhost",))
    ) as kube_server:
        with pytest.raises((urllib3.exceptions.MaxRetryError, ApiException)) as exc_info:
            k8s.VersionApi(clients(kube_server.kubeconfig(ADMIN))).get_code(
                _request_timeout=TIMEOUT
            )
        assert "127.0.0.1" in str(exc_info.value)
        # ... and accepted under its own name (which resolves to the loopback address).
        cfg = kube_server.kubeconfig(ADMIN)
        cfg["clusters"][0]["cluster"]["server"] = f"https://localhost:{kube_server.port}"
        assert k8s.VersionApi(clients(cfg)).get_code(_request_timeout=TIMEOUT).major == "1"


def test_unknown_token_is_401(kube_server, clients):
    api_client = clients(kube_server.kubeconfig("nobody"))
    with pytest.raises(ApiException) as exc_info:
        k8s.CoreV1Api(api_client).list_namespace(_request_timeout=TIMEOUT)
    assert exc_info.value.status == 401
    assert json.loads(exc_info.value.body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert raw_get(kube_server, "/version", token=None)[0] == 401
    assert raw_get(kube_server, "/livez", token=None)[0] == 401


def test_forbidden_resource_is_403(kube_server, clients):
    kube_server.forbid("services")
    limited = clients(kube_server.kubeconfig(LIMITED))
    with pytest.raises(ApiException) as exc_info:
        k8s.CoreV1Api(limited).list_service_for_all_namespaces(_request_timeout=TIMEOUT)
    err = exc_info.value
    assert err.status == 403
    body = json.loads(err.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)
    assert body["message"] == (
        'services is forbidden: User "system:serviceaccount:default:limited" cannot list '
        'resource "services" in API group "" at the cluster scope'
    )
    with pytest.raises(ApiException) as exc_info:
        k8s.AppsV1Api(limited).list_namespaced_deployment("default", _request_timeout=TIMEOUT)
    assert exc_info.value.status == 403
    assert json.loads(exc_info.value.body)["message"].endswith(
        'in API group "apps" in the namespace "default"'
    )
    # Resources not in forbidden_resources stay readable; admin reads everything.
    assert k8s.CoreV1Api(limited).list_namespace(_request_timeout=TIMEOUT).items
    admin = clients(kube_server.kubeconfig(ADMIN))
    assert k8s.CoreV1Api(admin).list_service_for_all_namespaces(_request_timeout=TIMEOUT)
    kube_server.allow("services")
    assert k8s.CoreV1Api(limited).list_service_for_all_namespaces(_request_timeout=TIMEOUT)


def test_unknown_path_and_object_are_404(kube_server, clients):
    status, body = raw_get(kube_server, "/apis/batch/v1/jobs")
    assert status == 404
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "NotFound", 404)
    api_client = clients(kube_server.kubeconfig(ADMIN))
    with pytest.raises(ApiException) as exc_info:
        k8s.CoreV1Api(api_client).read_namespaced_service(
            "missing", "default", _request_timeout=TIMEOUT
        )
    assert exc_info.value.status == 404
    assert json.loads(exc_info.value.body)["message"] == 'services "missing" not found'


def test_health_endpoints(kube_server):
    ctx = ssl.create_default_context(cadata=kube_server.ca_pem.decode())
    for path in ("/livez", "/readyz"):
        req = urllib.request.Request(
            kube_server.url + path, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        with urllib.request.urlopen(req, context=ctx, timeout=TIMEOUT) as resp:
            assert (resp.status, resp.read()) == (200, b"ok")


def test_cluster_identity_and_objects(kube_server, clients):
    kube_server.add_node("node-a")
    kube_server.add_service(
        "shop",
        "web",
        {"app": "web"},
        [80, {"name": "metrics", "port": 9090, "targetPort": "metrics"}],
        type="LoadBalancer",
        external_ip="127.0.0.1",
    )
    kube_server.add_deployment("shop", "web", {"app": "web"}, "nginx:1.27", replicas=3, ports=[80])
    api_client = clients(kube_server.kubeconfig(ADMIN, namespace="shop"))
    core, apps = k8s.CoreV1Api(api_client), k8s.AppsV1Api(api_client)

    kube_system = core.read_namespace("kube-system", _request_timeout=TIMEOUT)
    assert kube_system.metadata.uid == kube_server.cluster_uid
    names = [ns.metadata.name for ns in core.list_namespace(_request_timeout=TIMEOUT).items]
    assert names == ["default", "kube-system", "shop"]

    (svc,) = core.list_namespaced_service("shop", _request_timeout=TIMEOUT).items
    assert (svc.metadata.name, svc.metadata.namespace, svc.metadata.labels) == (
        "web",
        "shop",
        {"app": "web"},
    )
    assert svc.spec.type == "LoadBalancer"
    assert [(p.name, p.port, p.target_port, p.protocol) for p in svc.spec.ports] == [
        ("tcp-80", 80, 80, "TCP"),
        ("metrics", 9090, "metrics", "TCP"),
    ]
    assert svc.spec.cluster_ip
    assert svc.status.load_balancer.ingress[0].ip == "127.0.0.1"
    assert svc.metadata.creation_timestamp is not None

    (dep,) = apps.list_deployment_for_all_namespaces(_request_timeout=TIMEOUT).items
    assert dep.spec.replicas == 3
    assert dep.spec.selector.match_labels == {"app": "web"}
    (container,) = dep.spec.template.spec.containers
    assert (container.image, container.ports[0].container_port) == ("nginx:1.27", 80)
    assert dep.status.ready_replicas == 3
    assert apps.read_namespaced_deployment("web", "shop", _request_timeout=TIMEOUT).kind == (
        "Deployment"
    )

    (node,) = core.list_node(_request_timeout=TIMEOUT).items
    assert node.status.node_info.kubelet_version == "v1.31.2"

    kube_server.remove_service("shop", "web")
    kube_server.remove_deployment("shop", "web")
    assert core.list_service_for_all_namespaces(_request_timeout=TIMEOUT).items == []
    assert apps.list_namespaced_deployment("shop", _request_timeout=TIMEOUT).items == []


def test_resource_version_grows_on_every_mutation(kube_server, clients):
    core = k8s.CoreV1Api(clients(kube_server.kubeconfig(ADMIN)))
    rv1 = int(core.list_service_for_all_namespaces().metadata.resource_version)
    kube_server.add_service("default", "a", {}, [80])
    rv2 = int(core.list_service_for_all_namespaces().metadata.resource_version)
    kube_server.add_deployment("default", "a", {}, "busybox")
    rv3 = int(core.list_service_for_all_namespaces().metadata.resource_version)
    kube_server.add_service("default", "a", {"v": "2"}, [81])  # replace: same uid, new version
    svc = core.read_namespaced_service("a", "default")
    assert rv1 < rv2 < rv3 < int(svc.metadata.resource_version)
    assert svc.metadata.labels == {"v": "2"}


def _all_pages(list_call, limit, **kwargs):
    pages, token = [], None
    while True:
        page = list_call(limit=limit, _continue=token, _request_timeout=TIMEOUT, **kwargs)
        pages.append(page)
        token = page.metadata._continue
        if not token:
            return pages


def test_pagination_of_250_services(kube_server, clients):
    for i in range(250):
        kube_server.add_service(f"ns-{i % 7}", f"svc-{i:03d}", {"i": str(i)}, [8000 + i])
    core = k8s.CoreV1Api(clients(kube_server.kubeconfig(ADMIN)))

    pages = _all_pages(core.list_service_for_all_namespaces, 100)

    assert [len(p.items) for p in pages] == [100, 100, 50]
    assert pages[-1].metadata._continue is None
    assert [p.metadata.remaining_item_count for p in pages] == [150, 50, None]
    keys = [(s.metadata.namespace, s.metadata.name) for p in pages for s in p.items]
    assert len(keys) == len(set(keys)) == 250
    assert keys == sorted(keys)
    assert {p.metadata.resource_version for p in pages} == {pages[0].metadata.resource_version}
    continues = [
        q.get("continue") for m, path, q in kube_server.requests if path == "/api/v1/services"
    ]
    assert continues[0] is None and all(continues[1:]) and len(continues) == 3


def test_namespaced_pagination(kube_server, clients):
    for i in range(30):
        kube_server.add_service("a", f"s{i:02d}", {}, [80])
        kube_server.add_service("b", f"s{i:02d}", {}, [80])
    core = k8s.CoreV1Api(clients(kube_server.kubeconfig(ADMIN)))
    pages = _all_pages(core.list_namespaced_service, 7, namespace="b")
    names = [s.metadata.name for p in pages for s in p.items]
    assert names == [f"s{i:02d}" for i in range(30)]
    assert {s.metadata.namespace for p in pages for s in p.items} == {"b"}


def test_continue_is_a_consistent_snapshot(kube_server, clients):
    for i in range(10):
        kube_server.add_service("default", f"s{i}", {}, [80])
    core = k8s.CoreV1Api(clients(kube_server.kubeconfig(ADMIN)))
    first = core.list_service_for_all_namespaces(limit=4)
    kube_server.add_service("default", "s9a", {}, [80])  # would sort inside the next pages
    kube_server.remove_service("default", "s8")
    rest = core.list_service_for_all_namespaces(limit=100, _continue=first.metadata._continue)
    names = [s.metadata.name for s in first.items + rest.items]
    assert names == [f"s{i}" for i in range(10)]
    assert rest.metadata.resource_version == first.metadata.resource_version
    fresh = core.list_service_for_all_namespaces()
    assert "s9a" in [s.metadata.name for s in fresh.items]
    assert int(fresh.metadata.resource_version) > int(first.metadata.resource_version)


def test_bad_and_expired_continue_tokens(kube_server, clients):
    for i in range(5):
        kube_server.add_service("default", f"s{i}", {}, [80])
    core = k8s.CoreV1Api(clients(kube_server.kubeconfig(ADMIN)))
    with pytest.raises(ApiException) as exc_info:
        core.list_service_for_all_namespaces(limit=2, _continue="not-a-token")
    assert exc_info.value.status == 400
    assert json.loads(exc_info.value.body)["reason"] == "BadRequest"

    token = core.list_service_for_all_namespaces(limit=2).metadata._continue
    kube_server.expire_continue_tokens()
    with pytest.raises(ApiException) as exc_info:
        core.list_service_for_all_namespaces(limit=2, _continue=token)
    assert exc_info.value.status == 410
    body = json.loads(exc_info.value.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Expired", 410)


def test_revoked_token_turns_into_401(kube_server, clients):
    kube_server.set_token("temp", "admin")
    version_api = k8s.VersionApi(clients(kube_server.kubeconfig("temp")))
    assert version_api.get_code(_request_timeout=TIMEOUT).git_version == "v1.31.2"
    kube_server.revoke_token("temp")
    with pytest.raises(ApiException) as exc_info:
        version_api.get_code(_request_timeout=TIMEOUT)
    assert exc_info.value.status == 401
    kube_server.set_token("temp", "limited")
    assert version_api.get_code(_request_timeout=TIMEOUT).git_version == "v1.31.2"


def test_server_down_and_back(kube_server, clients):
    version_api = k8s.VersionApi(clients(kube_server.kubeconfig(ADMIN)))
    assert version_api.get_code(_request_timeout=TIMEOUT)  # leaves a kept-alive connection
    url = kube_server.url

    kube_server.set_down(True)
    assert kube_server.is_down
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as exc_info:
        version_api.get_code(_request_timeout=TIMEOUT)
    assert isinstance(exc_info.value.reason, urllib3.exceptions.NewConnectionError)
    assert time.monotonic() - started < TIMEOUT

    kube_server.set_down(False)
    assert kube_server.url == url
    assert version_api.get_code(_request_timeout=TIMEOUT).git_version == "v1.31.2"


def test_concurrent_clients(kube_server, clients):
    for i in range(50):
        kube_server.add_deployment("default", f"d{i}", {"app": f"d{i}"}, "busybox")
    apps = k8s.AppsV1Api(clients(kube_server.kubeconfig(ADMIN)))

    def count(_):
        return len(apps.list_namespaced_deployment("default", _request_timeout=TIMEOUT).items)

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(count, range(40))) == {50}


def test_large_inventory_pages_stay_cheap(kube_server):
    for i in range(20_000):
        kube_server.add_service(f"ns-{i % 50}", f"svc-{i:05d}", {"app": "x"}, [80])
        kube_server.add_deployment(f"ns-{i % 50}", f"dep-{i:05d}", {"app": "x"}, "busybox")
    started = time.monotonic()
    seen, path = 0, "/apis/apps/v1/deployments?limit=500"
    while True:
        status, body = raw_get(kube_server, path)
        assert status == 200
        seen += len(body["items"])
        token = body["metadata"].get("continue")
        if not token:
            break
        path = f"/apis/apps/v1/deployments?limit=500&continue={token}"
    assert seen == 20_000
    assert time.monotonic() - started < 10
