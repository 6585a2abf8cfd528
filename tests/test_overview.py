"""The overview at "/": per-state counts and uptime per environment, what needs attention, the
latest transitions; only ever what the user may see, in a bounded number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.choices import Status
from connections.models import Connection, ConnectionTransition
from environments.models import Environment, EnvironmentMembership
from overview import summary
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

HOME = reverse("overview")
LIST = reverse("connections:list")


def flip(connection, from_status, to_status, ago, reason="", trigger="probe"):
    return ConnectionTransition.objects.create(
        connection=connection,
        from_status=from_status,
        to_status=to_status,
        trigger=trigger,
        reason=reason,
        created_at=timezone.now() - ago,
    )


def settle(connection, *, created_ago, changed_ago=None, **fields):
    """Back-date a connection made by the fixture (created_at is auto_now_add)."""
    now = timezone.now()
    changed = now - (changed_ago if changed_ago is not None else created_ago)
    Connection.all_objects.filter(pk=connection.pk).update(
        created_at=now - created_ago, status_changed_at=changed, **fields
    )
    connection.refresh_from_db()
    return connection


@pytest.fixture
def overview_world(owner, stranger, make_connection, django_user_model):
    """The owner's "prod" (shared with a viewer) and "lab" (not shared), and one connection in
    no environment; the stranger owns one connection of their own."""
    h = timedelta(hours=1)
    prod = Environment.objects.create(name="prod", owner=owner)
    lab = Environment.objects.create(name="lab", owner=owner)
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-1")
    EnvironmentMembership.objects.create(environment=prod, user=viewer, role="viewer")

    # up 18 h, down 4 h, up 2 h of the last 24 h
    api = settle(
        make_connection(Status.CONNECTED, name="prod-api"), created_ago=48 * h, changed_ago=2 * h
    )
    flip(api, "", Status.REGISTERED, 48 * h, trigger="user")
    flip(api, Status.REGISTERED, Status.CONNECTED, 47 * h, trigger="user")
    flip(api, Status.CONNECTED, Status.DISCONNECTED, 6 * h, "unreachable after 3 probes")
    flip(api, Status.DISCONNECTED, Status.CONNECTED, 2 * h, "reachable again")
    # down for the last 3 h, with the reason of its transition
    db = settle(
        make_connection(
            Status.DISCONNECTED, name="prod-db", managed=True, url="http://db.prod:5432/"
        ),
        created_ago=48 * h,
        changed_ago=3 * h,
        last_probe_ok=False,
        last_probe_error="refused: cannot connect: [Errno 111] Connect call failed",
        last_probe_class="refused",
    )
    flip(db, "", Status.REGISTERED, 48 * h)
    flip(db, Status.REGISTERED, Status.DISCONNECTED, 3 * h, "unreachable after 3 probes (connect)")
    # failing authentication while still connected (two of three failures)
    grafana = settle(
        make_connection(
            Status.CONNECTED, name="prod-grafana", kind="grafana", url="https://grafana.prod/"
        ),
        created_ago=30 * h,
        last_probe_ok=False,
        last_probe_error="auth: HTTP 401 from the API",
        last_probe_class="auth",
        consecutive_failures=2,
        last_probe_at=timezone.now() - timedelta(seconds=20),
    )
    flip(grafana, "", Status.CONNECTED, 30 * h, trigger="user")
    prod.connections.add(api, db, grafana)

    # lab: one in maintenance all day, one not found for 10 h (it was ignored before)
    maint = settle(make_connection(Status.MAINTENANCE, name="lab-maint"), created_ago=72 * h)
    flip(maint, Status.CONNECTED, Status.MAINTENANCE, 30 * h, trigger="user")
    lost = settle(
        make_connection(Status.NOT_FOUND, name="lab-lost"), created_ago=72 * h, changed_ago=10 * h
    )
    flip(lost, Status.IGNORED, Status.NOT_FOUND, 10 * h, "register again: connect refused", "user")
    lab.connections.add(maint, lost)

    loose = settle(make_connection(Status.IGNORED, name="loose-one"), created_ago=72 * h)
    theirs = settle(
        make_connection(Status.DISCONNECTED, name="strangers-own", owner=stranger),
        created_ago=72 * h,
        changed_ago=5 * h,
    )
    flip(theirs, Status.CONNECTED, Status.DISCONNECTED, 5 * h, "stranger's outage")
    return {
        "prod": prod,
        "lab": lab,
        "viewer": viewer,
        "api": api,
        "db": db,
        "grafana": grafana,
        "maint": maint,
        "lost": lost,
        "loose": loose,
        "theirs": theirs,
    }


def tiles(overview) -> dict[str, summary.Tile]:
    found = {t.title: t for t in overview.environments}
    found["total"] = overview.total
    if overview.unassigned:
        found["none"] = overview.unassigned
    return found


# --- counts and uptime ------------------------------------------------------------------------


def test_each_tile_counts_its_connections_per_state(overview_world, owner):
    o = summary.build(owner)
    t = tiles(o)
    assert t["prod"].counts == {"connected": 2, "disconnected": 1}
    assert t["lab"].counts == {"maintenance": 1, "not_found": 1}
    assert t["none"].counts == {"ignored": 1}
    assert t["total"].counts == {
        "connected": 2,
        "disconnected": 1,
        "maintenance": 1,
        "not_found": 1,
        "ignored": 1,
    }
    assert (t["prod"].attention, t["lab"].attention, t["total"].attention) == (2, 1, 3)
    assert t["prod"].auth_failing == 1


def test_a_connection_in_two_environments_counts_in_both_tiles_and_once_in_the_total(
    overview_world, owner
):
    overview_world["lab"].connections.add(overview_world["api"])
    t = tiles(summary.build(owner))
    assert t["prod"].counts["connected"] == 2
    assert t["lab"].counts["connected"] == 1
    assert t["total"].counts["connected"] == 2


def test_uptime_is_the_share_of_counted_time_spent_reachable(overview_world, owner):
    t = tiles(summary.build(owner))
    day = 24 * 3600
    # api: up 18 h + 2 h, down 4 h; db: up 21 h, down 3 h; grafana: up all day
    assert t["prod"].up_seconds == pytest.approx(20 * 3600 + 21 * 3600 + day, abs=5)
    assert t["prod"].down_seconds == pytest.approx(7 * 3600, abs=5)
    assert t["prod"].uptime == "90.27%"  # 65 h of 72
    # lab: maintenance counts neither way; not found for 10 h, ignored before that
    assert t["lab"].up_seconds == 0
    assert t["lab"].down_seconds == pytest.approx(10 * 3600, abs=5)
    assert t["lab"].uptime == "0.00%"


def test_a_tile_without_counted_time_says_no_data_never_100(overview_world, owner):
    t = tiles(summary.build(owner))
    assert t["none"].uptime is None  # ignored all day
    response = client_for(owner).get(HOME)
    tile = re.search(r'<h3 id="ov-none">.*?</article>', response.content.decode(), re.S).group()
    assert "no data" in tile and "100%" not in tile


def test_a_row_from_a_clock_ahead_counts_no_negative_time(owner, make_connection):
    """A connection written by a worker whose clock runs an hour ahead, its state changed
    (in the future) and nothing in the log yet: it counts nothing, not minus an hour."""
    env = Environment.objects.create(name="skewed", owner=owner)
    ahead = make_connection(Status.CONNECTED)
    env.connections.add(ahead)
    settle(ahead, created_ago=-timedelta(hours=1))
    t = tiles(summary.build(owner))
    assert t["skewed"].up_seconds == 0 and t["skewed"].down_seconds == 0
    assert t["skewed"].uptime is None


def test_any_lost_time_never_rounds_up_to_100():
    assert summary.uptime_text(24 * 3600 - 1, 1) == "99.99%"
    assert summary.uptime_text(10, 0) == "100%"
    assert summary.uptime_text(0, 0) is None


def test_a_connection_created_within_the_window_counts_from_its_creation(owner, make_connection):
    fresh = settle(make_connection(Status.REGISTERED), created_ago=timedelta(hours=2))
    flip(fresh, "", Status.REGISTERED, timedelta(hours=2), trigger="user")
    total = summary.build(owner).total
    assert total.up_seconds == pytest.approx(2 * 3600, abs=5)
    assert total.down_seconds == 0


def test_the_page_shows_counts_uptime_and_the_window(overview_world, owner):
    html = client_for(owner).get(HOME).content.decode()
    assert html.count("<h1") == 1
    assert "90.27%" in html and "uptime, last 24 h" in html
    prod = overview_world["prod"].pk
    assert f'href="{LIST}?environment={prod}&amp;status=disconnected"' in html


# --- the links lead to the right filtered table -------------------------------------------------


def test_every_count_link_opens_the_table_with_as_many_rows(overview_world, owner):
    client = client_for(owner)
    html = client.get(HOME).content.decode()
    links = re.findall(
        r'<a class="ov-stat [^"]*" id="[^"]*" href="([^"]+)">.*?<strong>(\d+)</strong>', html, re.S
    )
    assert len(links) >= 8
    for href, count in links:
        response = client.get(href.replace("&amp;", "&"))
        assert response.status_code == 200
        assert len(response.context["rows"]) == int(count), href


def test_the_more_link_leads_to_every_lost_connection(overview_world, owner):
    response = client_for(owner).get(summary.build(owner).attention_url)
    names = {row["connection"].name for row in response.context["rows"]}
    assert names == {"prod-db", "lab-lost"}


# --- visibility -------------------------------------------------------------------------------


def test_a_stranger_learns_nothing_of_others_connections(overview_world, stranger):
    o = summary.build(stranger)
    assert o.environments == []
    assert o.total.counts == {"disconnected": 1}
    assert [row.connection.name for row in o.attention] == ["strangers-own"]
    assert {t.connection.name for t in o.transitions} == {"strangers-own"}
    html = client_for(stranger).get(HOME).content.decode()
    for name in ("prod", "lab", "prod-api", "prod-db", "lab-lost", "loose-one"):
        assert f">{name}<" not in html and f"{name}</a>" not in html


def test_a_stranger_with_nothing_sees_the_empty_state(overview_world, django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="pw-nobody-1")
    response = client_for(nobody).get(HOME)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing to watch yet" in html
    assert reverse("connections:add") in html and reverse("connections:import") in html
    assert "prod" not in html and "ov-tiles" not in html


def test_a_viewer_of_one_environment_sees_only_it(overview_world):
    o = summary.build(overview_world["viewer"])
    assert [t.title for t in o.environments] == ["prod"]
    assert o.unassigned is None
    assert o.total.counts == {"connected": 2, "disconnected": 1}
    assert {row.connection.name for row in o.attention} == {"prod-db", "prod-grafana"}
    assert {t.connection.name for t in o.transitions} == {"prod-api", "prod-db", "prod-grafana"}
    assert o.maintenance == 0
    html = client_for(overview_world["viewer"]).get(HOME).content.decode()
    assert "lab-lost" not in html and ">lab<" not in html and "loose-one" not in html


def test_staff_see_everything_and_the_connections_in_no_environment(
    overview_world, django_user_model
):
    staff = django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True)
    o = summary.build(staff)
    assert [t.title for t in o.environments] == ["lab", "prod"]
    assert o.unassigned.counts == {"ignored": 1, "disconnected": 1}
    assert o.total.total == 7
    assert o.total.attention == 4


def test_a_deleted_connection_is_not_counted_but_its_history_shows(overview_world, owner):
    Connection.all_objects.filter(pk=overview_world["loose"].pk).update(status=Status.DELETED)
    flip(
        overview_world["loose"],
        Status.IGNORED,
        Status.DELETED,
        timedelta(seconds=1),
        "purged",
        "user",
    )
    o = summary.build(owner)
    assert o.unassigned is None
    assert Status.DELETED not in o.total.counts
    assert o.transitions[0].to_status == Status.DELETED


# --- needs attention --------------------------------------------------------------------------


def test_needs_attention_lists_the_worst_first_with_reasons_and_durations(overview_world, owner):
    rows = summary.build(owner).attention
    assert [(r.connection.name, r.problem) for r in rows] == [
        ("prod-grafana", "auth"),  # authentication first
        ("prod-db", "disconnected"),
        ("lab-lost", "not_found"),
    ]
    grafana, db, lost = rows
    # the last failure said as a sentence with a hint (connections/probing/reasons.py)
    assert (
        grafana.last_error
        == "grafana.prod refused the credential (HTTP 401): check it, or renew it."
    )
    assert db.reason == "unreachable after 3 probes (connect)"
    assert db.last_error == "Nothing listens on db.prod:5432: is the service running, on this port?"
    assert lost.reason == "register again: connect refused"
    assert [e[1] for e in db.environments] == ["prod"]


def test_needs_attention_on_the_page_says_why_and_since_when(overview_world, owner):
    html = client_for(owner).get(HOME).content.decode()
    panel = re.search(r'id="ov-attention-title".*?</section>', html, re.S).group()
    assert "Authentication failing" in panel
    assert "grafana.prod refused the credential (HTTP 401)" in panel
    assert "unreachable after 3 probes (connect)" in panel
    # "Disconnected 3 h ago", never "Disconnected since 3 h ago"
    assert re.search(r"Disconnected <time[^>]*>3 h ago</time>", panel), panel
    assert re.search(r"Not Found <time[^>]*>10 h ago</time>", panel)
    assert "since <time" not in panel
    since = overview_world["db"].status_changed_at.isoformat()
    assert f'datetime="{since}"' in panel
    assert "lab-maint" not in panel
    assert "1 in maintenance" in panel


def test_a_disconnected_auth_failure_is_one_row_named_as_such(owner, make_connection):
    c = settle(
        make_connection(Status.DISCONNECTED),
        created_ago=timedelta(hours=5),
        changed_ago=timedelta(hours=1),
        last_probe_ok=False,
        last_probe_error="auth: token expired",
        last_probe_class="auth",
    )
    flip(c, Status.CONNECTED, Status.DISCONNECTED, timedelta(hours=1), "authentication failure")
    o = summary.build(owner)
    assert [(r.connection.pk, r.problem) for r in o.attention] == [(c.pk, "auth")]
    assert o.total.attention == 1


def test_maintenance_is_never_in_need_of_attention(owner, make_connection):
    make_connection(
        Status.MAINTENANCE,
        last_probe_ok=False,
        last_probe_error="auth: stale from before",
        last_probe_class="auth",
    )
    o = summary.build(owner)
    assert o.attention == [] and o.total.attention == 0 and o.maintenance == 1
    html = client_for(owner).get(HOME).content.decode()
    assert "Nothing needs attention" in html


def test_needs_attention_is_bounded_with_a_link_to_the_rest(owner, make_connection):
    for _ in range(summary.ATTENTION_LIMIT + 3):
        make_connection(Status.DISCONNECTED)
    o = summary.build(owner)
    assert len(o.attention) == summary.ATTENTION_LIMIT and o.more_attention == 3
    html = client_for(owner).get(HOME).content.decode()
    assert "and 3 more:" in html
    assert f"{LIST}?status=disconnected&amp;status=not_found" in html


# --- latest transitions -----------------------------------------------------------------------


def test_latest_transitions_are_the_newest_visible_ones(overview_world, owner):
    o = summary.build(owner)
    assert o.transitions[0].connection.name == "prod-api"  # reachable again, 2 h ago
    assert o.transitions[0].reason == "reachable again"
    assert all(t.connection.name != "strangers-own" for t in o.transitions)
    html = client_for(owner).get(HOME).content.decode()
    panel = re.search(r'id="ov-transitions-title".*?</section>', html, re.S).group()
    assert "reachable again" in panel and "by probe" in panel and "title=" in panel


def test_latest_transitions_are_bounded(owner, make_connection):
    c = make_connection(Status.REGISTERED)
    for i in range(summary.TRANSITIONS_LIMIT + 5):
        flip(c, Status.REGISTERED, Status.REGISTERED, timedelta(minutes=i))
    assert len(summary.build(owner).transitions) == summary.TRANSITIONS_LIMIT


@pytest.mark.parametrize("theirs", [0, 3, 40])
def test_a_user_who_sees_little_gets_their_newest_transitions_in_order(
    monkeypatch, owner, stranger, make_connection, theirs
):
    """The log is read newest first in pages checked against what the user sees; a user whose
    transitions sit behind many pages of others' still gets theirs, in order, and none of
    others'."""
    monkeypatch.setattr(summary, "TRANSITION_PAGE", 4)  # 3 pages: 12 rows, then one query
    mine = make_connection(Status.REGISTERED, owner=stranger)
    others = make_connection(Status.REGISTERED)
    for i in range(30):  # the newest 30: someone else's
        flip(others, Status.REGISTERED, Status.REGISTERED, timedelta(minutes=i))
    for i in range(theirs):  # older, and interleaved equal times would not matter
        flip(mine, Status.REGISTERED, Status.REGISTERED, timedelta(hours=1, minutes=i), f"m{i}")
    found = summary.build(stranger).transitions
    assert [t.reason for t in found] == [f"m{i}" for i in range(min(theirs, 20))]
    staff = owner.__class__.objects.create_user("staff-x", "x", is_staff=True)
    assert len(summary.build(staff).transitions) == 20


def test_transitions_at_the_same_moment_are_neither_lost_nor_repeated(
    monkeypatch, owner, make_connection
):
    monkeypatch.setattr(summary, "TRANSITION_PAGE", 4)
    c = make_connection(Status.REGISTERED)
    at = timezone.now() - timedelta(minutes=5)
    made = [
        ConnectionTransition.objects.create(
            connection=c, from_status="registered", to_status="registered", created_at=at
        ).pk
        for _ in range(9)
    ]
    viewer_sees = summary.build(owner).transitions
    assert [t.pk for t in viewer_sees] == sorted(made, reverse=True)


# --- the page: sign-in, the live fragment, its cost ---------------------------------------------


def test_anonymous_users_are_sent_to_sign_in():
    response = Client().get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=/")


def test_the_page_polls_and_an_htmx_request_gets_only_the_fragment(overview_world, owner):
    client = client_for(owner)
    page = client.get(HOME)
    html = page.content.decode()
    assert "hx-trigger=\"every 15s [document.visibilityState === 'visible']\"" in html
    assert f'hx-get="{HOME}"' in html and "css/overview.css" in html
    fragment = client.get(HOME, HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert fragment.status_code == 200
    assert "<html" not in body and "<h1" not in body and 'id="overview-live"' not in body
    assert "ov-tiles" in body and "prod-db" in body
    assert "HX-Request" in fragment["Vary"]


def test_a_history_restore_gets_the_whole_page(owner):
    response = client_for(owner).get(
        HOME, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_the_overview_only_answers_get(owner):
    assert client_for(owner).post(HOME).status_code == 405


def _grow(owner, stranger, size: int) -> None:
    """``size`` more connections over five environments, half of them down, each with history."""
    start = Connection.all_objects.count()
    environments = [
        Environment.objects.create(name=f"grow-{start}-{i}", owner=owner) for i in range(5)
    ]
    EnvironmentMembership.objects.create(environment=environments[0], user=stranger)
    statuses = [Status.CONNECTED, Status.DISCONNECTED, Status.NOT_FOUND, Status.MAINTENANCE]
    created = Connection.objects.bulk_create(
        Connection(
            name=f"grow-{start + i}",
            kind="http",
            url=f"http://127.0.0.1:1/grow-{start + i}",
            identity=f"grow|{start + i}",
            status=statuses[i % len(statuses)],
            owner=owner,
            last_probe_ok=i % 5 != 0,
            last_probe_error="" if i % 5 else "auth: HTTP 403",
            last_probe_class="" if i % 5 else "auth",
        )
        for i in range(size)
    )
    ConnectionTransition.objects.bulk_create(
        ConnectionTransition(
            connection=c, from_status=Status.CONNECTED, to_status=c.status, trigger="probe"
        )
        for c in created
    )
    for i, c in enumerate(created):
        environments[i % 5].connections.add(c)


@pytest.mark.parametrize("persona", ["owner", "stranger"])
def test_the_page_costs_the_same_queries_at_any_size(overview_world, owner, stranger, persona):
    user = {"owner": owner, "stranger": stranger}[persona]
    client = client_for(user)
    _grow(owner, stranger, 8)
    client.get(HOME)  # the session's first use
    small = _queries(client)
    _grow(owner, stranger, 150)
    assert _queries(client) == small
    assert _queries(client, HTTP_HX_REQUEST="true") <= small


def _queries(client, **headers) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(HOME, **headers).status_code == 200
    return len(captured.captured_queries)


def test_the_page_stays_within_its_query_budget(
    overview_world, owner, stranger, django_assert_max_num_queries
):
    client = client_for(owner)
    _grow(owner, stranger, 200)
    # session, user, the bell, the change stamp (live/); the overview's eleven (SET LOCAL jit
    # and ten reads: the latest transitions are a page of the log and which of it one may
    # see); in a test its transaction is a savepoint and its release; whether probing has
    # stalled (two index lookups: the oldest due time, the last result counted)
    with django_assert_max_num_queries(19):
        assert client.get(HOME).status_code == 200
