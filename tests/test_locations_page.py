"""The locations page: every signed-in user reads each location's state (online, stale since
when, no worker yet, from the workers' heartbeats), its figures and how many connections chose
it; staff add locations (bad names refused, nothing made) and remove them (a confirmation
step; the history stays)."""

import html
import re
from datetime import timedelta

import pytest
from django.db import connection as db
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connections.models import Location, LocationWorker, ProbeResult
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

LIST = reverse("locations:list")
ADD = reverse("locations:add")
LOGIN = reverse("login")
NAME_RULE = "A location's name has 1 to 40 of a–z, 0–9 and -"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "sam-staff", password="pw-staff-123", is_staff=True
    )


def remove_url(location) -> str:
    return reverse("locations:remove", args=[location.pk])


def text(response) -> str:
    """The page as a reader sees it: the tags gone, the spaces folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def row_of(response, name: str) -> str:
    """The text of the table row of location ``name``."""
    found = re.search(
        rf'<tr data-location="{re.escape(name)}">(.*?)</tr>', response.content.decode(), re.S
    )
    assert found, f"no row for {name}"
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))))


def worker(location, heartbeat_at, node="w1@host", **figures):
    return LocationWorker.objects.create(
        location=location, node=node, heartbeat_at=heartbeat_at, **figures
    )


# --- who may -----------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in():
    location = Location.objects.create(name="eu-west")
    client = Client()
    for response in (
        client.get(LIST),
        client.post(ADD, {"name": "us-east"}),
        client.get(remove_url(location)),
        client.post(remove_url(location), {"confirm": "yes"}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(f"{LOGIN}?next=")
    assert list(Location.objects.values_list("name", flat=True)) == ["eu-west"]


def test_a_user_who_is_not_staff_reads_the_page_but_cannot_add_or_remove(owner):
    location = Location.objects.create(name="eu-west", description="Frankfurt")
    client = client_for(owner)
    page = client.get(LIST)
    assert page.status_code == 200
    assert "eu-west" in text(page) and "Frankfurt" in text(page)
    body = page.content.decode()
    assert ADD not in body and remove_url(location) not in body  # nothing offered
    assert "celery -A meshplay" not in body  # the worker's command is for those who run them
    for response in (
        client.post(ADD, {"name": "us-east"}),
        client.get(remove_url(location)),
        client.post(remove_url(location), {"confirm": "yes"}),
        client.post(reverse("locations:remove", args=[location.pk + 1000]), {"confirm": "yes"}),
    ):
        assert response.status_code == 403
        assert "Not allowed" in text(response)
    assert list(Location.objects.values_list("name", flat=True)) == ["eu-west"]


def test_the_header_links_to_the_page_for_everyone_signed_in(owner, staff):
    link = f'href="{LIST}"'
    assert link in client_for(owner).get(reverse("overview")).content.decode()
    assert link in client_for(staff).get(reverse("overview")).content.decode()
    assert link not in Client().get(LOGIN).content.decode()
    current = client_for(owner).get(LIST).content.decode()
    assert re.search(rf'<a href="{LIST}" aria-current="page">', current)


def test_a_deactivated_staff_member_may_not_add(staff):
    client = client_for(staff)
    staff.__class__.objects.filter(pk=staff.pk).update(is_active=False)
    assert client.post(ADD, {"name": "eu-west"}).status_code == 302  # signed out
    assert not Location.objects.exists()


# --- adding ------------------------------------------------------------------------------------


def test_staff_add_a_location_and_are_shown_its_worker_command(staff):
    client = client_for(staff)
    response = client.post(ADD, {"name": "eu-west", "description": "Frankfurt"})
    assert response.status_code == 302 and response["Location"] == LIST
    location = Location.objects.get()
    assert (location.name, location.description) == ("eu-west", "Frankfurt")
    page = client.get(LIST)
    assert "Location 'eu-west' added" in text(page)
    command = (
        "PROBE_LOCATION=eu-west celery -A meshplay worker -Q probes.eu-west --pool prefork "
        "-n eu-west@%h"
    )
    assert f'<pre tabindex="0"><code>{command}</code></pre>' in page.content.decode()
    assert "no worker yet" in row_of(page, "eu-west")


@pytest.mark.parametrize(
    "name",
    [
        "EU",
        "eu_west",
        "-x",
        "x-",
        "x" * 41,
        "eu-west\r\n",
        "eu\nwest",
        " eu-west",
        "eu-\u0663",  # an Arabic-Indic digit three
        "\u0661\u0662",
        "ｅｕ",  # fullwidth letters
        "eu\x00west",
    ],
)
def test_a_bad_name_is_refused_with_the_rule_and_nothing_is_made(staff, name):
    response = client_for(staff).post(ADD, {"name": name, "description": "x"})
    assert response.status_code == 400
    assert NAME_RULE in text(response)
    assert "The location was not added" in text(response)
    assert not Location.objects.exists()


def test_an_empty_name_is_asked_for(staff):
    response = client_for(staff).post(ADD, {"name": "", "description": ""})
    assert response.status_code == 400
    assert "This field is required." in text(response)
    assert not Location.objects.exists()


@pytest.mark.parametrize(
    ("description", "said"),
    [
        ("Frankfurt\r\nsecond line", "One line, please"),
        ("a" * 201, "at most 200 characters"),
        ("nul\x00", "Null characters are not allowed"),
    ],
)
def test_a_bad_description_is_refused(staff, description, said):
    response = client_for(staff).post(ADD, {"name": "eu-west", "description": description})
    assert response.status_code == 400
    assert said in text(response)
    assert not Location.objects.exists()


def test_a_name_in_use_is_refused(staff):
    Location.objects.create(name="eu-west", description="first")
    response = client_for(staff).post(ADD, {"name": "eu-west", "description": "second"})
    assert response.status_code == 400
    assert "There is a location named 'eu-west' already." in text(response)
    assert list(Location.objects.values_list("description", flat=True)) == ["first"]


def test_a_get_on_add_is_not_allowed(staff):
    assert client_for(staff).get(ADD).status_code == 405


# --- removing ----------------------------------------------------------------------------------


def test_removing_asks_first_then_keeps_the_history(staff, make_connection):
    west = Location.objects.create(name="eu-west")
    Location.objects.create(name="us-east")
    connection = make_connection("connected")
    connection.locations.add(west)
    result = ProbeResult.objects.create(connection=connection, ok=True, location=west)
    client = client_for(staff)

    asked = client.get(remove_url(west))
    assert asked.status_code == 200
    said = text(asked)
    assert "Remove the location eu-west?" in said
    assert "1 connection chose it" in said and "History is kept" in said
    assert 'name="confirm" value="yes"' in asked.content.decode()

    unconfirmed = client.post(remove_url(west))
    assert unconfirmed.status_code == 400
    assert "Confirm with the Remove button below." in text(unconfirmed)
    assert Location.objects.filter(pk=west.pk).exists()

    removed = client.post(remove_url(west), {"confirm": "yes"})
    assert removed.status_code == 302 and removed["Location"] == LIST
    assert not Location.objects.filter(pk=west.pk).exists()
    result.refresh_from_db()  # the result stays as it was (the table is never rewritten)
    assert result.location_id == west.pk
    connection.refresh_from_db()
    assert list(connection.locations.all()) == []
    page = client.get(LIST)
    assert "Location 'eu-west' removed" in text(page)
    assert "us-east" in text(page) and 'data-location="eu-west"' not in page.content.decode()


def test_removing_the_last_location_says_probing_is_from_one_place_again(staff):
    west = Location.objects.create(name="eu-west")
    client = client_for(staff)
    assert "It is the last location" in text(client.get(remove_url(west)))
    client.post(remove_url(west), {"confirm": "yes"})
    page = client.get(LIST)
    assert "No location is left" in text(page)
    assert "everything is probed from one implicit location" in text(page)


def test_removing_an_unknown_location_is_a_404(staff):
    west = Location.objects.create(name="eu-west")
    client = client_for(staff)
    gone = reverse("locations:remove", args=[west.pk + 1000])
    assert client.get(gone).status_code == 404
    assert client.post(gone, {"confirm": "yes"}).status_code == 404
    assert client.get("/locations/9999999999999999999/remove/").status_code == 404
    assert Location.objects.count() == 1


# --- the page ----------------------------------------------------------------------------------


def test_the_states_come_from_the_heartbeats_and_the_stale_setting(staff, settings):
    settings.LOCATION_STALE_AFTER = 120
    now = timezone.now()
    online = Location.objects.create(name="eu-west")
    recent = Location.objects.create(name="eu-north")
    stale = Location.objects.create(name="us-east")
    Location.objects.create(name="ap-south")
    worker(online, now, probes_per_minute=42.4, lag_seconds=1.5)
    worker(online, now - timedelta(seconds=5), node="w2@host", probes_per_minute=10)
    worker(online, now - timedelta(hours=1), node="w3@old")  # stale: not counted
    worker(recent, now - timedelta(seconds=100))  # within LOCATION_STALE_AFTER
    hour_ago = now - timedelta(hours=1)
    worker(stale, hour_ago)

    page = client_for(staff).get(LIST)
    assert page.status_code == 200
    west = row_of(page, "eu-west")
    assert "online" in west
    assert re.search(r"online 2 52 1\.5 s 0 connections", west), west  # 52.4 a minute
    assert "online" in row_of(page, "eu-north")
    east = row_of(page, "us-east")
    assert f"stale since {timezone.localtime(hour_ago):%Y-%m-%d %H:%M:%S}" in east
    assert re.search(r"stale since \S+ \S+ 0 — — 0 connections", east), east
    assert "no worker yet" in row_of(page, "ap-south")
    body = page.content.decode()
    assert '<span class="tag ok">' in body and '<span class="tag warn">' in body
    assert "LOCATION_STALE_AFTER" not in body and "in the last 120 s" in text(page)

    settings.LOCATION_STALE_AFTER = 35
    assert "stale since" in row_of(client_for(staff).get(LIST), "eu-north")


def test_the_connections_count_is_of_those_the_reader_may_see(
    staff, owner, stranger, make_connection
):
    west = Location.objects.create(name="eu-west")
    for _ in range(2):
        make_connection("connected").locations.add(west)
    make_connection("deleted").locations.add(west)  # a tombstone chose it: not counted
    for user, seen in (
        (staff, "2 connections"),
        (owner, "2 connections"),
        (stranger, "0 connections"),
    ):
        assert re.search(rf"\b{seen}\b", row_of(client_for(user).get(LIST), "eu-west"))


def test_the_empty_page_explains_the_implicit_location(staff, owner):
    for user, how in ((staff, "python manage.py locations add eu-west"), (owner, "staff add them")):
        page = client_for(user).get(LIST)
        assert page.status_code == 200
        said = text(page)
        assert "everything is probed from one implicit location" in said
        assert how in said
        assert "<table" not in page.content.decode()


def test_the_page_shows_no_none_no_undefined_and_nothing_from_a_cdn(staff, owner):
    west = Location.objects.create(name="eu-west")  # no description, no worker
    stale = Location.objects.create(name="us-east", description="Virginia")
    worker(stale, timezone.now() - timedelta(hours=1))  # no lag, no rate
    worker(west, timezone.now())  # online, no lag measured yet
    for user in (staff, owner):
        page = client_for(user).get(LIST)
        said = text(page)
        assert not re.search(r"\bNone\b|\bundefined\b|\bnan\b", said), said
        body = page.content.decode()
        assert not re.search(r'(?:src|href)="(?:https?:)?//', body)
    asked = client_for(staff).get(remove_url(west))
    assert not re.search(r"\bNone\b|\bundefined\b", text(asked))


def test_the_page_costs_the_same_queries_whatever_the_number_of_locations(
    staff, make_connection, django_assert_max_num_queries
):
    client = client_for(staff)
    Location.objects.create(name="loc-0")
    client.get(LIST)  # warm: the session, the content types
    with CaptureQueriesContext(db) as one:
        assert client.get(LIST).status_code == 200
    for i in range(1, 8):
        location = Location.objects.create(name=f"loc-{i}")
        worker(location, timezone.now())
        make_connection("connected").locations.add(location)
    with django_assert_max_num_queries(len(one)):
        assert client.get(LIST).status_code == 200
