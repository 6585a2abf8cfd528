"""Environments and credentials as the concept says: groups of connections and their
credentials, shared with members by role, acted on as a group."""

import os
import shutil
import subprocess

import pytest
from django.db import connection as db
from django.urls import reverse

from connections.choices import Status
from connections.models import Connection
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

SECRET = "plaintext-SECRET-9f3a77c1"


@pytest.fixture
def env(owner, make_connection):
    environment = Environment.objects.create(name="prod", owner=owner, description="production")
    environment.connections.add(
        make_connection(Status.CONNECTED, name="api"),
        make_connection(Status.REGISTERED, name="db"),
        make_connection(Status.IGNORED, name="old"),
    )
    return environment


@pytest.fixture
def secret_credential(owner):
    credential = Credential(name="prod token", kind="bearer_token", owner=owner)
    credential.set_secret({"token": SECRET})
    credential.save()
    return credential


def member(environment, user, role):
    return EnvironmentMembership.objects.create(environment=environment, user=user, role=role)


def states():
    return dict(Connection.all_objects.values_list("name", "status"))


def test_create_edit_and_list_environments(owner):
    client = client_for(owner)
    response = client.post(reverse("environments:add"), {"name": "staging", "description": "s"})
    staging = Environment.objects.get(name="staging")
    assert response["Location"] == reverse("environments:detail", args=[staging.pk])
    assert staging.owner == owner
    client.post(
        reverse("environments:edit", args=[staging.pk]), {"name": "stage", "description": ""}
    )
    staging.refresh_from_db()
    assert staging.name == "stage"
    assert client.post(reverse("environments:add"), {"name": "stage"}).status_code == 400
    page = client.get(reverse("environments:list")).content.decode()
    assert "stage" in page


def test_the_environment_page_shows_its_connections_by_state(env, owner):
    response = client_for(owner).get(reverse("environments:detail", args=[env.pk]))
    rows = [r["connection"].name for r in response.context["rows"]]
    assert rows == ["db", "api", "old"]  # registered, connected, ignored: grouped by state
    counts = {s["status"]: s["count"] for s in response.context["summary"]}
    assert (counts["connected"], counts["registered"], counts["ignored"]) == (1, 1, 1)
    fragment = client_for(owner).get(
        reverse("environments:detail", args=[env.pk]), HTTP_HX_REQUEST="true"
    )
    assert f'hx-get="/environments/{env.pk}/?' in fragment.content.decode()


def test_the_environment_list_counts_connections_per_state(env, owner):
    response = client_for(owner).get(reverse("environments:list"))
    (listed,) = response.context["environments"]
    assert {c["status"]: c["count"] for c in listed.state_counts} == {
        "connected": 1,
        "registered": 1,
        "ignored": 1,
    }


def test_a_group_transition_reports_what_changed_and_what_was_not_allowed(env, owner):
    client = client_for(owner)
    url = reverse("environments:transition", args=[env.pk])
    body = client.post(url, {"to": "maintenance"}, follow=True).content.decode()
    assert "Moved to Maintenance: 2 connection(s)" in body
    assert "&#x27;old&#x27; is Ignored: it cannot move to Maintenance" in body
    assert states() == {"api": "maintenance", "db": "maintenance", "old": "ignored"}
    client.post(url, {"to": "resume"})
    assert states() == {"api": "connected", "db": "registered", "old": "ignored"}
    assert client.post(url, {"to": "explode"}).status_code == 302  # a message, not a 500


def test_viewers_see_everything_and_change_nothing(env, owner, stranger, secret_credential):
    env.credentials.add(secret_credential)
    member(env, stranger, "viewer")
    client = client_for(stranger)
    page = client.get(reverse("environments:detail", args=[env.pk])).content.decode()
    assert "api" in page and "prod token" in page and SECRET not in page
    assert "Act on the whole environment" not in page
    credentials = client.get(reverse("credentials:list")).content.decode()
    assert "prod token" in credentials and SECRET not in credentials
    client.post(reverse("environments:transition", args=[env.pk]), {"to": "maintenance"})
    client.post(reverse("environments:edit", args=[env.pk]), {"name": "hijacked"})
    client.post(reverse("environments:members", args=[env.pk]), {"username": "x", "role": "editor"})
    assert states()["api"] == "connected"
    assert Environment.objects.get(pk=env.pk).name == "prod"


def test_editors_transition_assign_and_edit_but_do_not_manage_members(
    env, owner, stranger, django_user_model, make_connection
):
    member(env, stranger, "editor")
    extra = make_connection(Status.CONNECTED, name="mine", owner=stranger)
    client = client_for(stranger)
    client.post(reverse("environments:transition", args=[env.pk]), {"to": "maintenance"})
    assert states()["api"] == "maintenance"
    client.post(reverse("environments:connections", args=[env.pk]), {"connection": [extra.pk]})
    assert env.connections.filter(pk=extra.pk).exists()
    client.post(reverse("environments:edit", args=[env.pk]), {"name": "prod-eu"})
    assert Environment.objects.get(pk=env.pk).name == "prod-eu"
    third = django_user_model.objects.create_user("third", password="pw-third-1")
    client.post(
        reverse("environments:members", args=[env.pk]), {"username": "third", "role": "viewer"}
    )
    assert not env.memberships.filter(user=third).exists()
    client.post(reverse("environments:delete", args=[env.pk]))
    assert Environment.objects.filter(pk=env.pk).exists()


def test_members_are_added_by_username_and_removal_takes_access_away(env, owner, stranger):
    owner_client = client_for(owner)
    members = reverse("environments:members", args=[env.pk])
    body = owner_client.post(members, {"username": "nobody", "role": "viewer"}, follow=True)
    assert "There is no user &#x27;nobody&#x27;." in body.content.decode()
    owner_client.post(members, {"username": "stranger", "role": "viewer"})
    detail = reverse("environments:detail", args=[env.pk])
    connection = env.connections.get(name="api")
    stranger_client = client_for(stranger)
    assert stranger_client.get(detail).status_code == 200
    assert (
        stranger_client.get(reverse("connections:detail", args=[connection.pk])).status_code == 200
    )
    membership = env.memberships.get(user=stranger)
    owner_client.post(members, {"remove": membership.pk})
    assert stranger_client.get(detail).status_code == 404
    assert (
        stranger_client.get(reverse("connections:detail", args=[connection.pk])).status_code == 404
    )


def test_non_members_get_404_on_every_environment_url(env, stranger, secret_credential):
    client = client_for(stranger)
    assert client.get(reverse("environments:detail", args=[env.pk])).status_code == 404
    assert client.get(reverse("environments:edit", args=[env.pk])).status_code == 404
    for name in ("edit", "delete", "transition", "connections", "credentials", "members"):
        url = reverse(f"environments:{name}", args=[env.pk])
        assert client.post(url, {"to": "maintenance", "name": "x"}).status_code == 404, name
    assert Environment.objects.get(pk=env.pk).name == "prod"
    assert states()["api"] == "connected"
    assert (
        client.post(reverse("credentials:delete", args=[secret_credential.pk])).status_code == 404
    )


def test_deleting_an_environment_keeps_its_connections_and_credentials(
    env, owner, secret_credential
):
    env.credentials.add(secret_credential)
    client_for(owner).post(reverse("environments:delete", args=[env.pk]))
    assert not Environment.objects.filter(pk=env.pk).exists()
    assert Connection.objects.count() == 3 and Credential.objects.count() == 1


def test_assign_and_remove_from_the_connection_page(owner, make_connection):
    conn = make_connection(Status.CONNECTED, name="solo")
    a = Environment.objects.create(name="a", owner=owner)
    client = client_for(owner)
    page = reverse("connections:detail", args=[conn.pk])
    url = reverse("environments:connections", args=[a.pk])
    assert client.post(url, {"connection": conn.pk, "next": page})["Location"] == page
    assert list(conn.environments.all()) == [a]
    assert "Remove from a" in client.get(page).content.decode()
    client.post(url, {"connection": conn.pk, "remove": "1", "next": page})
    assert not conn.environments.exists()


def test_sharing_a_credential_through_an_environment(env, owner, stranger, secret_credential):
    client = client_for(owner)
    client.post(
        reverse("environments:credentials", args=[env.pk]), {"credential": secret_credential.pk}
    )
    assert list(env.credentials.all()) == [secret_credential]
    member(env, stranger, "editor")
    theirs = Credential(name="theirs", kind="api_key", owner=stranger)
    theirs.set_secret({"key": "k"})
    theirs.save()
    # an editor shares only their own credentials
    client_for(stranger).post(
        reverse("environments:credentials", args=[env.pk]), {"credential": secret_credential.pk}
    )
    assert Credential.objects.restrict(stranger).filter(pk=secret_credential.pk).exists()
    client.post(
        reverse("environments:credentials", args=[env.pk]),
        {"credential": secret_credential.pk, "remove": "1"},
    )
    assert not Credential.objects.restrict(stranger).filter(pk=secret_credential.pk).exists()


def test_credential_pages_create_replace_and_never_show_the_secret(owner):
    client = client_for(owner)
    response = client.post(
        reverse("credentials:add"),
        {"name": "grafana", "kind": "basic_auth", "username": "admin", "secret": SECRET},
    )
    assert response.status_code == 302
    credential = Credential.objects.get(name="grafana")
    assert credential.get_secret() == {"username": "admin", "password": SECRET}
    edit = reverse("credentials:edit", args=[credential.pk])
    assert SECRET not in client.get(edit).content.decode()
    client.post(edit, {"name": "grafana", "kind": "basic_auth", "username": "", "secret": ""})
    credential.refresh_from_db()
    assert credential.get_secret()["password"] == SECRET  # blank keeps the stored secret
    client.post(
        edit, {"name": "grafana", "kind": "basic_auth", "username": "ops", "secret": "new-pw"}
    )
    credential.refresh_from_db()
    assert credential.get_secret() == {"username": "ops", "password": "new-pw"}
    bad = client.post(
        reverse("credentials:add"), {"name": "kc", "kind": "kubeconfig", "secret": "contexts: []"}
    )
    assert bad.status_code == 400 and "has no contexts" in bad.content.decode()
    dup = client.post(
        reverse("credentials:add"), {"name": "grafana", "kind": "api_key", "secret": "x"}
    )
    assert dup.status_code == 400 and "already a credential so named" in dup.content.decode()


def test_a_credential_in_use_cannot_be_deleted(owner, make_connection, secret_credential):
    make_connection(Status.CONNECTED, name="uses-it", credential=secret_credential)
    client = client_for(owner)
    listing = client.get(reverse("credentials:list"))
    assert "1 connection" in listing.content.decode()
    body = client.post(reverse("credentials:delete", args=[secret_credential.pk]), follow=True)
    assert "is in use by 1 connection(s): uses-it" in body.content.decode()
    assert Credential.objects.filter(pk=secret_credential.pk).exists()
    from connections import lifecycle
    from connections.choices import Trigger

    conn = Connection.objects.get(name="uses-it")
    lifecycle.transition(conn, Status.DELETED, trigger=Trigger.USER, user=owner)
    client.post(reverse("credentials:delete", args=[secret_credential.pk]))
    assert not Credential.objects.filter(pk=secret_credential.pk).exists()


def test_no_page_and_no_admin_page_shows_a_secret(env, owner, admin_client, secret_credential):
    conn = env.connections.get(name="api")
    Connection.objects.filter(pk=conn.pk).update(credential=secret_credential)
    env.credentials.add(secret_credential)
    pages = [
        reverse("connections:list"),
        reverse("connections:detail", args=[conn.pk]),
        reverse("connections:add"),
        reverse("environments:list"),
        reverse("environments:detail", args=[env.pk]),
        reverse("credentials:list"),
        reverse("credentials:edit", args=[secret_credential.pk]),
    ]
    client = client_for(owner)
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert SECRET not in response.content.decode(), page
    admin_pages = [
        reverse("admin:credentials_credential_changelist"),
        reverse("admin:credentials_credential_change", args=[secret_credential.pk]),
        reverse("admin:connections_connection_change", args=[conn.pk]),
        reverse("admin:environments_environment_change", args=[env.pk]),
    ]
    for page in admin_pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert SECRET not in response.content.decode(), page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_dump_holds_no_plaintext_secret(owner):
    credential = Credential(name="dumped", kind="basic_auth", owner=owner)
    credential.set_secret({"username": "admin", "password": SECRET})
    credential.save()
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump (postgresql-client) is needed"
    settings_dict = db.settings_dict
    dump = subprocess.run(
        [
            pg_dump,
            "--host",
            settings_dict["HOST"] or "127.0.0.1",
            "--port",
            str(settings_dict["PORT"] or 5432),
            "--username",
            settings_dict["USER"],
            "--data-only",
            settings_dict["NAME"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PGPASSWORD": settings_dict.get("PASSWORD") or ""},
        check=True,
    ).stdout
    assert "dumped" in dump  # the dump does hold the credential row
    assert SECRET not in dump and "admin" not in dump.split("dumped", 1)[1].splitlines()[0]


def test_bulk_on_all_matching_rows_of_an_environment_page_stays_inside_it(
    env, owner, make_connection
):
    outside = make_connection(Status.CONNECTED, name="outside")
    response = client_for(owner).get(reverse("environments:detail", args=[env.pk]))
    query = response.context["query"]
    client_for(owner).post(
        reverse("connections:bulk"),
        {
            "action": "transition:maintenance",
            "all_matching": "1",
            "query": query,
            "confirm_count": response.context["total"],  # what the page showed
        },
    )
    assert states()["api"] == "maintenance"
    assert Connection.objects.get(pk=outside.pk).status == Status.CONNECTED


def test_bulk_on_all_matching_rows_of_a_hidden_environment_is_refused(
    env, owner, stranger, make_connection
):
    """A stranger's own connection put into the owner's environment: "all matching" within
    that environment, which the stranger cannot see, would tell which of his rows are in it."""
    his = make_connection(Status.CONNECTED, name="his", owner=stranger)
    env.connections.add(his)
    answer = client_for(stranger).post(
        reverse("connections:bulk"),
        {
            "action": "transition:maintenance",
            "all_matching": "1",
            "query": f"within_environment={env.pk}",
            "confirm_count": "1",
        },
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 400
    assert Connection.objects.get(pk=his.pk).status == Status.CONNECTED


# --- "leave blank to keep the stored secret" only where a secret is stored ------------------


def test_a_new_credential_is_not_told_to_keep_a_stored_secret(owner):
    client = client_for(owner)
    for response in (
        client.get(reverse("credentials:add")),
        client.post(reverse("credentials:add"), {"name": "n", "kind": "bearer_token"}),
        client.get(reverse("connections:add")),
        client.post(
            reverse("connections:add"),
            {"kind": "http", "name": "x", "url": "ftp://x", "new_credential_kind": "api_key"},
        ),
    ):
        body = response.content.decode().lower()
        assert "keep the stored" not in body and "blank to keep" not in body, body[:2000]


def test_editing_a_credential_keeps_its_title_and_help_after_an_error(owner):
    credential = Credential(name="token", kind="bearer_token", owner=owner)
    credential.set_secret({"token": "s3cret-value"})
    credential.save()
    client = client_for(owner)
    url = reverse("credentials:edit", args=[credential.pk])
    assert "blank to keep" in client.get(url).content.decode()
    refused = client.post(url, {"name": "token", "kind": "bearer_token", "endpoints_text": "x"})
    body = refused.content.decode()
    assert refused.status_code == 400
    assert "Edit token" in body and "New credential" not in body and "blank to keep" in body
