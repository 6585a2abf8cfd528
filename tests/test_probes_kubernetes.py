"""The Kubernetes probe: the official client over TLS with a bearer token, against the
in-suite API server (tests/kube_api.py), and what its failures do to a connection."""

import pytest
import yaml

from connections.choices import Status, Trigger
from connections.models import Connection
from connections.probing import scheduling
from connections.probing.probes import check_reachability, probe_many
from connections.probing.probes import kubernetes as k8s_probe
from connections.probing.probes.kubernetes import encode_ca
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert

TOKEN, LIMITED = "admin-token-9c1e", "limited-token-77aa"


@pytest.fixture
def kube_server():
    with FakeKubernetesAPI(tokens={TOKEN: "admin", LIMITED: "limited"}) as server:
        yield server


def token_credential(token, owner=None, save=False, endpoint=None):
    credential = Credential(name=f"token-{token}", kind="bearer_token", owner=owner)
    credential.endpoints = [origin_of(endpoint)] if endpoint else []
    credential.set_secret({"token": token})
    if save:
        credential.save()
    return credential


def cluster(kube_server, credential, ca_pem=None, **fields):
    if credential is not None and credential.kind == "bearer_token" and not credential.endpoints:
        credential.endpoints = [origin_of(kube_server.url)]  # the owner bound it to this cluster
    return Connection(
        name="cluster",
        kind="kubernetes",
        url=kube_server.url,
        credential=credential,
        metadata={"certificate_authority_data": encode_ca(ca_pem or kube_server.ca_pem)},
        **fields,
    )


def test_probe_reads_version_and_cluster_identity(kube_server):
    outcome = check_reachability(cluster(kube_server, token_credential(TOKEN)))
    assert outcome.ok, outcome
    assert outcome.metadata["version"] == kube_server.git_version
    assert outcome.metadata["cluster_id"] == kube_server.cluster_uid
    assert outcome.metadata["livez"] == "ok"
    paths = [path.rstrip("/") for _, path, _ in kube_server.requests]
    assert paths[:3] == ["/version", "/livez", "/api/v1/namespaces/kube-system"]


def test_probe_works_from_a_kubeconfig_credential(kube_server):
    credential = Credential(name="kc", kind="kubeconfig")
    credential.set_secret({"kubeconfig": yaml.safe_dump(kube_server.kubeconfig(TOKEN))})
    conn = Connection(name="kc", kind="kubernetes", url=kube_server.url, credential=credential)
    outcome = check_reachability(conn)
    assert outcome.ok and outcome.metadata["version"] == kube_server.git_version


def test_rbac_limits_on_optional_reads_do_not_fail_the_probe(kube_server):
    kube_server.forbid("namespaces")
    outcome = check_reachability(cluster(kube_server, token_credential(LIMITED)))
    assert outcome.ok
    assert "cluster_id" not in outcome.metadata


def test_an_unknown_token_is_an_auth_failure(kube_server):
    outcome = check_reachability(cluster(kube_server, token_credential("revoked-or-expired")))
    assert (outcome.ok, outcome.error_class, outcome.status_code) == (False, "auth", 401)


def test_a_certificate_from_another_ca_is_a_tls_failure(kube_server):
    other_ca, _, _ = make_ca_and_cert()
    outcome = check_reachability(cluster(kube_server, token_credential(TOKEN), ca_pem=other_ca))
    assert (outcome.ok, outcome.error_class) == (False, "tls")


def test_an_api_server_that_is_down_is_a_connect_failure(kube_server):
    kube_server.set_down(True)
    outcome = check_reachability(cluster(kube_server, token_credential(TOKEN)))
    assert (outcome.ok, outcome.error_class) == (False, "refused")  # nothing listens
    assert outcome.latency_ms < 5000


def test_a_connection_without_credential_says_so(kube_server):
    outcome = check_reachability(cluster(kube_server, None))
    assert (outcome.ok, outcome.error_class) == (False, "invalid")
    assert "kubeconfig or token" in outcome.error


@pytest.mark.django_db
def test_a_revoked_token_disconnects_a_connected_cluster_at_once(
    kube_server, owner, make_connection
):
    conn = make_connection(
        Status.CONNECTED,
        kind="kubernetes",
        url=kube_server.url,
        credential=token_credential(TOKEN, owner, save=True, endpoint=kube_server.url),
        metadata={"certificate_authority_data": encode_ca(kube_server.ca_pem)},
        failure_threshold=5,
    )
    stats = scheduling.run_round()
    conn.refresh_from_db()
    assert (stats["ok"], conn.status) == (1, Status.CONNECTED), conn.last_probe_error
    assert conn.metadata["version"] == kube_server.git_version

    kube_server.revoke_token(TOKEN)
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=conn.last_probe_at)
    scheduling.run_round()
    conn.refresh_from_db()
    assert conn.status == Status.DISCONNECTED  # one probe, not the threshold of five
    lost = conn.history.get()
    assert (lost.trigger, lost.from_status) == (Trigger.PROBE, Status.CONNECTED)
    assert "refused the credential (HTTP 401)" in lost.reason


@pytest.mark.django_db
def test_one_kubeconfig_behind_many_connections_is_parsed_once(owner, monkeypatch):
    with FakeKubernetesAPI(tokens={"tok": "admin"}) as api:
        credential = Credential(name="kc", kind="kubeconfig", owner=owner)
        credential.set_secret({"kubeconfig": yaml.safe_dump(api.kubeconfig("tok"))})
        credential.save()
        parsed = []
        real = k8s_probe.parse_kubeconfig
        monkeypatch.setattr(
            k8s_probe, "parse_kubeconfig", lambda *a, **k: parsed.append(1) or real(*a, **k)
        )
        connections = [
            Connection(name=f"k{n}", kind="kubernetes", url=f"{api.url}/{n}", credential=credential)
            for n in range(20)
        ]
        outcomes = probe_many(connections)
    assert all(o.ok for o in outcomes), [o.summary for o in outcomes if not o.ok]
    assert len(parsed) == 1


@pytest.mark.django_db
def test_a_kubeconfig_pointing_at_the_metadata_address_is_refused(owner):
    credential = Credential(name="kc", kind="kubeconfig", owner=owner)
    credential.set_secret(
        {
            "kubeconfig": "clusters: [{name: c, cluster: {server: 'http://169.254.169.254'}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
        }
    )
    conn = Connection(
        name="k", kind="kubernetes", url="https://127.0.0.1:6443", credential=credential
    )
    outcome = check_reachability(conn)
    assert (outcome.ok, outcome.error_class) == (False, "bounds")
