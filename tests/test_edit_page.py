"""The connection's edit page: the same rules as the add form and the API, who may use it, two
tabs saving over each other, tombstones, and bad input (always below 500, always kept)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from connections import editing, lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection, ProbeResult
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership
from tests.helpers import edit_url, form_of

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def prod(owner, django_user_model):
    """The owner's "prod" with a viewer and an editor, and "secret-env" of the owner alone."""
    environment = Environment.objects.create(name="prod", owner=owner)
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-1")
    editor = django_user_model.objects.create_user("editor", password="pw-editor-1")
    EnvironmentMembership.objects.create(environment=environment, user=viewer, role="viewer")
    EnvironmentMembership.objects.create(environment=environment, user=editor, role="editor")
    secret = Environment.objects.create(name="secret-env", owner=owner)
    return {"env": environment, "viewer": viewer, "editor": editor, "secret": secret}


# --- the happy path ---------------------------------------------------------------------------


def test_an_edit_saves_and_says_what_changed(owner, make_connection, prod):
    connection = make_connection(
        Status.REGISTERED, name="orders", metadata={"cluster_id": "uid-1", "team": "sre"}
    )
    lifecycle_rows = connection.history.count()
    client = signed_in(owner)
    response = client.post(
        edit_url(connection),
        form_of(
            client,
            connection,
            name="orders-api",
            url="http://127.0.0.1:2/orders",
            probe_interval=60,
            retry_interval=10,
            failure_threshold=4,
            environments=[prod["env"].pk],
        ),
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("connections:detail", args=[connection.pk])
    said = " ".join(str(m) for m in response.context["messages"])
    for fragment in (
        "name 'orders' → 'orders-api'",
        "URL 'http://127.0.0.1:1/",
        "probe interval 30 s → 60 s",
        "retry interval 5 s → 10 s",
        "failure threshold 3 → 4",
        "added to 'prod'",
        "The new endpoint is probed now; the state stays Registered",
    ):
        assert fragment in said, said
    connection = Connection.objects.get(pk=connection.pk)
    assert (connection.name, connection.url, connection.probe_interval) == (
        "orders-api",
        "http://127.0.0.1:2/orders",
        60,
    )
    assert (connection.retry_interval, connection.failure_threshold) == (10, 4)
    assert list(connection.environments.all()) == [prod["env"]]
    # as the API's edit: same state, no transition, the server-owned identity forgotten
    assert connection.status == Status.REGISTERED
    assert connection.history.count() == lifecycle_rows
    assert connection.metadata == {"team": "sre"}
    assert connection.next_probe_at <= timezone.now()


def test_the_connection_page_links_edit_for_those_who_may_change_it(owner, make_connection, prod):
    connection = make_connection(Status.REGISTERED)
    prod["env"].connections.add(connection)
    link = f'href="{edit_url(connection)}"'
    page = reverse("connections:detail", args=[connection.pk])
    for user in (owner, prod["editor"]):
        assert link in signed_in(user).get(page).content.decode()
    assert link not in signed_in(prod["viewer"]).get(page).content.decode()


def test_saving_nothing_changed_says_so(owner, make_connection):
    connection = make_connection(Status.CONNECTED, name="same")
    client = signed_in(owner)
    response = client.post(edit_url(connection), form_of(client, connection), follow=True)
    assert "'same': nothing changed." in [str(m) for m in response.context["messages"]]


def test_the_page_says_what_an_edit_does_in_a_state_that_is_not_probed(owner, make_connection):
    connection = make_connection(Status.NOT_FOUND)
    client = signed_in(owner)
    assert "A Not Found connection is not probed" in text(client.get(edit_url(connection)))
    response = client.post(
        edit_url(connection),
        form_of(client, connection, url="http://127.0.0.1:3/new"),
        follow=True,
    )
    said = " ".join(str(m) for m in response.context["messages"])
    assert "Register again checks the new endpoint" in said
    assert Connection.objects.get(pk=connection.pk).status == Status.NOT_FOUND


# --- the same rules as the API ------------------------------------------------------------------


def bounded_credential(owner, name="token", endpoints=("http://127.0.0.1:1",), kind="bearer_token"):
    credential = Credential(name=name, kind=kind, owner=owner)
    credential.endpoints = list(endpoints)
    credential.set_secret(
        {"token": "t-0123"} if kind == "bearer_token" else {"username": "u", "password": "p"}
    )
    credential.save()
    return credential


CASES = {
    "a URL with a password": (
        {"url": "http://u:hunter2@127.0.0.1:1/x"},
        "no user name or password",
    ),
    "not http": ({"url": "ftp://127.0.0.1/x"}, "Only http:// and https://"),
    "no host": ({"url": "http:///x"}, "no host name"),
    "a threshold of one": ({"failure_threshold": 1}, "greater than or equal to 2"),
    "an interval too short": ({"probe_interval": 4}, "greater than or equal to 5"),
    "an interval too long": ({"probe_interval": 86401}, "less than or equal to 86400"),
    "a name too long": ({"name": "n" * 201}, "200 characters"),
    "out of the credential's bounds": (
        {"url": "http://127.0.0.2:1/x"},
        "may be sent only to http://127.0.0.1:1",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_what_the_api_refuses_the_page_refuses(case, owner, make_connection):
    credential = bounded_credential(owner)
    connection = make_connection(Status.REGISTERED, credential=credential)
    change, message = CASES[case]
    api = APIClient()
    api.force_login(owner)
    refused = api.patch(f"/api/connections/{connection.pk}/", change, format="json")
    assert refused.status_code == 400 and message in refused.content.decode(), refused.content
    client = signed_in(owner)
    page = client.post(edit_url(connection), form_of(client, connection, **change))
    assert page.status_code == 400 and message in page.content.decode()
    assert "hunter2" not in page.content.decode()  # a typed password is never sent back
    stored = Connection.objects.get(pk=connection.pk)
    assert (stored.url, stored.name) == (connection.url, connection.name)


def test_a_credential_of_a_kind_the_connection_does_not_take_is_refused_by_both(
    owner, make_connection
):
    connection = make_connection(
        Status.REGISTERED, kind="remote_provider", url="http://127.0.0.1:1/g"
    )
    basic = bounded_credential(owner, name="basic", kind="basic_auth")
    api = APIClient()
    api.force_login(owner)
    refused = api.patch(
        f"/api/connections/{connection.pk}/", {"credential": basic.pk}, format="json"
    )
    assert refused.status_code == 400 and "connection takes" in refused.content.decode()
    client = signed_in(owner)
    page = client.post(edit_url(connection), form_of(client, connection, credential=basic.pk))
    assert page.status_code == 400 and "connection takes" in page.content.decode()


def test_a_duplicate_url_gets_the_add_forms_message_and_never_names_a_hidden_one(
    owner, stranger, make_connection
):
    mine = make_connection(Status.REGISTERED, name="mine", url="http://127.0.0.1:1/a")
    make_connection(Status.REGISTERED, name="twin", url="http://127.0.0.1:1/b")
    make_connection(
        Status.REGISTERED, name="hidden-one", url="http://127.0.0.1:1/c", owner=stranger
    )
    client = signed_in(owner)
    add = client.post(
        reverse("connections:add"),
        {
            "kind": "http",
            "name": "x",
            "url": "http://127.0.0.1:1/b/",
            "failure_threshold": 3,
            "probe_interval": 30,
        },
    )
    own = client.post(edit_url(mine), form_of(client, mine, url="http://127.0.0.1:1/b/"))
    assert own.status_code == add.status_code == 400
    assert "already tracked as &#x27;twin&#x27; (Registered)" in own.content.decode()
    assert "already tracked as &#x27;twin&#x27;" in add.content.decode()
    theirs = client.post(edit_url(mine), form_of(client, mine, url="HTTP://127.0.0.1:1/c"))
    body = theirs.content.decode()
    assert theirs.status_code == 400 and "already tracked by another user" in body
    assert "hidden-one" not in body
    api = APIClient()
    api.force_login(owner)
    refused = api.patch(
        f"/api/connections/{mine.pk}/", {"url": "http://127.0.0.1:1/c"}, format="json"
    )
    assert "already tracked by another user" in refused.content.decode()


# --- who may --------------------------------------------------------------------------------


def test_who_may_edit(owner, stranger, make_connection, prod, admin_user):
    connection = make_connection(Status.REGISTERED, name="shared-one")
    prod["env"].connections.add(connection)
    url = edit_url(connection)
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    for method in ("get", "post"):
        assert getattr(signed_in(stranger), method)(url).status_code == 404
    viewer = signed_in(prod["viewer"])
    shown = viewer.get(url)
    assert shown.status_code == 403 and "You may view" in text(shown)
    assert 'name="version"' not in text(shown)
    posted = viewer.post(url, {"name": "hijacked"})
    assert posted.status_code == 403
    assert Connection.objects.get(pk=connection.pk).name == "shared-one"
    for user in (prod["editor"], owner, admin_user):
        client = signed_in(user)
        response = client.post(url, form_of(client, connection, name=f"by-{user.username}"))
        assert response.status_code == 302, text(response)[:2000]
        assert Connection.objects.get(pk=connection.pk).name == f"by-{user.username}"


def test_an_editor_changes_only_the_environments_they_may_change(owner, make_connection, prod):
    connection = make_connection(Status.REGISTERED)
    prod["env"].connections.add(connection)
    prod["secret"].connections.add(connection)
    staging = Environment.objects.create(name="staging", owner=prod["editor"])
    client = signed_in(prod["editor"])
    page = client.get(edit_url(connection)).content.decode()
    assert "secret-env" not in page
    client.post(edit_url(connection), form_of(client, connection, environments=[staging.pk]))
    assert set(connection.environments.all()) == {staging, prod["secret"]}


def test_a_credential_the_editor_may_not_use_stays_attached_and_is_never_shown(
    owner, make_connection, prod
):
    credential = bounded_credential(owner, name="owners-token")
    connection = make_connection(Status.REGISTERED, credential=credential)
    prod["env"].connections.add(connection)  # the credential is not shared into prod
    client = signed_in(prod["editor"])
    page = client.get(edit_url(connection)).content.decode()
    assert "owners-token" in page and "t-0123" not in page
    kept = client.post(edit_url(connection), form_of(client, connection, name="renamed"))
    assert kept.status_code == 302
    assert Connection.objects.get(pk=connection.pk).credential == credential
    moved = client.post(
        edit_url(connection), form_of(client, connection, url="http://127.0.0.1:1/elsewhere")
    )
    assert moved.status_code == 400 and "You may not use this credential" in moved.content.decode()


# --- two tabs ---------------------------------------------------------------------------------


def test_a_second_tab_does_not_silently_undo_the_first(owner, make_connection):
    connection = make_connection(Status.REGISTERED, name="api")
    client = signed_in(owner)
    first = form_of(client, connection)
    second = form_of(client, connection)
    assert client.post(edit_url(connection), {**first, "name": "api-v2"}).status_code == 302
    stale = client.post(
        edit_url(connection), {**second, "url": "http://127.0.0.1:5/moved", "probe_interval": 90}
    )
    body = text(stale)
    assert stale.status_code == 409
    assert "Someone saved changes" in body and "name is now &#x27;api-v2&#x27;" in body
    assert 'value="http://127.0.0.1:5/moved"' in body and 'value="90"' in body  # theirs, kept
    stored = Connection.objects.get(pk=connection.pk)
    assert (stored.name, stored.probe_interval) == ("api-v2", 30)
    # saving again from the page that said so is a deliberate choice: it applies
    again = dict(stale.context["form"].data.items())
    assert client.post(edit_url(connection), again).status_code == 302
    stored = Connection.objects.get(pk=connection.pk)
    assert (stored.name, stored.url, stored.probe_interval) == (
        "api",
        "http://127.0.0.1:5/moved",
        90,
    )


def test_probes_and_state_changes_meanwhile_are_not_a_conflict(owner, make_connection):
    connection = make_connection(Status.REGISTERED)
    client = signed_in(owner)
    data = form_of(client, connection, name="renamed")
    Connection.objects.filter(pk=connection.pk).update(
        last_probe_at=timezone.now(), updated_at=timezone.now(), metadata={"version": "2"}
    )
    ProbeResult.objects.create(connection=connection, ok=True)
    lifecycle.transition(connection, Status.CONNECTED, trigger=Trigger.USER, user=owner)
    assert client.post(edit_url(connection), data).status_code == 302
    stored = Connection.objects.get(pk=connection.pk)
    assert (stored.name, stored.status, stored.metadata) == (
        "renamed",
        "connected",
        {"version": "2"},
    )


def test_a_membership_changed_elsewhere_meanwhile_is_not_undone(owner, make_connection, prod):
    connection = make_connection(Status.REGISTERED)
    staging = Environment.objects.create(name="staging", owner=owner)
    prod["env"].connections.add(connection)
    client = signed_in(owner)
    data = form_of(client, connection, environments=[prod["env"].pk, staging.pk])
    prod["env"].connections.remove(connection)  # another tab (or the environment page)
    prod["secret"].connections.add(connection)
    response = client.post(edit_url(connection), data, follow=True)
    said = " ".join(str(m) for m in response.context["messages"])
    assert "added to 'staging'" in said and "prod" not in said
    # only what this page ticked was applied: prod stays removed, secret-env stays added
    assert set(connection.environments.all()) == {staging, prod["secret"]}


# --- tombstones -------------------------------------------------------------------------------


def test_a_deleted_connection_cannot_be_edited(owner, make_connection):
    connection = make_connection(Status.REGISTERED, name="gone")
    client = signed_in(owner)
    data = form_of(client, connection, name="back")
    lifecycle.transition(connection, Status.DELETED, trigger=Trigger.USER, user=owner)
    deleted_meanwhile = client.post(edit_url(connection), data)
    assert deleted_meanwhile.status_code == 409 and "is deleted" in text(deleted_meanwhile)
    shown = client.get(edit_url(connection))
    assert shown.status_code == 409 and 'name="version"' not in text(shown)
    assert Connection.all_objects.get(pk=connection.pk).name == "gone"
    page = client.get(reverse("connections:detail", args=[connection.pk])).content.decode()
    assert f'href="{edit_url(connection)}"' not in page


# --- bad input --------------------------------------------------------------------------------

BAD = {
    "letters for a number": ({"probe_interval": "abc"}, "Enter a whole number"),
    "a huge number": ({"probe_interval": "9" * 5000}, "Enter a whole number"),
    "an exponent": ({"failure_threshold": "1e999"}, "Enter a whole number"),
    "a NUL in the name": ({"name": "a\x00b"}, "Null characters are not allowed"),
    "a NUL in the URL": ({"url": "http://127.0.0.1:1/\x00"}, "Null characters are not allowed"),
    "a huge URL": ({"url": "http://127.0.0.1:1/" + "p" * 10000}, "at most 500 characters"),
    "a credential id too big": ({"credential": "9" * 30}, "Select a valid choice"),
    "an environment id too big": ({"environments": ["9" * 30]}, "is not a valid value"),
    "an environment that is not one": ({"environments": ["-1"]}, "is not a valid value"),
    "no version": ({"version": ""}, "This field is required"),
    "a forged version": ({"version": "eyJuYW1lIjoieCJ9:1:abc"}, "damaged or out of date"),
    "a damaged list of shown environments": ({"environments_shown": "1 x"}, "form is damaged"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_a_400_that_keeps_what_was_typed(case, owner, make_connection):
    connection = make_connection(Status.REGISTERED, name="kept")
    client = signed_in(owner)
    change, message = BAD[case]
    data = form_of(client, connection, **{"name": "typed-name", **change})
    response = client.post(edit_url(connection), data)
    body = response.content.decode()
    assert response.status_code == 400 and message in body, body[:3000]
    if case != "a NUL in the name":
        assert 'value="typed-name"' in body
    assert Connection.objects.get(pk=connection.pk).name == "kept"


def test_a_missing_field_or_a_list_where_one_value_is_expected_is_a_400(owner, make_connection):
    connection = make_connection(Status.REGISTERED)
    client = signed_in(owner)
    data = form_of(client, connection)
    del data["url"]
    assert client.post(edit_url(connection), data).status_code == 400
    empty = client.post(edit_url(connection), {})
    assert empty.status_code == 400 and "This field is required" in empty.content.decode()
    doubled = {**form_of(client, connection), "probe_interval": ["60", "x"]}
    assert client.post(edit_url(connection), doubled).status_code in (302, 400)


HOSTILE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "0", "-1", "1e999", "NaN", "9" * 40, "\x00", "http://[::1", " 30 "]),
    st.integers(-(10**30), 10**30).map(str),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_values_with_a_valid_version_stay_below_500(owner, make_connection, data):
    connection = Connection.objects.filter(name="fuzzed").first() or make_connection(
        Status.REGISTERED, name="fuzzed"
    )
    client = signed_in(owner)
    form = form_of(client, connection)
    fields = [
        "name",
        "url",
        "credential",
        "environments",
        "failure_threshold",
        "probe_interval",
        "retry_interval",
        "environments_shown",
    ]
    for name in data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=4, unique=True)):
        form[name] = data.draw(HOSTILE, label=name)
    response = client.post(edit_url(connection), form)
    assert response.status_code in (302, 400), response.content[:500]
    Connection.objects.filter(pk=connection.pk).update(name="fuzzed")


def test_the_snapshot_is_only_what_a_user_edits(owner, make_connection):
    connection = make_connection(Status.REGISTERED)
    seen = editing.snapshot(connection)
    assert editing.read_snapshot(editing.sign_snapshot(seen)) == seen
    assert editing.read_snapshot("x" * 100) is None and editing.read_snapshot("") is None
    connection.last_probe_at = timezone.now() - timedelta(seconds=1)
    connection.consecutive_failures = 2
    assert editing.changed_since(seen, editing.snapshot(connection)) == []
    connection.retry_interval = 9
    assert editing.changed_since(seen, editing.snapshot(connection)) == ["retry_interval"]
