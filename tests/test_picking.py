"""Choosing connections by name: the picker's options are what the user may see (or change,
when the form changes them), found by name or URL, and bad input is no error."""

import pytest
from django.test import Client
from django.urls import reverse

from connections.choices import Status
from environments.models import Environment, EnvironmentMembership
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

OPTIONS = reverse("connections:options")


def names(response) -> list[str]:
    import re

    return re.findall(r'<option value="\d+">([^<]*) — ', response.content.decode())


def test_options_are_the_users_own_found_by_name_or_url(owner, stranger, make_connection):
    make_connection(Status.CONNECTED, name="orders-db", url="http://10.0.0.5:5432/")
    make_connection(Status.CONNECTED, name="payments-api", url="http://pay.internal/")
    make_connection(Status.CONNECTED, name="orders-secret", owner=stranger)
    client = client_for(owner)
    assert names(client.get(OPTIONS, {"q": "orders"})) == ["orders-db"]
    assert names(client.get(OPTIONS, {"q": "pay.internal"})) == ["payments-api"]
    assert names(client.get(OPTIONS)) == ["orders-db", "payments-api"]
    assert "No connection you can see matches" in client.get(OPTIONS, {"q": "zzz"}).content.decode()


def test_a_viewer_is_offered_to_change_only_what_they_may_change(owner, make_connection):
    from django.contrib.auth import get_user_model

    viewer = get_user_model().objects.create_user("viewer", password="pw-viewer-123")
    env = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=env, user=viewer, role="viewer")
    env.connections.add(make_connection(Status.CONNECTED, name="shared-db"))
    client = client_for(viewer)
    assert names(client.get(OPTIONS, {"q": "shared"})) == ["shared-db"]
    assert names(client.get(OPTIONS, {"q": "shared", "may": "change"})) == []


def test_excluded_ids_and_bad_input_are_no_error(owner, make_connection):
    a = make_connection(Status.CONNECTED, name="a-svc")
    make_connection(Status.CONNECTED, name="b-svc")
    client = client_for(owner)
    assert names(client.get(OPTIONS, {"exclude": f"{a.pk},abc,99999999999999999999"})) == ["b-svc"]
    for q in ("\x00", "a" * 20000, "%_\\", "٣", "\r\nsvc"):
        assert client.get(OPTIONS, {"q": q, "may": "own"}).status_code == 200
    assert Client().get(OPTIONS).status_code == 302  # signed in only


def test_the_parent_is_chosen_by_name_not_typed_as_an_id(owner, make_connection):
    child = make_connection(Status.CONNECTED, name="web")
    parent = make_connection(Status.CONNECTED, name="db")
    page = client_for(owner).get(reverse("connections:detail", args=[child.pk])).content.decode()
    assert 'name="parent" size="6"' in page and 'pattern="[0-9]' not in page
    assert f'<option value="{parent.pk}">db — ' in page
    assert f'<option value="{child.pk}">' not in page  # never itself
    response = client_for(owner).post(
        reverse("connections:parents", args=[child.pk]), {"parent": parent.pk}
    )
    assert response.status_code == 302
    page = client_for(owner).get(reverse("connections:detail", args=[child.pk])).content.decode()
    assert f'<option value="{parent.pk}">' not in page  # already a parent


def test_the_page_never_names_a_parent_the_reader_may_not_see(owner, stranger, make_connection):
    """A parent owned by someone else (added by them, or by staff) is neither listed nor in
    the picker's excluded ids."""
    from connections.models import Dependency

    child = make_connection(Status.CONNECTED, name="web")
    hidden = make_connection(Status.CONNECTED, name="their-db", owner=stranger)
    Dependency.objects.create(child=child, parent=hidden)
    page = client_for(owner).get(reverse("connections:detail", args=[child.pk])).content.decode()
    assert "their-db" not in page
    assert f'"exclude": "{child.pk}"' in page
