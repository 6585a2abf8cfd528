"""The Kubernetes probe: the official client over TLS with a bearer token, against the
in-suite API server (tests/kube_api.py), and what its failures do to a connection."""

import pytest
import yaml

from connections.choices import Status, Trigger
from connections.models import Connection
from connections.probing import scheduling
from connections.probing.probes import check_reachability
from connections.probing.probes.kubernetes import encode_ca
from credentials.bounds import origin_of
from credentials.models import Credential
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert

TOKEN, LIMITED = "admin-token-9c1e", "limited-token-77aa"


@pytest.fixture
def api():
    with FakeKubernetesAPI(tokens={TOKEN: "admin", LIMITED: "limited"}) as server:
        yield server


def token_credential(token, owner=None, save=False, endpoint=None):
    credential = Credential(name=f"token-{token}", kind="bearer_token", owner=owner)
    credential.endpoints = [origin_of(endpoint)] if endpoint else []
    credential.set_secret({"token": token})
    if save:
        credential.save()
    return credential


def cluster(api, credential, ca_pem=None, **fields):
    if credential is not None and credential.kind == "bearer_token" and not credential.endpoints:
        credential.endpoints = [origin_of(api.url)]  # the owner bound it to this cluster
    return Connection(
        name="cluster",
        kind="kubernetes",
        url=api.url,
        credential=credential,
        metadata={"certificate_authority_data": encode_ca(ca_pem or api.ca_pem)},
        **fields,
    )


def test_probe_reads_version_and_cluster_identity(api):
    outcome = check_reachability(cluster(api, token_credential(TOKEN)))
    assert outcome.ok, outcome
    assert outcome.metadata["version"] == api.git_version
    assert outcome.metadata["cluster_id"] == api.cluster_uid
    assert outcome.metadata["livez"] == "ok"
    paths = [path.rstrip("/") for _, path, _ in api.requests]
    assert paths[:3] == ["/version", "/livez", "/api/v1/namespaces/kube-system"]


def test_probe_works_from_a_kubeconfig_credential(api):
    credential = Credential(name="kc", kind="kubeconfig")
    credential.set_secret({"kubeconfig": yaml.safe_dump(api.kubeconfig(TOKEN))})
    conn = Connection(name="kc", kind="kubernetes", url=api.url, credential=credential)
    outcome = check_reachability(conn)
    assert outcome.ok and outcome.metadata["version"] == api.git_version


def test_rbac_limits_on_optional_reads_do_not_fail_the_probe(api):
    api.forbid("namespaces")
    outcome = check_reachability(cluster(api, token_credential(LIMITED)))
    assert outcome.ok
    assert "cluster_id" not in outcome.metadata


def test_an_unknown_token_is_an_auth_failure(api):
    outcome = check_reachability(cluster(api, token_credential("revoked-or-expired")))
    assert (outcome.ok, outcome.error_class, outcome.status_code) == (False, "auth", 401)


def test_a_certificate_from_another_ca_is_a_tls_failure(api):
    other_ca, _, _ = make_ca_and_cert()
    outcome = check_reachability(cluster(api, token_credential(TOKEN), ca_pem=other_ca))
    assert (outcome.ok, outcome.error_class) == (False, "tls")


def test_an_api_server_that_is_down_is_a_connect_failure(api):
    api.set_down(True)
    outcome = check_reachability(cluster(api, token_credential(TOKEN)))
    assert (outcome.ok, outcome.error_class) == (False, "connect")
    assert outcome.latency_ms < 5000


def test_a_connection_without_credential_says_so(api):
    outcome = check_reachability(cluster(api, None))
    assert (outcome.ok, outcome.error_class) == (False, "invalid")
    assert "kubeconfig or token" in outcome.error


@pytest.mark.django_db
def test_a_revoked_token_disconnects_a_connected_cluster_at_once(api, owner, make_connection):
    conn = make_connection(
        Status.CONNECTED,
        kind="kubernetes",
        url=api.url,
        credential=token_credential(TOKEN, owner, save=True, endpoint=api.url),
        metadata={"certificate_authority_data": encode_ca(api.ca_pem)},
        failure_threshold=5,
    )
    stats = scheduling.run_round()
    conn.refresh_from_db()
    assert (stats["ok"], conn.status) == (1, Status.CONNECTED), conn.last_probe_error
    assert conn.metadata["version"] == api.git_version

    api.revoke_token(TOKEN)
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=conn.last_probe_at)
    scheduling.run_round()
    conn.refresh_from_db()
    assert conn.status == Status.DISCONNECTED  # one probe, not the threshold of five
    lost = conn.history.get()
    assert (lost.trigger, lost.from_status) == (Trigger.PROBE, Status.CONNECTED)
    assert "authentication failure" in lost.reason and "401" in lost.reason
