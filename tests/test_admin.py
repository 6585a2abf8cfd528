"""The Django admin: read-only status, exactly the allowed transitions, no secret ever shown."""

import re

import pytest
from django.urls import reverse

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection
from credentials.models import Credential

pytestmark = pytest.mark.django_db

SECRET = "kube-token-SHOULD-NEVER-SHOW-81d2"


def offered(html: str) -> set[str]:
    return set(re.findall(r'name="_fsm_transition_to"\s+value="(\w+)"', html))


def change_url(conn):
    return reverse("admin:connections_connection_change", args=[conn.pk])


def form_data(conn, **extra):
    data = {
        "name": conn.name,
        "kind": conn.kind,
        "url": conn.url,
        "owner": conn.owner_id or "",
        "credential": conn.credential_id or "",
        "failure_threshold": conn.failure_threshold,
        "probe_interval": conn.probe_interval,
        "retry_interval": conn.retry_interval,
        "metadata": "{}",
    }
    data.update(extra)
    return data


@pytest.mark.parametrize(
    ("status", "resume", "expected"),
    [
        (Status.REGISTERED, "", {"connect", "start_maintenance", "ignore", "mark_deleted"}),
        (Status.CONNECTED, "", {"start_maintenance", "ignore", "mark_deleted"}),
        (Status.MAINTENANCE, Status.CONNECTED, {"end_maintenance", "mark_deleted"}),
        (Status.IGNORED, "", {"register", "mark_deleted"}),
        (Status.DISCONNECTED, "", {"ignore", "mark_deleted"}),
        (Status.NOT_FOUND, "", {"register", "mark_deleted"}),
        (Status.DELETED, "", set()),
    ],
)
def test_change_page_offers_exactly_the_allowed_user_transitions(
    status, resume, expected, admin_client, make_connection
):
    conn = make_connection(status, resume_status=resume)
    response = admin_client.get(change_url(conn))
    assert response.status_code == 200
    assert offered(response.content.decode()) == expected


def test_pressing_a_transition_applies_it_and_records_the_user(
    admin_client, admin_user, make_connection
):
    conn = make_connection(Status.CONNECTED)
    response = admin_client.post(
        change_url(conn), form_data(conn, _fsm_transition_to="start_maintenance"), follow=True
    )
    assert response.status_code == 200
    assert "is now Maintenance" in response.content.decode()
    conn = Connection.objects.get(pk=conn.pk)
    assert conn.status == Status.MAINTENANCE
    row = conn.history.get()
    assert (row.trigger, row.user, row.from_status) == (Trigger.USER, admin_user, Status.CONNECTED)
    # and the page now shows the timeline and only the way out of maintenance
    page = admin_client.get(change_url(conn)).content.decode()
    assert offered(page) == {"end_maintenance", "mark_deleted"}
    assert "State timeline" in page and "Maintenance" in page


def test_a_stale_transition_button_is_refused_with_a_message(admin_client, make_connection, owner):
    conn = make_connection(Status.REGISTERED)
    lifecycle.transition(conn, Status.IGNORED, trigger=Trigger.USER, user=owner)
    response = admin_client.post(
        change_url(conn), form_data(conn, _fsm_transition_to="connect"), follow=True
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "is Ignored: it cannot move to" in body
    assert Connection.objects.get(pk=conn.pk).status == Status.IGNORED


def test_status_is_read_only_in_the_change_form(admin_client, make_connection):
    conn = make_connection(Status.REGISTERED)
    response = admin_client.post(change_url(conn), form_data(conn, status="deleted", name="new"))
    assert response.status_code == 302
    conn = Connection.objects.get(pk=conn.pk)
    assert (conn.name, conn.status) == ("new", Status.REGISTERED)


def test_changelist_hides_tombstones_filters_and_searches(admin_client, make_connection, owner):
    alive = make_connection(Status.CONNECTED, name="prom-eu", kind="prometheus")
    make_connection(Status.REGISTERED, name="graf-us", kind="grafana")
    gone = make_connection(Status.REGISTERED, name="prom-old", kind="prometheus")
    lifecycle.transition(gone, Status.DELETED, trigger=Trigger.USER, user=owner)
    url = reverse("admin:connections_connection_changelist")

    def names(params):
        response = admin_client.get(url, params)
        return {c.name for c in response.context["cl"].result_list}

    assert names({}) == {"prom-eu", "graf-us"}
    assert names({"status": "deleted"}) == {"prom-old"}
    assert names({"kind": "prometheus"}) == {"prom-eu"}
    assert names({"q": "graf"}) == {"graf-us"}
    listing = admin_client.get(url).content.decode()
    assert "status-badge state-connected" in listing and "</span> Connected</span>" in listing
    assert alive.pk


def test_adding_in_the_admin_runs_the_reachability_check(admin_client, http_endpoint, dead_url):
    add = reverse("admin:connections_connection_add")
    base = {
        "kind": "http",
        "failure_threshold": 3,
        "probe_interval": 30,
        "retry_interval": 5,
        "metadata": "{}",
    }
    admin_client.post(add, {**base, "name": "up", "url": http_endpoint.url})
    admin_client.post(add, {**base, "name": "down", "url": dead_url})
    states = dict(Connection.objects.values_list("name", "status"))
    assert states == {"up": Status.REGISTERED, "down": Status.NOT_FOUND}

    duplicate = admin_client.post(add, {**base, "name": "twin", "url": http_endpoint.url + "/"})
    assert duplicate.status_code == 200
    assert "already tracked as" in duplicate.content.decode()
    assert Connection.objects.count() == 2


def test_bad_url_in_the_admin_gets_a_message_not_a_500(admin_client):
    add = reverse("admin:connections_connection_add")
    base = {
        "kind": "http",
        "failure_threshold": 3,
        "probe_interval": 30,
        "retry_interval": 5,
        "metadata": "{}",
    }
    base["name"] = "x"
    for url, message in [
        ("ftp://example.org", "Only http:// and https://"),
        ("http://", "no host"),
        ("http://host:99999", "Not a valid URL"),
    ]:
        response = admin_client.post(add, {**base, "url": url})
        assert response.status_code == 200
        assert message in response.content.decode()
    assert not Connection.objects.exists()


def test_credential_admin_never_shows_the_secret(admin_client, admin_user):
    add = reverse("admin:credentials_credential_add")
    response = admin_client.post(
        add,
        {"name": "cluster-token", "kind": "bearer_token", "owner": admin_user.pk, "secret": SECRET},
    )
    assert response.status_code == 302
    credential = Credential.objects.get()
    assert credential.get_secret() == {"token": SECRET}

    pages = [
        reverse("admin:credentials_credential_changelist"),
        reverse("admin:credentials_credential_change", args=[credential.pk]),
    ]
    for page in pages:
        body = admin_client.get(page).content.decode()
        assert SECRET not in body
        assert credential.secret_ciphertext not in body
    assert "stored encrypted" in admin_client.get(pages[1]).content.decode()

    # saving with the secret box left blank keeps the stored secret; a new one replaces it
    change = pages[1]
    form = {"name": "renamed", "kind": "bearer_token", "owner": admin_user.pk, "secret": ""}
    assert admin_client.post(change, form).status_code == 302
    credential.refresh_from_db()
    assert (credential.name, credential.get_secret()["token"]) == ("renamed", SECRET)
    assert admin_client.post(change, {**form, "secret": "replacement"}).status_code == 302
    credential.refresh_from_db()
    assert credential.get_secret()["token"] == "replacement"


def test_a_malformed_kubeconfig_in_the_admin_gets_a_clear_message(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:credentials_credential_add"),
        {"name": "kc", "kind": "kubeconfig", "owner": admin_user.pk, "secret": "clusters: ["},
    )
    assert response.status_code == 200
    assert "not valid YAML" in response.content.decode()
    assert not Credential.objects.exists()


def test_history_is_listed_read_only(admin_client, make_connection, owner):
    conn = make_connection(Status.REGISTERED)
    lifecycle.transition(conn, Status.CONNECTED, trigger=Trigger.USER, user=owner)
    url = reverse("admin:connections_connectiontransition_changelist")
    response = admin_client.get(url, {"trigger": "user"})
    assert response.status_code == 200
    assert [r.to_status for r in response.context["cl"].result_list] == [Status.CONNECTED]
    assert (
        admin_client.get(reverse("admin:connections_connectiontransition_add")).status_code == 403
    )


def test_credential_admin_does_not_echo_a_secret_after_an_error(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:credentials_credential_add"),
        {"name": "", "kind": "bearer_token", "owner": admin_user.pk, "secret": SECRET},
    )
    assert response.status_code == 200  # the form comes back with "name is required"
    assert SECRET not in response.content.decode()


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


def test_a_superuser_adds_an_environment_with_its_members_in_one_form(admin_client, owner):
    """The add page shows the members inline (there is no owner to ask yet) and keeps them."""
    from django.contrib.auth import get_user_model

    from environments.models import Environment

    member = get_user_model().objects.create_user("member-to-be", password="pw-member-123")
    add = reverse("admin:environments_environment_add")
    page = admin_client.get(add).content.decode()
    match = re.search(r'name="([\w-]+)-TOTAL_FORMS"', page)
    assert match, "no membership inline on the add page"
    prefix = match.group(1)
    response = admin_client.post(
        add,
        {
            "name": "staging",
            "description": "",
            "owner": owner.pk,
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-0-user": member.pk,
            f"{prefix}-0-role": "viewer",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    environment = Environment.objects.get(name="staging")
    assert list(environment.memberships.values_list("user__username", "role")) == [
        ("member-to-be", "viewer")
    ]
