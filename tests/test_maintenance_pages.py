"""Maintenance window pages and API: visibility (the environment's viewers see, its editors
manage, strangers get 404), bad input is a 400 keeping what was typed, "End now" takes the
connections out at the next apply_windows, and times are shown in the viewer's timezone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from connections.choices import Status
from environments.models import Environment, EnvironmentMembership
from maintenance import windows
from maintenance.apply import apply_windows
from maintenance.models import Window
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 4, 10, 0, tzinfo=UTC)  # a Wednesday
API = "/api/maintenance/windows/"


def api_for(user) -> Client:
    from accounts.models import ApiToken

    key = ApiToken.issue(user, "t")[1]
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


class _ns:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture
def window_world(owner, stranger, django_user_model, make_connection):
    env = Environment.objects.create(name="prod", owner=owner)
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123")
    editor = django_user_model.objects.create_user("editor", password="pw-editor-123")
    EnvironmentMembership.objects.create(environment=env, user=viewer, role="viewer")
    EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    conn = make_connection("registered", name="db-1")
    env.connections.add(conn)
    return _ns(env=env, owner=owner, stranger=stranger, viewer=viewer, editor=editor, conn=conn)


def one_off(w, start, end, **extra) -> Window:
    return windows.save_window(
        w.owner,
        Window(),
        name=extra.pop("name", "patch night"),
        kind="one_off",
        starts_at=start,
        ends_at=end,
        connections=[w.conn],
        environment=w.env,
        **extra,
    )


def form(**overrides) -> dict:
    data = {
        "name": "nightly",
        "kind": "recurring",
        "timezone": "Europe/Amsterdam",
        "weekdays": ["0", "3"],
        "start_time": "23:30",
        "duration_minutes": "90",
        "enabled": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# ---- visibility -------------------------------------------------------------------------------


def test_a_stranger_gets_404_and_a_viewer_sees_but_cannot_change(window_world):
    w = window_world
    window = one_off(w, NOW, NOW + timedelta(hours=1))
    detail = reverse("maintenance:detail", args=[window.pk])
    assert client_for(w.stranger).get(detail).status_code == 404
    assert "patch night" not in client_for(w.stranger).get(reverse("maintenance:list")).text
    viewer = client_for(w.viewer)
    page = viewer.get(detail)
    assert page.status_code == 200 and "patch night" in page.text
    assert "End now" not in page.text and "Edit</a>" not in page.text
    assert "patch night" in viewer.get(reverse("maintenance:list")).text
    for name in ("edit", "end-now", "enable", "delete"):
        response = viewer.post(reverse(f"maintenance:{name}", args=[window.pk]), {"confirm": "yes"})
        assert response.status_code == 303, name
    assert Window.objects.filter(pk=window.pk, enabled=True, ended_at=None).exists()
    # the editor manages it
    response = client_for(w.editor).post(
        reverse("maintenance:enable", args=[window.pk]), {"enabled": "0"}
    )
    assert response.status_code == 302
    assert not Window.objects.get(pk=window.pk).enabled


def test_the_api_hides_from_strangers_and_refuses_viewers(window_world):
    w = window_world
    window = one_off(w, NOW, NOW + timedelta(hours=1))
    url = f"{API}{window.pk}/"
    assert api_for(w.stranger).get(url).status_code == 404
    assert api_for(w.stranger).get(API).json()["count"] == 0
    viewer = api_for(w.viewer)
    assert viewer.get(url).status_code == 200
    patch = viewer.patch(url, {"name": "x"}, content_type="application/json")
    assert patch.status_code == 403
    assert viewer.delete(url).status_code == 403
    assert viewer.post(f"{url}end-now/").status_code == 403
    editor = api_for(w.editor)
    ok = editor.patch(url, {"name": "renamed"}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["name"] == "renamed"
    assert editor.delete(url).status_code == 204


def test_scope_is_limited_to_what_the_user_may_change(
    window_world, make_connection, django_user_model
):
    w = window_world
    others = make_connection("registered", name="not-mine", owner=w.stranger)
    response = client_for(w.editor).post(
        reverse("maintenance:add"),
        form(environment=str(w.env.pk), connections=[str(others.pk)]),
    )
    assert response.status_code == 400
    response = api_for(w.editor).post(
        API,
        {**_api_body(), "environment": w.env.pk, "connections": [others.pk]},
        content_type="application/json",
    )
    assert response.status_code == 400 and "connections" in response.json()["error"]["fields"]
    # kinds without an environment span the fleet: staff only
    response = api_for(w.owner).post(
        API, {**_api_body(), "kinds": ["http"]}, content_type="application/json"
    )
    assert response.status_code == 400 and "kinds" in response.json()["error"]["fields"]
    # a viewer may not give the environment a window
    response = api_for(w.viewer).post(
        API, {**_api_body(), "environment": w.env.pk}, content_type="application/json"
    )
    assert response.status_code == 400
    assert not Window.objects.exists()


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "a" * 5000}, "timezone"),
        ({"duration_minutes": "0"}, "duration_minutes"),
        ({"duration_minutes": str(10**9)}, "duration_minutes"),
        ({"weekdays": ["x"]}, "weekdays"),
        ({"weekdays": None}, "weekdays"),
        ({"start_time": "25:99"}, "start_time"),
        (
            {"kind": "one_off", "starts_at": "2025-06-05T10:00", "ends_at": "2025-06-05T09:00"},
            "ends_at",
        ),
        ({"kind": "one_off", "starts_at": "0001-01-01T00:00", "ends_at": "0001-01-01T05:00"}, None),
        ({"kind": "one_off", "starts_at": "not a date"}, "starts_at"),
        ({"connections": ["99999999999999999999999"]}, "connections"),
        ({"kind": "sometimes"}, "kind"),
    ],
)
def test_bad_input_on_the_form_is_a_400_keeping_what_was_typed(window_world, overrides, field):
    response = client_for(window_world.owner).post(reverse("maintenance:add"), form(**overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    if field:
        assert field in errors, errors
    assert 'value="nightly"' in response.text  # the name typed is kept
    assert not Window.objects.exists()


def _api_body(**overrides) -> dict:
    body = {
        "name": "nightly",
        "kind": "recurring",
        "timezone": "Europe/Amsterdam",
        "weekdays": [0, 3],
        "start_time": "23:30",
        "duration_minutes": 90,
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "a" * 5000}, "timezone"),
        ({"timezone": 5}, "timezone"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": 10**9}, "duration_minutes"),
        ({"weekdays": ["x"]}, "weekdays"),
        ({"weekdays": []}, "weekdays"),
        ({"weekdays": [7]}, "weekdays"),
        ({"start_time": None}, "start_time"),
        (
            {
                "kind": "one_off",
                "starts_at": "2025-06-05T10:00:00Z",
                "ends_at": "2025-06-05T09:00:00Z",
            },
            "ends_at",
        ),
        ({"kind": "one_off", "starts_at": "0001-01-01T00:00:00+05:00"}, "starts_at"),
        ({"kinds": ["nope"]}, "kinds"),
        ({"connections": [2**70]}, "connections"),
    ],
)
def test_bad_input_through_the_api_is_a_400_naming_the_field(window_world, overrides, field):
    response = api_for(window_world.owner).post(
        API, _api_body(**overrides), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not Window.objects.exists()


def test_editing_with_bad_input_keeps_the_stored_window(window_world):
    window = one_off(window_world, NOW, NOW + timedelta(hours=1))
    url = reverse("maintenance:edit", args=[window.pk])
    response = client_for(window_world.owner).post(
        url, form(timezone="Mars/Olympus", name="changed")
    )
    assert response.status_code == 400 and 'value="changed"' in response.text
    window.refresh_from_db()
    assert window.name == "patch night" and window.kind == "one_off"


# ---- end now ----------------------------------------------------------------------------------


def test_end_now_takes_the_connections_out_at_the_next_apply(window_world):
    w = window_world
    with time_machine.travel(NOW, tick=False):
        window = one_off(w, NOW - timedelta(minutes=30), NOW + timedelta(hours=2))
        apply_windows()
        w.conn.refresh_from_db()
        assert w.conn.status == Status.MAINTENANCE
        response = client_for(w.editor).post(reverse("maintenance:end-now", args=[window.pk]))
        assert response.status_code == 302
        w.conn.refresh_from_db()
        assert w.conn.status == Status.MAINTENANCE  # not until the task runs
    with time_machine.travel(NOW + timedelta(seconds=15), tick=False):
        apply_windows()
        w.conn.refresh_from_db()
        assert w.conn.status == Status.REGISTERED
        assert w.conn.next_probe_at is not None
        # ending a window that is not active is refused, politely
        client = client_for(w.editor)
        response = client.post(reverse("maintenance:end-now", args=[window.pk]), follow=True)
        assert "not active now" in response.text


def test_end_now_through_the_api(window_world):
    w = window_world
    with time_machine.travel(NOW, tick=False):
        window = one_off(w, NOW - timedelta(minutes=30), NOW + timedelta(hours=2))
        apply_windows()
        answer = api_for(w.editor).post(f"{API}{window.pk}/end-now/")
        assert answer.status_code == 200
        body = answer.json()
        assert body["active"] is False and body["ended_at"] and body["next_occurrences"] == []
        again = api_for(w.editor).post(f"{API}{window.pk}/end-now/")
        assert again.status_code == 400
    with time_machine.travel(NOW + timedelta(seconds=15), tick=False):
        apply_windows()
        w.conn.refresh_from_db()
        assert w.conn.status == Status.REGISTERED


# ---- times shown ------------------------------------------------------------------------------


def recurring_window(w) -> Window:
    return windows.save_window(
        w.owner,
        Window(),
        name="nightly",
        kind="recurring",
        weekdays=[3],  # Thursday
        start_time=time(23, 30),
        duration_minutes=90,
        timezone="Europe/Amsterdam",
        environments=[w.env],
        environment=w.env,
    )


def test_the_list_shows_the_next_occurrences_in_the_viewers_timezone(window_world):
    with time_machine.travel(NOW, tick=False):
        recurring_window(window_world)
        client = client_for(window_world.viewer)
        # default: the project's TIME_ZONE (UTC), and the window's own zone beside it
        page = client.get(reverse("maintenance:list")).text
        assert "Thu 2025-06-05 21:30 UTC" in page  # 23:30 CEST
        assert "Thu 23:30–Fri 01:00 CEST Europe/Amsterdam" in page
        assert 'datetime="2025-06-05T21:30:00+00:00"' in page
        assert "Thu 2025-06-12 21:30 UTC" in page and "Thu 2025-06-19 21:30 UTC" in page
        # the viewer picks theirs; it is remembered for the other pages
        page = client.get(reverse("maintenance:list"), {"tz": "America/Los_Angeles"}).text
        assert "Thu 2025-06-05 14:30 PDT" in page
        detail = client.get(reverse("environments:detail", args=[window_world.env.pk])).text
        assert "nightly" in detail and "Thu 2025-06-05 14:30 PDT" in detail
        connection = client.get(reverse("connections:detail", args=[window_world.conn.pk])).text
        assert "nightly" in connection and "Thu 2025-06-05 14:30 PDT" in connection
        # a zone that does not exist is refused, the page still answers
        response = client.get(reverse("maintenance:list"), {"tz": "Mars/Olympus"}, follow=True)
        assert response.status_code == 200 and "not an IANA timezone" in response.text


def test_the_list_splits_active_upcoming_and_past(window_world):
    w = window_world
    with time_machine.travel(NOW, tick=False):
        one_off(w, NOW - timedelta(hours=1), NOW + timedelta(hours=1), name="now-w")
        one_off(w, NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1), name="later-w")
        one_off(w, NOW - timedelta(days=2), NOW - timedelta(days=1), name="before-w")
        page = client_for(w.viewer).get(reverse("maintenance:list")).text
    active, rest = page.split("<h2>Upcoming</h2>")
    upcoming, past = rest.split("<h2>Past and disabled</h2>")
    assert "now-w" in active and "later-w" in upcoming and "before-w" in past
    connection = client_for(w.viewer).get(reverse("connections:detail", args=[w.conn.pk])).text
    assert "before-w" not in connection.split('id="maintenance-windows"')[1].split("</section>")[0]


def test_the_api_answers_next_occurrences_in_utc(window_world):
    with time_machine.travel(NOW, tick=False):
        window = recurring_window(window_world)
        body = api_for(window_world.viewer).get(f"{API}{window.pk}/").json()
    assert body["next_occurrences"][0] == {
        "start": "2025-06-05T21:30:00+00:00",
        "end": "2025-06-05T23:00:00+00:00",
    }
    assert len(body["next_occurrences"]) == 3
    assert (
        body["environments"] == [window_world.env.pk] and body["environment"] == window_world.env.pk
    )


def test_the_api_creates_and_updates_through_the_one_rule(window_world):
    client = api_for(window_world.editor)
    created = client.post(
        API,
        _api_body(
            environment=window_world.env.pk, connections=[window_world.conn.pk], kinds=["http"]
        ),
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["owner"] == "editor" and body["weekdays"] == [0, 3]
    url = f"{API}{body['id']}/"
    moved = client.patch(
        url, {"environment": None}, content_type="application/json"
    )  # the environment is fixed
    assert moved.status_code == 400
    switched = client.patch(
        url,
        {"kind": "one_off", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00Z"},
        content_type="application/json",
    )
    assert switched.status_code == 200, switched.content
    assert switched.json()["weekdays"] == [] and switched.json()["start_time"] is None
    assert json.loads(switched.content)["connections"] == [window_world.conn.pk]


def test_the_edit_form_shows_the_stored_window_in_its_own_zone(window_world):
    with time_machine.travel(NOW, tick=False):
        window = recurring_window(window_world)
        page = (
            client_for(window_world.editor).get(reverse("maintenance:edit", args=[window.pk])).text
        )
        assert 'value="23:30"' in page and 'value="Europe/Amsterdam"' in page
        assert 'value="3" checked' in page or ('value="3"' in page and "checked" in page)
        one = one_off(window_world, NOW, NOW + timedelta(hours=1), timezone="Europe/Amsterdam")
        page = client_for(window_world.editor).get(reverse("maintenance:edit", args=[one.pk])).text
        assert 'value="2025-06-04T12:00"' in page  # 10:00 UTC is 12:00 CEST
        # saving it unchanged keeps the instant
        response = client_for(window_world.editor).post(
            reverse("maintenance:edit", args=[one.pk]),
            form(
                kind="one_off",
                name="patch night",
                starts_at="2025-06-04T12:00",
                ends_at="2025-06-04T13:00",
                connections=[str(window_world.conn.pk)],
                weekdays=None,
            ),
        )
        assert response.status_code == 302, response.context["form"].errors
        one.refresh_from_db()
        assert one.starts_at == NOW and one.kind == "one_off"


def test_plan_a_window_is_offered_only_where_the_form_would_accept_it(window_world):
    """A viewer is not offered "Plan a window" (the form would refuse their connections and
    environment); an editor is, with the connection or environment filled in."""
    w = window_world
    pages = {
        "connection": reverse("connections:detail", args=[w.conn.pk]),
        "environment": reverse("environments:detail", args=[w.env.pk]),
    }
    for page in pages.values():
        assert 'id="plan-window"' not in client_for(w.viewer).get(page).content.decode()
    editor = client_for(w.editor)
    for kind, page in pages.items():
        html = editor.get(page).content.decode()
        target = w.conn.pk if kind == "connection" else w.env.pk
        name = "connections" if kind == "connection" else "environment"
        link = f'href="{reverse("maintenance:add")}?{name}={target}"'
        assert f'{link} id="plan-window"' in html
    form = editor.get(f"{reverse('maintenance:add')}?connections={w.conn.pk}").content.decode()
    assert f'<option value="{w.conn.pk}" selected>db-1</option>' in form
    form = editor.get(f"{reverse('maintenance:add')}?environment={w.env.pk}").content.decode()
    assert f'<option value="{w.env.pk}" selected>prod</option>' in form
    # ids that are not ids are ignored, not a 500
    for junk in ("abc", "99999999999999999999999", "-1", "1.5", "٣"):
        assert editor.get(reverse("maintenance:add"), {"connections": junk}).status_code == 200
        assert editor.get(reverse("maintenance:add"), {"environment": junk}).status_code == 200
