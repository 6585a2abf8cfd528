"""Connections and members chosen by name: the searchable pickers of the maintenance-window
form, the notification-rule form and an environment's members. What the picker offers is what
the form accepts; an id from elsewhere is refused, never taken; what was chosen stays chosen
when a form comes back with an error; the members picker is the owner's alone, bounded, and
shows no e-mail address."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from connections.choices import Status
from environments.models import Environment, EnvironmentMembership
from maintenance.models import Window
from notifications import channels
from notifications.models import Channel, Rule
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

OPTIONS = reverse("connections:options")
WINDOW_ADD = reverse("maintenance:add")
CHANNEL_ADD = reverse("notifications:channel-add")


def options_of(html: str, name: str) -> dict[str, bool]:
    """The options of the select named ``name``: value -> selected."""
    select = re.search(rf'<select[^>]* name="{re.escape(name)}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select named {name}"
    return {
        value: bool(selected)
        for value, selected in re.findall(r'<option value="(\d+)"( selected)?', select.group(1))
    }


def found(response) -> list[str]:
    """The text of the options an options endpoint answered (values only, not the 'none')."""
    return re.findall(r'<option value="\d+">([^<]*)</option>', response.content.decode())


def window_form(**overrides) -> dict:
    data = {
        "name": "patch night",
        "kind": "recurring",
        "timezone": "UTC",
        "weekdays": ["0"],
        "start_time": "23:00",
        "duration_minutes": "60",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def channel_form(**overrides) -> dict:
    data = {
        "name": "ops mail",
        "kind": "email",
        "destination": "ops@example.com",
        "environment": "",
        "enabled": "on",
        "group_window": "10",
        "group_threshold": "3",
        "cooldown": "300",
        "remind_every_hours": "0",
        "rate_per_hour": "60",
        "rule-categories": ["disconnected", "recovery"],
    }
    data.update(overrides)
    return data


@pytest.fixture
def prod(owner, django_user_model, make_connection):
    """The owner's "prod" with a viewer and an editor, one connection in it and one outside."""
    env = Environment.objects.create(name="prod", owner=owner)
    viewer = django_user_model.objects.create_user("vic", password="pw-vic-12345")
    editor = django_user_model.objects.create_user("eddie", password="pw-eddie-12345")
    EnvironmentMembership.objects.create(environment=env, user=viewer, role="viewer")
    EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    inside = make_connection(Status.CONNECTED, name="prod-db")
    env.connections.add(inside)
    outside = make_connection(Status.CONNECTED, name="lab-db")
    env.viewer, env.editor, env.inside, env.outside = viewer, editor, inside, outside
    return env


# --- a hostile id is refused, never taken ----------------------------------------------------


def test_a_window_naming_a_connection_outside_the_users_scope_is_refused_on_the_field(
    owner, stranger, make_connection
):
    theirs = make_connection(Status.CONNECTED, name="their-secret-db", owner=stranger)
    response = client_for(owner).post(WINDOW_ADD, window_form(connections=[theirs.pk]))
    assert response.status_code == 400
    assert "connections" in response.context["form"].errors
    assert not Window.objects.exists()
    page = response.content.decode()
    assert "their-secret-db" not in page  # refused without being named back
    assert str(theirs.pk) not in options_of(page, "connections")


def test_an_environment_windows_connections_are_that_environments_only(prod):
    """An editor of prod may change his own connection, but prod's window may not name it."""
    own = prod.outside
    own.owner = prod.editor
    own.save(update_fields=["owner"])
    window = Window.objects.create(
        name="prod night", owner=prod.owner, environment=prod, kind="recurring",
        weekdays=[0], start_time="23:00", duration_minutes=60, timezone="UTC",
    )  # fmt: skip
    window.connections.add(prod.inside)
    edit = reverse("maintenance:edit", args=[window.pk])
    editor = client_for(prod.editor)
    page = editor.get(edit).content.decode()
    assert options_of(page, "connections") == {str(prod.inside.pk): True}
    response = editor.post(edit, window_form(connections=[prod.inside.pk, own.pk]))
    assert response.status_code == 400 and "connections" in response.context["form"].errors
    assert list(window.connections.all()) == [prod.inside]
    # the picker's search asks for prod's connections the editor may change
    assert f'"environment": "{prod.pk}"' in page and '"may": "change"' in page
    asked = editor.get(OPTIONS, {"q": "db", "may": "change", "environment": prod.pk})
    assert found(asked) == [f"prod-db — {prod.inside.url}"]


def test_a_viewer_is_offered_no_connection_for_a_window(prod):
    """A window's connections are those one may change: a viewer of prod finds none of it."""
    viewer = client_for(prod.viewer)
    assert options_of(viewer.get(WINDOW_ADD).content.decode(), "connections") == {}
    assert found(viewer.get(OPTIONS, {"q": "prod", "may": "change"})) == []
    response = viewer.post(WINDOW_ADD, window_form(connections=[prod.inside.pk]))
    assert response.status_code == 400 and "connections" in response.context["form"].errors


def test_a_rule_naming_a_connection_outside_the_users_scope_is_refused(
    owner, stranger, make_connection
):
    theirs = make_connection(Status.CONNECTED, name="their-secret-db", owner=stranger)
    client = client_for(owner)
    response = client.post(CHANNEL_ADD, channel_form(**{"rule-connections": [theirs.pk]}))
    assert response.status_code == 400
    assert "connections" in response.context["rule_form"].errors
    assert not Channel.objects.exists()
    assert "their-secret-db" not in response.content.decode()
    channel, _ = channels.create_channel(
        owner, name="ops", kind="email", destination="ops@example.com"
    )
    refused = client.post(
        reverse("notifications:rule-add", args=[channel.pk]),
        {"rule-connections": [theirs.pk], "rule-categories": ["disconnected"]},
    )
    assert refused.status_code == 400 and "connections" in refused.context["rule_form"].errors
    assert not Rule.objects.filter(connections=theirs).exists()


def test_an_environment_channels_rule_picker_searches_that_environment_only(prod):
    channel, _ = channels.create_channel(
        prod.owner, name="prod mail", kind="email", destination="ops@example.com",
        environment=prod,
    )  # fmt: skip
    page = client_for(prod.viewer).get(reverse("notifications:channel", args=[channel.pk]))
    assert "rule_form" not in page.context  # a viewer adds no rule
    editor = client_for(prod.editor)
    page = editor.get(reverse("notifications:channel", args=[channel.pk])).content.decode()
    assert options_of(page, "rule-connections") == {str(prod.inside.pk): False}
    assert f'"environment": "{prod.pk}"' in page and '"may": "view"' in page
    refused = editor.post(
        reverse("notifications:rule-add", args=[channel.pk]),
        {"rule-connections": [prod.outside.pk], "rule-categories": ["disconnected"]},
    )
    assert refused.status_code == 400 and "connections" in refused.context["rule_form"].errors


@pytest.mark.parametrize("environment", ["abc", "0", "99999999999999999999", "-1", "٣"])
def test_an_environment_that_is_no_id_finds_no_connection_and_is_no_error(
    owner, make_connection, environment
):
    make_connection(Status.CONNECTED, name="db")
    response = client_for(owner).get(OPTIONS, {"environment": environment})
    assert response.status_code == 200 and found(response) == []


def test_an_environment_the_user_may_not_see_is_no_scope_for_the_picker(
    owner, stranger, make_connection
):
    """Naming someone else's environment tells nothing of which of one's connections are in it."""
    mine = make_connection(Status.CONNECTED, name="mine", owner=stranger)
    secret = Environment.objects.create(name="secret", owner=owner)
    secret.connections.add(mine)
    client = client_for(stranger)
    assert found(client.get(OPTIONS, {"environment": secret.pk})) == []
    assert found(client.get(OPTIONS, {"environment": ""})) == [f"mine — {mine.url}"]


# --- what was chosen stays chosen ------------------------------------------------------------


def test_chosen_connections_stay_chosen_when_the_window_form_comes_back_with_an_error(
    owner, make_connection
):
    """Beyond the first options too: the list shows the chosen ones, then the first others."""
    for n in range(55):
        make_connection(Status.CONNECTED, name=f"svc-{n:02}")
    last = make_connection(Status.CONNECTED, name="zz-last")
    first = make_connection(Status.CONNECTED, name="aa-first")
    response = client_for(owner).post(
        WINDOW_ADD, window_form(name="", connections=[last.pk, first.pk, "999999999"])
    )
    assert response.status_code == 400 and "name" in response.context["form"].errors
    shown = options_of(response.content.decode(), "connections")
    assert shown[str(last.pk)] and shown[str(first.pk)]
    assert sum(shown.values()) == 2  # the unknown id is neither chosen nor named
    assert len(shown) <= 2 + 50  # not every connection: the search brings the others
    # a new window's search is in the environment chosen for the window, if any
    assert 'hx-include="#id_environment"' in response.content.decode()


def test_chosen_connections_stay_chosen_when_the_channel_form_comes_back_with_an_error(
    owner, make_connection
):
    db = make_connection(Status.CONNECTED, name="db")
    make_connection(Status.CONNECTED, name="api")
    response = client_for(owner).post(
        CHANNEL_ADD, channel_form(destination="", **{"rule-connections": [db.pk]})
    )
    assert response.status_code == 400 and "destination" in response.context["form"].errors
    page = response.content.decode()
    assert options_of(page, "rule-connections")[str(db.pk)] is True
    # a new channel's rule searches in the environment chosen for the channel, if any
    assert 'hx-include="#id_environment"' in page and '"may": "view"' in page


def test_a_windows_stored_connections_are_chosen_when_it_is_edited(owner, make_connection):
    chosen = make_connection(Status.CONNECTED, name="db")
    other = make_connection(Status.CONNECTED, name="api")
    window = Window.objects.create(
        name="night", owner=owner, kind="recurring", weekdays=[0], start_time="23:00",
        duration_minutes=60, timezone="UTC",
    )  # fmt: skip
    window.connections.add(chosen)
    page = client_for(owner).get(reverse("maintenance:edit", args=[window.pk])).content.decode()
    assert options_of(page, "connections") == {str(chosen.pk): True, str(other.pk): False}
    assert 'type="checkbox" name="environments"' not in page  # none to tick: a sentence says so
    assert "You own or edit no environment" in page


def test_a_window_is_saved_with_the_connections_chosen_in_the_picker(prod):
    response = client_for(prod.editor).post(
        WINDOW_ADD,
        window_form(environment=prod.pk, connections=[prod.inside.pk], environments=[prod.pk]),
    )
    assert response.status_code == 302
    window = Window.objects.get()
    assert list(window.connections.all()) == [prod.inside]
    assert list(window.environments.all()) == [prod]


# --- the members picker ----------------------------------------------------------------------


@pytest.fixture
def people(prod, django_user_model):
    """Users the owner of prod might add: two by name, one with an address, one inactive."""
    make = django_user_model.objects.create_user
    return {
        "ada": make("ada", first_name="Ada", last_name="Lovelace", password="pw-ada-1234567"),
        "grace": make("grace", first_name="Grace", last_name="Hopper", password="pw-gr-1234567"),
        "quiet": make("qz", email="Private.Person@Example.com", password="pw-qz-1234567"),
        "gone": make("ada-gone", first_name="Ada", is_active=False, password="pw-gone-123456"),
    }


def member_options(env) -> str:
    return reverse("environments:member-options", args=[env.pk])


def test_only_whoever_manages_the_members_may_ask_the_members_picker(prod, stranger, people):
    url = member_options(prod)
    assert Client().get(url).status_code == 302  # to the sign-in page
    assert client_for(stranger).get(url).status_code == 404  # not told it exists
    for member in (prod.viewer, prod.editor):
        refused = client_for(member).get(url, {"q": "ada"})
        assert refused.status_code == 403
        assert found(refused) == [] and "Lovelace" not in refused.content.decode()
    assert client_for(prod.owner).post(url).status_code == 405
    assert found(client_for(prod.owner).get(url, {"q": "ada"})) == ["ada — Ada Lovelace"]


def test_the_members_picker_never_offers_inactive_users_members_or_the_owner(prod, people):
    client = client_for(prod.owner)
    everyone = found(client.get(member_options(prod)))
    assert "ada-gone" not in " ".join(everyone)  # inactive
    for taken in ("vic", "eddie", "owner"):  # members, and the owner
        assert not any(option.split(" ")[0] == taken for option in everyone)
    assert found(client.get(member_options(prod), {"q": "gone"})) == []
    page = client.get(reverse("environments:detail", args=[prod.pk])).content.decode()
    first = options_of(page, "user")
    assert str(people["gone"].pk) not in first and str(prod.viewer.pk) not in first
    assert str(people["ada"].pk) in first


def test_the_members_picker_never_shows_an_email_address(prod, people):
    client = client_for(prod.owner)
    # an address finds nobody, whole or in part: the picker is no way to learn whose it is,
    # nor to read addresses letter by letter
    by_address = client.get(member_options(prod), {"q": "private.person@example.com"})
    assert found(by_address) == []
    assert "example.com" not in by_address.content.decode().lower()
    for part in ("private", "@example.com", "example", "Person@"):
        assert found(client.get(member_options(prod), {"q": part})) == [], part
    page = client.get(reverse("environments:detail", args=[prod.pk])).content.decode()
    assert "example.com" not in page.lower()


def test_the_members_picker_finds_by_every_word_of_a_name_and_is_bounded(
    prod, people, django_user_model
):
    client = client_for(prod.owner)
    assert found(client.get(member_options(prod), {"q": "hopper grace"})) == [
        "grace — Grace Hopper"
    ]
    assert found(client.get(member_options(prod), {"q": "ada hopper"})) == []
    for n in range(30):
        django_user_model.objects.create_user(f"ops-{n:02}", password="pw-ops-1234567")
    assert len(found(client.get(member_options(prod), {"q": "ops"}))) == 20
    for q in ("\x00", "a" * 20000, "%_\\", "٣", "\r\nada"):
        assert client.get(member_options(prod), {"q": q}).status_code == 200


def test_a_member_is_added_by_the_pickers_choice_and_refusals_add_no_one(prod, people):
    client = client_for(prod.owner)
    members = reverse("environments:members", args=[prod.pk])
    for user, why in (
        (people["gone"].pk, "Choose a user from the list."),
        (prod.owner.pk, "The owner is always a member."),
        ("abc", "Choose a user from the list."),
        ("99999999999999999999", "Choose a user from the list."),
        ("", "Choose a user to add."),
    ):
        body = client.post(members, {"user": user, "role": "editor"}, follow=True)
        assert why in body.content.decode(), user
    assert set(prod.memberships.values_list("user__username", flat=True)) == {"vic", "eddie"}
    client.post(members, {"user": people["ada"].pk, "role": "editor"})
    assert prod.memberships.get(user=people["ada"]).role == "editor"
    # an editor cannot add anyone, whatever he sends
    client_for(prod.editor).post(members, {"user": people["grace"].pk, "role": "editor"})
    assert not prod.memberships.filter(user=people["grace"]).exists()


def test_the_owner_changes_a_members_role_from_the_members_card(prod):
    client = client_for(prod.owner)
    page = client.get(reverse("environments:detail", args=[prod.pk])).content.decode()
    assert f'name="user" value="{prod.viewer.pk}"' in page and ">make editor</button>" in page
    client.post(
        reverse("environments:members", args=[prod.pk]), {"user": prod.viewer.pk, "role": "editor"}
    )
    assert prod.memberships.get(user=prod.viewer).role == "editor"


def test_the_members_picker_is_on_the_owners_page_only(prod, people):
    url = member_options(prod)
    detail = reverse("environments:detail", args=[prod.pk])
    assert url in client_for(prod.owner).get(detail).content.decode()
    for member in (prod.viewer, prod.editor):
        page = client_for(member).get(detail).content.decode()
        assert url not in page and "Lovelace" not in page


# --- the environment page has one place for actions ------------------------------------------


def test_the_environment_page_acts_on_its_connections_from_the_table_bar_only(prod):
    page = client_for(prod.editor).get(reverse("environments:detail", args=[prod.pk]))
    html = page.content.decode()
    assert "Act on the whole environment" not in html
    assert reverse("environments:transition", args=[prod.pk]) not in html
    assert html.count('class="bulk"') == 1 and 'id="bulk-all"' in html
    assert f"within_environment={prod.pk}" in html  # "all rows matching": this environment's


# --- in a browser: searching, and what was chosen across searches ----------------------------


def browser_page(browser, live_server, user):
    """A page signed in as ``user`` (by session cookie: no sign-in form, no throttle)."""
    cookie = client_for(user).cookies["sessionid"].value
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
    return context.new_page()


def listed(page, select: str) -> list[str]:
    """The text of the select's options that may be chosen."""
    return page.eval_on_selector_all(
        f"{select} option:not([disabled])", "options => options.map(o => o.textContent)"
    )


def chosen(page, select: str) -> list[str]:
    return page.eval_on_selector_all(
        f"{select} option:checked", "options => options.map(o => o.value)"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_window_pickers_search_stays_in_the_chosen_environment_and_keeps_the_choice(
    live_server, browser, prod
):
    page = browser_page(browser, live_server, prod.owner)
    page.goto(f"{live_server.url}{WINDOW_ADD}")
    page.select_option("#id_environment", str(prod.pk))
    page.fill("#window-connections-search", "db")
    page.wait_for_function("document.querySelectorAll('#id_connections option').length === 1")
    assert listed(page, "#id_connections") == [f"prod-db — {prod.inside.url}"]
    page.select_option("#id_connections", [str(prod.inside.pk)])
    page.fill("#window-connections-search", "lab")  # not in prod: nothing found, the choice kept
    page.wait_for_selector("#id_connections option[disabled]", state="attached")
    assert chosen(page, "#id_connections") == [str(prod.inside.pk)]
    page.click("button:has-text('Create window')")  # no name, no schedule: refused
    page.wait_for_selector(".field.invalid")
    assert chosen(page, "#id_connections") == [str(prod.inside.pk)]
    assert not Window.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_owner_adds_a_member_by_typing_part_of_a_name(live_server, browser, prod, people):
    page = browser_page(browser, live_server, prod.owner)
    page.goto(f"{live_server.url}{reverse('environments:detail', args=[prod.pk])}")
    page.fill("#member-user-search", "lovelace")
    page.wait_for_function("document.querySelectorAll('#member-user option').length === 1")
    assert listed(page, "#member-user") == ["ada — Ada Lovelace"]
    page.select_option("#member-user", str(people["ada"].pk))
    page.select_option("select[name=role]", "editor")
    page.click("button:has-text('Add member')")
    page.wait_for_selector("text=ada is an editor of 'prod'.")
    assert prod.memberships.get(user=people["ada"]).role == "editor"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_whole_environment_is_acted_on_from_the_table_bar(
    live_server, browser, prod, make_connection
):
    """ "All rows matching the filters" on an environment's page: its connections, no other."""
    second = make_connection(Status.CONNECTED, name="prod-api")
    prod.connections.add(second)
    page = browser_page(browser, live_server, prod.editor)
    page.goto(f"{live_server.url}{reverse('environments:detail', args=[prod.pk])}")
    page.check("#bulk-all")
    page.select_option("#bulk-action", "transition:maintenance")
    page.click("#bulk-apply")
    dialog = page.locator("dialog#confirm")
    dialog.wait_for(state="visible")
    assert dialog.locator("#confirm-text").inner_text() == (
        "Start maintenance for all 2 connections matching the filters?"
    )
    page.click("#confirm-ok")
    page.wait_for_selector("text=Moved to Maintenance: 2 connection(s)")
    prod.outside.refresh_from_db()
    assert set(prod.connections.values_list("status", flat=True)) == {Status.MAINTENANCE}
    assert prod.outside.status == Status.CONNECTED
