"""What a user sees of locations on connections: "Probed from" and "Quorum" on the edit page,
an environment's default locations, the note of the last round in the table, the Location
filter (by the rule probing goes by), the connection page's Locations card and the API; and,
without any location, none of it."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from connections.choices import Status
from connections.filters import ConnectionFilterSet
from connections.models import Connection, Location, ProbeResult
from connections.probing.rounds import locations_of
from environments.models import Environment, EnvironmentMembership
from tests.chromium import sign_in
from tests.helpers import client_for, edit_url, form_of

pytestmark = pytest.mark.django_db

LIST = reverse("connections:list")
PARTIAL_NOTE = "down in 1 of 3 locations (eu-west: nothing listens on 10.0.3.4:443)"


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def places():
    """Three locations, by name."""
    return {name: Location.objects.create(name=name) for name in ("ap-south", "eu-west", "us-east")}


@pytest.fixture
def viewer(owner, django_user_model):
    """A viewer of the owner's "prod" (sees its connections, may not change them)."""
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-1")
    environment = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=environment, user=user, role="viewer")
    return user


# ---- the edit page -------------------------------------------------------------------------


def test_without_locations_the_edit_page_is_as_it_was(owner, make_connection):
    connection = make_connection(Status.REGISTERED)
    client = client_for(owner)
    page = client.get(edit_url(connection))
    assert "locations" not in page.context["form"].fields
    assert "quorum" not in page.context["form"].fields
    assert "Probed from" not in text(page) and "Quorum" not in text(page)
    saved = client.post(edit_url(connection), form_of(client, connection, name="renamed"))
    assert saved.status_code == 302
    assert Connection.objects.get(pk=connection.pk).name == "renamed"


def test_the_edit_page_saves_where_it_is_probed_from_and_its_quorum(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED)
    client = client_for(owner)
    page = client.get(edit_url(connection))
    shown = text(page)
    assert "Probed from" in shown and "Quorum" in shown
    assert "None ticked: the default locations of its environments" in shown
    quorum = page.context["form"].fields["quorum"]
    assert [value for value, _ in quorum.choices] == ["", "any", "all", "1", "2", "3"]
    chosen = [places["eu-west"].pk, places["us-east"].pk]
    saved = client.post(
        edit_url(connection), form_of(client, connection, locations=chosen, quorum="2")
    )
    assert saved.status_code == 302
    connection.refresh_from_db()
    assert connection.quorum == "2"
    assert sorted(connection.locations.values_list("name", flat=True)) == ["eu-west", "us-east"]
    said = text(client.get(saved.url))
    assert "probed from its default locations → eu-west, us-east" in said
    assert "quorum a majority → 2 locations" in said

    # none ticked: its environments' defaults again, and a majority
    cleared = client.post(
        edit_url(connection), form_of(client, connection, locations=[], quorum="")
    )
    assert cleared.status_code == 302
    connection.refresh_from_db()
    assert connection.quorum == "" and not connection.locations.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"locations": ["999999"]},  # no such location
        {"locations": ["eu-west"]},  # a name, not an id
        {"locations": ["٣"]},  # an Arabic-Indic digit
        {"locations": ["1" * 30]},  # wider than any id
        {"locations": ["1\x002"]},
        {"quorum": "0"},
        {"quorum": "most"},
        {"quorum": "٢"},
        {"quorum": "²"},
        {"quorum": "01"},
        {"quorum": "4"},  # more than its 3 locations
        {"quorum": "21"},
        {"quorum": "a\x00"},
    ],
)
def test_a_bad_location_or_quorum_is_a_field_error_and_saves_nothing(
    owner, make_connection, places, changes
):
    connection = make_connection(Status.CONNECTED, quorum="any")
    client = client_for(owner)
    response = client.post(edit_url(connection), form_of(client, connection, **changes))
    assert response.status_code == 400
    field = next(iter(changes))
    assert response.context["form"].errors[field]
    assert "Nothing was saved" in text(response)
    connection.refresh_from_db()
    assert connection.quorum == "any" and not connection.locations.exists()


def test_a_quorum_above_the_locations_left_is_kept_and_offered(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED, quorum="5")
    client = client_for(owner)
    quorum = client.get(edit_url(connection)).context["form"].fields["quorum"]
    assert [value for value, _ in quorum.choices][-1] == "5"
    saved = client.post(edit_url(connection), form_of(client, connection, name="kept"))
    assert saved.status_code == 302
    assert Connection.objects.get(pk=connection.pk).quorum == "5"


def test_a_page_shown_before_the_first_location_changes_no_quorum(owner, make_connection):
    connection = make_connection(Status.CONNECTED, quorum="any")
    client = client_for(owner)
    data = form_of(client, connection, name="renamed")  # no location yet: no such fields
    Location.objects.create(name="eu-west")
    assert client.post(edit_url(connection), data).status_code == 302
    connection.refresh_from_db()
    assert connection.name == "renamed" and connection.quorum == "any"


def test_locations_saved_in_another_tab_are_a_conflict_not_undone(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED)
    client = client_for(owner)
    data = form_of(client, connection, name="mine")
    connection.locations.set([places["ap-south"]])  # another tab saved meanwhile
    response = client.post(edit_url(connection), data)
    assert response.status_code == 409
    assert "probed from is now ap-south" in text(response)
    assert list(connection.locations.values_list("name", flat=True)) == ["ap-south"]


def test_only_who_may_change_the_connection_may_change_its_locations(
    owner, viewer, make_connection, places, django_user_model
):
    connection = make_connection(Status.CONNECTED)
    environment = Environment.objects.get(name="prod")
    environment.connections.add(connection)
    editor = django_user_model.objects.create_user("editor", password="pw-editor-1")
    EnvironmentMembership.objects.create(environment=environment, user=editor, role="editor")
    owner_form = form_of(client_for(owner), connection, locations=[places["eu-west"].pk])

    refused = client_for(viewer).post(edit_url(connection), owner_form)
    assert refused.status_code == 403
    assert not connection.locations.exists()
    api = api_for(viewer).patch(
        f"/api/connections/{connection.pk}/", {"locations": ["eu-west"]}, format="json"
    )
    assert api.status_code == 403
    assert not connection.locations.exists()

    editor_client = client_for(editor)
    data = form_of(editor_client, connection, locations=[places["eu-west"].pk], quorum="all")
    assert editor_client.post(edit_url(connection), data).status_code == 302
    connection.refresh_from_db()
    assert connection.quorum == "all"
    assert list(connection.locations.values_list("name", flat=True)) == ["eu-west"]


# ---- an environment's default locations ----------------------------------------------------


def test_without_locations_the_environment_form_is_as_it_was(owner):
    client = client_for(owner)
    page = client.get(reverse("environments:add"))
    assert "probe_locations" not in page.context["form"].fields
    assert "Default locations" not in text(page)
    saved = client.post(reverse("environments:add"), {"name": "prod", "description": ""})
    assert saved.status_code == 302


def test_the_environment_form_saves_its_default_locations(owner, places):
    client = client_for(owner)
    page = client.get(reverse("environments:add"))
    assert "Default locations" in text(page)
    saved = client.post(
        reverse("environments:add"),
        {"name": "prod", "description": "", "probe_locations": [places["eu-west"].pk]},
    )
    assert saved.status_code == 302
    environment = Environment.objects.get(name="prod")
    assert list(environment.probe_locations.values_list("name", flat=True)) == ["eu-west"]
    edit = reverse("environments:edit", args=[environment.pk])
    cleared = client.post(edit, {"name": "prod", "description": ""})
    assert cleared.status_code == 302 and not environment.probe_locations.exists()


@pytest.mark.parametrize("bad", ["999999", "eu-west", "٣", "1" * 30, "1\x00"])
def test_a_bad_default_location_is_a_field_error(owner, places, bad):
    environment = Environment.objects.create(name="prod", owner=owner)
    environment.probe_locations.add(places["ap-south"])
    response = client_for(owner).post(
        reverse("environments:edit", args=[environment.pk]),
        {"name": "renamed", "description": "", "probe_locations": [bad]},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["probe_locations"]
    environment.refresh_from_db()
    assert environment.name == "prod"
    assert list(environment.probe_locations.values_list("name", flat=True)) == ["ap-south"]


def test_a_viewer_cannot_change_an_environments_defaults(owner, viewer, places):
    environment = Environment.objects.get(name="prod")
    response = client_for(viewer).post(
        reverse("environments:edit", args=[environment.pk]),
        {"name": "prod", "description": "", "probe_locations": [places["eu-west"].pk]},
    )
    assert response.status_code == 303  # back to its page, which says why
    assert not environment.probe_locations.exists()


# ---- the table -----------------------------------------------------------------------------


def row_html(body: str, connection) -> str:
    match = re.search(rf'<tr data-id="{connection.pk}".*?</tr>', body, re.S)
    assert match, f"no row for {connection.name}"
    return match.group(0)


def test_the_row_shows_a_partial_outage_as_a_badge_and_other_notes_muted(
    owner, make_connection, places
):
    partial = make_connection(Status.CONNECTED, name="partial")
    short = make_connection(Status.CONNECTED, name="short")
    calm = make_connection(Status.CONNECTED, name="calm")
    Connection.objects.filter(pk=partial.pk).update(locations_note=PARTIAL_NOTE)
    Connection.objects.filter(pk=short.pk).update(locations_note="only 1 of 3 locations answered")
    body = client_for(owner).get(LIST).content.decode()

    row = row_html(body, partial)
    status = re.search(r'<td class="col-status">(.*?)</td>', row, re.S).group(1)
    assert '<span class="tag warn">partial</span>' in status
    assert html.escape(PARTIAL_NOTE) in status
    assert f'title="{html.escape(PARTIAL_NOTE)}"' in status  # the whole, when the cell cuts it

    status = re.search(r'<td class="col-status">(.*?)</td>', row_html(body, short), re.S).group(1)
    assert '<span class="muted">only 1 of 3 locations answered</span>' in status
    assert "partial" not in status
    assert "loc-note" not in row_html(body, calm)
    assert 'id="dd-location"' in body  # the filter, since locations exist
    for place in places:
        assert f'value="{place}"' in body


def test_without_locations_the_table_shows_no_note_and_no_location_filter(owner, make_connection):
    make_connection(Status.CONNECTED, name="calm")
    body = client_for(owner).get(LIST).content.decode()
    assert "loc-note" not in body and "partial" not in body
    assert 'id="dd-location"' not in body and 'name="location"' not in body


def test_a_partial_note_shows_on_an_environments_table_too(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED)
    Connection.objects.filter(pk=connection.pk).update(locations_note=PARTIAL_NOTE)
    environment = Environment.objects.create(name="prod", owner=owner)
    environment.connections.add(connection)
    page = client_for(owner).get(reverse("environments:detail", args=[environment.pk]))
    assert '<span class="tag warn">partial</span>' in row_html(page.content.decode(), connection)


# ---- the Location filter -------------------------------------------------------------------


@pytest.fixture
def fleet(owner, make_connection, places):
    """Connections probed from each kind of set: their own, their environments' defaults
    (one or two environments, one without defaults), every location."""
    eu, us, ap = places["eu-west"], places["us-east"], places["ap-south"]
    eu_env = Environment.objects.create(name="eu-env", owner=owner)
    eu_env.probe_locations.set([eu])
    us_env = Environment.objects.create(name="us-env", owner=owner)
    us_env.probe_locations.set([us])
    plain_env = Environment.objects.create(name="plain", owner=owner)  # no defaults
    rows = {}

    def add(name, own=(), environments=()):
        connection = make_connection(Status.CONNECTED, name=name)
        connection.locations.set(own)
        for environment in environments:
            environment.connections.add(connection)
        rows[name] = connection

    add("own-eu", own=[eu])
    add("own-us-in-eu-env", own=[us], environments=[eu_env])  # its own choice wins
    add("own-eu-ap", own=[eu, ap])
    add("default-eu", environments=[eu_env])
    add("defaults-eu-us", environments=[eu_env, us_env])  # the union
    add("default-us-and-plain", environments=[us_env, plain_env])  # plain adds nothing
    add("plain-only", environments=[plain_env])  # no default anywhere: everywhere
    add("nowhere-chosen")  # no environment: everywhere
    return rows


def filtered(owner, query) -> set[str]:
    response = client_for(owner).get(LIST, query)
    assert response.status_code == 200
    return {row["connection"].name for row in response.context["rows"]}


@pytest.mark.parametrize("location", ["eu-west", "us-east", "ap-south"])
def test_the_location_filter_keeps_what_probing_sends_there(owner, fleet, location):
    place = Location.objects.get(name=location)
    effective = locations_of([c.pk for c in fleet.values()])
    expected = {name for name, c in fleet.items() if place.pk in effective[c.pk]}
    assert filtered(owner, {"location": location}) == expected


def test_the_location_filter_keeps_exactly_these_rows(owner, fleet):
    everywhere = {"plain-only", "nowhere-chosen"}
    assert filtered(owner, {"location": "eu-west"}) == {
        "own-eu",
        "own-eu-ap",
        "default-eu",
        "defaults-eu-us",
        *everywhere,
    }
    assert filtered(owner, {"location": "us-east"}) == {
        "own-us-in-eu-env",
        "defaults-eu-us",
        "default-us-and-plain",
        *everywhere,
    }
    assert filtered(owner, {"location": "ap-south"}) == {"own-eu-ap", *everywhere}
    # several: any of them
    assert filtered(owner, {"location": ["ap-south", "us-east"]}) == {
        "own-eu-ap",
        "own-us-in-eu-env",
        "defaults-eu-us",
        "default-us-and-plain",
        *everywhere,
    }


def test_the_location_filter_is_one_statement_of_exists(owner, fleet):
    filterset = ConnectionFilterSet(
        {"location": ["eu-west"]}, queryset=Connection.objects.restrict(owner)
    )
    assert filterset.form.is_valid()  # reads the names chosen
    with CaptureQueriesContext(db) as queries:
        rows = list(filterset.qs)
    assert len(rows) == 6
    assert len(queries.captured_queries) == 1
    sql = queries.captured_queries[0]["sql"].upper()
    assert sql.count("EXISTS") == 4 and "DISTINCT" not in sql


def test_the_location_filter_is_a_chip_and_counts_per_state(owner, fleet):
    response = client_for(owner).get(LIST, {"location": "ap-south"})
    assert "Location: ap-south" in text(response)
    assert response.context["total"] == 3
    summary = {item["status"]: item["count"] for item in response.context["summary"]}
    assert summary[Status.CONNECTED] == 3


@pytest.mark.parametrize("bad", ["nowhere", "EU-WEST", "eu-west\x00", "x" * 5000, "٣"])
def test_an_unknown_location_in_the_filter_is_said_never_a_500(owner, fleet, bad):
    page = client_for(owner).get(LIST, {"location": bad})
    assert page.status_code == 400
    assert "Some filters are not valid" in text(page) and not page.context["rows"]
    api = api_for(owner).get("/api/connections/", {"location": bad})
    assert api.status_code == 400
    assert "location" in api.json()["error"]["fields"]


def test_the_api_filters_by_location_too(owner, fleet):
    response = api_for(owner).get("/api/connections/", {"location": "ap-south", "page_size": 100})
    assert response.status_code == 200
    names = {row["name"] for row in response.json()["results"]}
    assert names == {"own-eu-ap", "plain-only", "nowhere-chosen"}


# ---- the connection page -------------------------------------------------------------------


def add_results(connection, location, outcomes, *, minutes_ago=0):
    """Results of ``location`` (None: probed without locations), oldest first, a minute apart."""
    now = timezone.now() - timedelta(minutes=minutes_ago)
    ProbeResult.objects.bulk_create(
        ProbeResult(
            connection=connection,
            location=location,
            checked_at=now - timedelta(minutes=len(outcomes) - i),
            ok=ok,
            latency_ms=10.0 + i if ok else None,
            error_class="" if ok else "connect",
            error="" if ok else "nothing listens",
        )
        for i, ok in enumerate(outcomes)
    )


def detail(owner, connection):
    return client_for(owner).get(reverse("connections:detail", args=[connection.pk]))


def test_no_locations_card_without_results_from_locations(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED)
    add_results(connection, None, [True, False, True])
    page = detail(owner, connection)
    assert page.context["locations"] is None
    assert 'id="locations"' not in page.content.decode()


def test_the_locations_card_shows_each_location_its_bar_latency_and_the_note(
    owner, make_connection, places
):
    eu, us, ap = places["eu-west"], places["us-east"], places["ap-south"]
    connection = make_connection(Status.CONNECTED)
    connection.locations.set([eu, us])  # ap-south is not one of its locations
    Connection.objects.filter(pk=connection.pk).update(locations_note=PARTIAL_NOTE)
    add_results(connection, eu, [True] * 25 + [False])
    add_results(connection, us, [True, True, True])
    add_results(connection, ap, [False])
    page = detail(owner, connection)
    card = page.context["locations"]
    assert [row["name"] for row in card["rows"]] == ["eu-west", "us-east"]
    eu_row, us_row = card["rows"]
    assert len(eu_row["bar"]["titles"]) == 20  # its last 20, of 26
    assert all(title != "no probe yet" for title in eu_row["bar"]["titles"])
    assert eu_row["latest"].ok is False
    assert us_row["bar"]["titles"][:17] == ["no probe yet"] * 17
    assert us_row["latest"].latency_ms == 12.0

    body = page.content.decode()
    section = re.search(r'<section class="card" id="locations">.*?</section>', body, re.S).group(0)
    assert f'id="loc-hb-{eu.pk}"' in section and f'id="loc-hb-{us.pk}"' in section
    assert 'aria-label="Last 20 probes from eu-west: 1 failed. Arrow keys read each."' in section
    assert "12 ms" in section and "nothing listens" in section
    assert '<span class="tag warn">partial</span>' in section
    assert html.escape(PARTIAL_NOTE) in section
    assert "ap-south" not in section


def test_a_location_without_results_yet_says_so(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED)  # every location: none chosen
    add_results(connection, places["eu-west"], [True])
    section = detail(owner, connection).content.decode()
    assert section.count("no probe yet</span>") == 2  # ap-south and us-east


def test_the_locations_card_costs_the_same_queries_for_few_and_many_results(
    owner, make_connection, places, django_assert_num_queries
):
    small = make_connection(Status.CONNECTED)
    add_results(small, places["eu-west"], [True])
    big = make_connection(Status.CONNECTED)
    for place in places.values():
        add_results(big, place, [True, False] * 30)
    client = client_for(owner)
    client.get(reverse("connections:detail", args=[small.pk]))  # warm the session
    with CaptureQueriesContext(db) as few:
        client.get(reverse("connections:detail", args=[small.pk]))
    with django_assert_num_queries(len(few.captured_queries)):
        page = client.get(reverse("connections:detail", args=[big.pk]))
    assert len(page.context["locations"]["rows"]) == 3


# ---- the API -------------------------------------------------------------------------------


def api_url(connection) -> str:
    return f"/api/connections/{connection.pk}/"


def test_the_api_reads_locations_quorum_and_note(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED, quorum="any")
    connection.locations.set([places["us-east"], places["eu-west"]])
    Connection.objects.filter(pk=connection.pk).update(locations_note=PARTIAL_NOTE)
    body = api_for(owner).get(api_url(connection)).json()
    assert body["locations"] == ["eu-west", "us-east"]
    assert body["quorum"] == "any" and body["locations_note"] == PARTIAL_NOTE
    listed = api_for(owner).get("/api/connections/").json()["results"][0]
    assert listed["locations"] == ["eu-west", "us-east"]


def test_the_api_without_locations_says_none(owner, make_connection):
    connection = make_connection(Status.CONNECTED)
    body = api_for(owner).get(api_url(connection)).json()
    assert body["locations"] == [] and body["quorum"] == "" and body["locations_note"] == ""


def test_the_api_writes_locations_and_quorum(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED)
    client = api_for(owner)
    response = client.patch(
        api_url(connection), {"locations": ["us-east", "eu-west"], "quorum": "2"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["locations"] == ["eu-west", "us-east"]
    assert response.json()["quorum"] == "2"
    connection.refresh_from_db()
    assert connection.quorum == "2"
    # the note is the probes': a value sent is ignored
    client.patch(api_url(connection), {"locations_note": "forged"}, format="json")
    assert Connection.objects.get(pk=connection.pk).locations_note == ""
    # [] and "": inherit, a majority
    cleared = client.patch(api_url(connection), {"locations": [], "quorum": ""}, format="json")
    assert cleared.status_code == 200
    assert cleared.json()["locations"] == [] and cleared.json()["quorum"] == ""
    assert not connection.locations.exists()


def test_an_unknown_location_is_a_400_naming_it(owner, make_connection, places):
    connection = make_connection(Status.CONNECTED)
    response = api_for(owner).patch(
        api_url(connection), {"locations": ["eu-west", "mars"]}, format="json"
    )
    assert response.status_code == 400
    message = response.json()["error"]["fields"]["locations"][0]
    assert "No location is named 'mars'" in message
    assert "ap-south, eu-west, us-east" in message
    assert not connection.locations.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"locations": "eu-west"},
        {"locations": [1]},
        {"locations": [None]},
        {"locations": {"eu-west": True}},
        {"locations": ["eu-west\x00"]},
        {"locations": ["x" * 10_000]},
        {"locations": ["eu-west"] * 101},
        {"quorum": "0"},
        {"quorum": "most"},
        {"quorum": "٣"},
        {"quorum": "01"},
        {"quorum": "21"},
        {"quorum": None},
        {"quorum": "a\x00"},
    ],
)
def test_bad_locations_or_quorum_are_a_400_naming_the_field(owner, make_connection, places, body):
    connection = make_connection(Status.CONNECTED, quorum="any")
    response = api_for(owner).patch(api_url(connection), body, format="json")
    assert response.status_code == 400, response.content
    field = next(iter(body))
    assert field in response.json()["error"]["fields"]
    connection.refresh_from_db()
    assert connection.quorum == "any" and not connection.locations.exists()


def test_the_environment_api_reads_and_writes_default_locations(owner, places):
    client = api_for(owner)
    created = client.post(
        "/api/environments/", {"name": "prod", "probe_locations": ["eu-west"]}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["probe_locations"] == ["eu-west"]
    url = f"/api/environments/{created.json()['id']}/"
    changed = client.patch(url, {"probe_locations": ["us-east", "ap-south"]}, format="json")
    assert changed.json()["probe_locations"] == ["ap-south", "us-east"]
    refused = client.patch(url, {"probe_locations": ["nowhere"]}, format="json")
    assert refused.status_code == 400
    assert (
        "No location is named 'nowhere'" in refused.json()["error"]["fields"]["probe_locations"][0]
    )
    assert client.get(url).json()["probe_locations"] == ["ap-south", "us-east"]
    assert client.patch(url, {"probe_locations": []}, format="json").json()["probe_locations"] == []


def test_a_viewer_cannot_change_an_environments_defaults_through_the_api(owner, viewer, places):
    environment = Environment.objects.get(name="prod")
    response = api_for(viewer).patch(
        f"/api/environments/{environment.pk}/", {"probe_locations": ["eu-west"]}, format="json"
    )
    assert response.status_code == 403
    assert not environment.probe_locations.exists()


# ---- in a browser ----------------------------------------------------------------------------

AXE = Path(settings.BASE_DIR) / "static" / "vendor" / "axe-core" / "axe.min.js"
AXE_SERIOUS = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""
RIGHT_EDGES = """(selector) => [...document.querySelectorAll(selector)].map(
  (el) => el.getBoundingClientRect().right)"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_location_pieces_pass_axe_in_both_themes_and_fit_a_phone(
    browser, live_server, owner, make_connection, places
):
    owner.set_password("pw-owner-123")
    owner.save()
    connection = make_connection(Status.CONNECTED, name="orders-api")
    Connection.objects.filter(pk=connection.pk).update(locations_note=PARTIAL_NOTE)
    other = make_connection(Status.CONNECTED, name="payments")
    Connection.objects.filter(pk=other.pk).update(locations_note="only 1 of 3 locations answered")
    for place in places.values():
        add_results(connection, place, [True, False, True])
    environment = Environment.objects.create(name="prod", owner=owner)
    pages = [
        LIST,
        reverse("connections:detail", args=[connection.pk]),
        edit_url(connection),
        reverse("environments:edit", args=[environment.pk]),
    ]
    for theme in ("light", "dark"):
        context = browser.new_context(color_scheme=theme, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, live_server, "owner", "pw-owner-123")
        for path in pages:
            page.goto(f"{live_server.url}{path}")
            page.add_script_tag(path=str(AXE))
            assert page.evaluate(AXE_SERIOUS) == [], f"{path} ({theme})"
        context.close()
    phone = browser.new_page(viewport={"width": 390, "height": 800})
    sign_in(phone, live_server, "owner", "pw-owner-123")
    edges = phone.evaluate(RIGHT_EDGES, ".loc-note")
    assert len(edges) == 2 and max(edges) <= 390  # the notes wrap inside the card
