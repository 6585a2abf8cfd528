"""Defects found in review, each pinned by the scenario that exposed it."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection
from connections.probing import scheduling
from connections.probing.outcomes import apply_outcomes
from connections.probing.probes import ProbeOutcome, check_reachability
from core.egress import refusal_for
from credentials.models import Credential

pytestmark = pytest.mark.django_db


def test_one_bad_result_does_not_block_its_batch(make_connection):
    bad = make_connection(Status.CONNECTED, name="bad")
    good = make_connection(Status.CONNECTED, name="good")
    token, ids = scheduling.claim_due(10)
    batch = {c.name: c for c in scheduling.load_claimed(token, ids)}
    weird = ProbeOutcome(
        ok=True, metadata={"version": float("nan"), "note": "a\x00b", "nested": {"x": 1}}
    )
    failed = ProbeOutcome(ok=False, error_class="http", error="bad \x00 byte")
    stats = apply_outcomes([(batch["bad"], weird), (batch["good"], failed)], claim=token)
    assert stats["applied"] == 2
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.metadata == {"note": "ab", "nested": "{'x': 1}"}
    assert good.last_probe_error == "http: bad  byte" and good.probe_claim is None


@pytest.mark.parametrize(
    ("user_entry", "message"),
    [
        ({"exec": {"command": "/bin/sh", "args": ["-c", "touch /tmp/pwned"]}}, "uses 'exec'"),
        ({"tokenFile": "/etc/shadow"}, "uses 'tokenFile'"),
        ({"auth-provider": {"name": "gcp"}}, "uses 'auth-provider'"),
    ],
)
def test_kubeconfigs_that_run_commands_or_read_files_are_refused(user_entry, message):
    from credentials.secrets import parse_kubeconfig

    text = (
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        f"users: [{{name: u, user: {user_entry!r}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    ).replace("'", '"')
    with pytest.raises(ValidationError, match=message):
        parse_kubeconfig(text)


@pytest.mark.parametrize("text", ["contexts: [{name: x, context: abc}]", "clusters: [{name: [1]}]"])
def test_oddly_shaped_kubeconfigs_get_a_message_not_a_crash(text):
    from credentials.secrets import parse_kubeconfig

    with pytest.raises(ValidationError):
        parse_kubeconfig(text)


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
    assert (outcome.ok, outcome.error_class) == (False, "refused")


def test_a_token_with_a_line_break_is_refused_and_never_echoed():
    credential = Credential(name="t", kind="bearer_token")
    with pytest.raises(ValidationError, match="control character") as refused:
        credential.set_secret({"token": "SEKRIT\nabc"})
    assert "SEKRIT" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["http://[::ffff:169.254.169.254]/", "http://[::ffff:a9fe:a9fe]/", "http://[fe80::1]/"],
)
def test_disguised_link_local_addresses_are_refused(url):
    assert refusal_for(url)


def test_a_staff_user_cannot_attach_another_users_credential(
    client, django_user_model, stranger, http_endpoint
):
    staff = django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.set(Permission.objects.filter(codename__endswith="_connection"))
    theirs = Credential(name="victim", kind="bearer_token", owner=stranger)
    theirs.set_secret({"token": "VICTIM-TOKEN"})
    theirs.save()
    client.force_login(staff)
    response = client.post(
        reverse("admin:connections_connection_add"),
        {
            "name": "x",
            "kind": "http",
            "url": http_endpoint.url,
            "credential": theirs.pk,
            "failure_threshold": 3,
            "probe_interval": 30,
            "metadata": "{}",
        },
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Connection.objects.exists()
    assert all(auth != "Bearer VICTIM-TOKEN" for _, auth in http_endpoint.requests)


def test_metadata_that_is_not_an_object_is_a_form_error(admin_client, http_endpoint):
    response = admin_client.post(
        reverse("admin:connections_connection_add"),
        {
            "name": "x",
            "kind": "http",
            "url": http_endpoint.url,
            "failure_threshold": 3,
            "probe_interval": 30,
            "metadata": "[1, 2]",
        },
    )
    assert response.status_code == 200 and "must be a JSON object" in response.content.decode()


def test_editing_the_url_drops_a_result_probed_against_the_old_one(make_connection):
    conn = make_connection(Status.REGISTERED, failure_threshold=3)
    Connection.objects.filter(pk=conn.pk).update(consecutive_failures=2)
    token, ids = scheduling.claim_due(10)
    in_flight = scheduling.load_claimed(token, ids)[0]
    edited = Connection.objects.get(pk=conn.pk)
    edited.url = "http://127.0.0.1:2/fixed"
    edited.save()
    failed = ProbeOutcome(ok=False, error_class="connect", error="old url down")
    stats = apply_outcomes([(in_flight, failed)], claim=token)
    assert stats["stale"] == 1
    conn.refresh_from_db()
    assert (conn.status, conn.consecutive_failures) == (Status.REGISTERED, 0)
    assert conn.url.endswith("/fixed") and not conn.history.exists()


def test_a_threshold_of_one_is_not_allowed(make_connection):
    conn = make_connection(Status.CONNECTED)
    conn.failure_threshold = 1
    with pytest.raises(ValidationError, match="failure_threshold"):
        conn.full_clean()


def test_a_users_transition_does_not_overwrite_a_claims_lease(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    loaded = Connection.objects.get(pk=conn.pk)
    token, _ = scheduling.claim_due(10)
    leased = Connection.objects.get(pk=conn.pk).next_probe_at
    lifecycle.transition(loaded, Status.IGNORED, trigger=Trigger.USER, user=owner)
    assert Connection.objects.get(pk=conn.pk).next_probe_at == leased


# ---- second review: the dashboard --------------------------------------------------------

from django.test import Client  # noqa: E402

from environments.models import Environment, EnvironmentMembership  # noqa: E402


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_table_shows_only_environments_the_user_may_see(owner, stranger, make_connection):
    conn = make_connection(Status.CONNECTED, name="shared-thing")
    hidden = Environment.objects.create(name="HIDDEN-ENV", owner=stranger)
    hidden.connections.add(conn)
    mine = Environment.objects.create(name="mine", owner=owner)
    mine.connections.add(conn)
    client = signed_in(owner)
    for params in ({}, {"sort": "environments"}, {"sort": "-environments"}):
        body = client.get(reverse("connections:list"), params).content.decode()
        assert "HIDDEN-ENV" not in body and "mine" in body


def test_a_duplicate_of_someone_elses_connection_is_not_named(owner, stranger, make_connection):
    make_connection(
        Status.MAINTENANCE, name="acme-prod-db", owner=stranger, url="http://10.9.9.9:8080"
    )
    response = signed_in(owner).post(
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
    client = signed_in(stranger)
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
    response = signed_in(owner).get(reverse("connections:list"), {"per_page": per_page})
    assert response.status_code == 200 and len(response.context["rows"]) == 50


@pytest.mark.parametrize("page", ["abc", "0", "-3", "99999"])
def test_any_page_number_answers(page, owner, make_connection):
    make_connection(Status.CONNECTED)
    assert signed_in(owner).get(reverse("connections:list"), {"page": page}).status_code == 200


def test_malformed_urls_and_nul_bytes_are_4xx(owner, make_connection):
    client = signed_in(owner)
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
    client = signed_in(owner)
    response = client.get(
        reverse("connections:list"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()
    assert "HX-Request" in response["Vary"]
