"""The connections table as the server renders it: heartbeats, problems, URLs, filters and
chips, the cost of a page, and the confirmation bulk actions need."""

import base64
import html
import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection as db
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection, ProbeResult
from connections.table.rows import HEARTBEAT_LENGTH, LocalTimes, recent_results, url_parts
from environments.models import Environment
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

LIST = reverse("connections:list")
BULK = reverse("connections:bulk")


def add_results(connection, outcomes, *, start=None, error="Connection refused"):
    """Probe results, oldest first, a minute apart, ending a minute ago."""
    now = start or timezone.now()
    ProbeResult.objects.bulk_create(
        ProbeResult(
            connection=connection,
            checked_at=now - timedelta(minutes=len(outcomes) - i),
            ok=ok,
            latency_ms=10.0 + i if ok else None,
            error_class="" if ok else "connect",
            error="" if ok else error,
        )
        for i, ok in enumerate(outcomes)
    )


def row_html(body, connection):
    match = re.search(rf'<tr data-id="{connection.pk}".*?</tr>', body, re.S)
    assert match, f"no row for {connection.name}"
    return match.group(0)


def bar(row):
    """A row's heartbeat as drawn (each tick's state, left to right, from the SVG's paths) and
    as read (each tick's tooltip, from the bar's one data attribute)."""
    cell = re.search(r'<td class="col-heartbeat">(.*?)</td>', row, re.S).group(1)
    assert cell.count("<span") == 1 and cell.count("<svg") == 1  # one element per row
    drawn = {}
    for state, d in re.findall(r'<path class="beat-(\w+)" d="([^"]*)"/>', cell):
        for x in re.findall(r"M([\d.]+) ", d):
            drawn[float(x)] = state
    titles = json.loads(html.unescape(re.search(r"data-ticks='([^']*)'", cell).group(1)))
    states = [drawn[x] for x in sorted(drawn)]
    assert len(states) == len(titles) == HEARTBEAT_LENGTH
    for state, title in zip(states, titles, strict=True):
        assert title.startswith({"ok": "ok", "failed": "failed", "none": "no probe yet"}[state])
    return states, titles


def ticks(row):
    return bar(row)[0]


# ---- the heartbeat ----------------------------------------------------------------------


def test_the_heartbeat_shows_the_last_30_results_oldest_first(owner, make_connection):
    conn = make_connection(Status.CONNECTED, name="api")
    # 35 results: the 5 oldest fall off; the newest is a failure
    add_results(conn, [True] * 20 + [False] * 3 + [True] * 11 + [False])
    body = client_for(owner).get(LIST).content.decode()
    row = row_html(body, conn)
    assert ticks(row) == ["ok"] * 15 + ["failed"] * 3 + ["ok"] * 11 + ["failed"]
    assert "of api: 4 failed" in row
    titles = bar(row)[1]
    assert titles[-1].startswith("failed · connect: Connection refused · 1 min ago · ")
    assert re.search(r"· \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", titles[-1])  # and the absolute time
    assert re.match(r"ok · \d+ ms · \d+ min ago", titles[-2])


HOSTILE = '"><img src=x onerror=alert(1)>&amp;'


def quotes(text: str) -> str:
    """A quote escaped as ``&#34;`` (Jinja2's spelling) read as ``&quot;`` (Django's)."""
    return text.replace("&#34;", "&quot;")


def test_markup_in_a_name_or_an_error_is_text_in_the_row_and_its_menu(owner, make_connection):
    """The row's menu and ticks are drawn by Jinja2 (templates/jinja2/), not by the template
    language: every value in them is escaped there, in attributes and in text (a quote as
    ``&quot;`` or ``&#34;``: the same character)."""
    conn = make_connection(Status.REGISTERED, name=HOSTILE)
    add_results(conn, [True, False], error=HOSTILE)
    for body in (
        quotes(client_for(owner).get(LIST).content.decode()),
        quotes(
            client_for(owner).get(reverse("connections:detail", args=[conn.pk])).content.decode()
        ),
    ):
        assert "<img src=x" not in body and "&amp;amp;" in body
        assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    row = quotes(row_html(client_for(owner).get(LIST).content.decode(), conn))
    assert re.search(r'data-confirm="&quot;&gt;&lt;img[^"]*: Start managing it', row)
    # a tick's tooltip is JSON in a single-quoted attribute: no quote, < or & is left raw
    cell = re.search(r"data-ticks='([^']*)'", row).group(1)
    assert "<" not in cell and "&" not in cell
    assert bar(row)[1][-1].startswith(f"failed · connect: {HOSTILE} · ")


def test_markup_in_a_url_an_environment_or_a_reason_is_text_in_the_row(owner, make_connection):
    """The whole row is drawn by Jinja2 (jinja2/connections/rows.html): its URL's parts, its
    environments and its problem are escaped there too."""
    conn = make_connection(
        Status.DISCONNECTED, url=f"http://127.0.0.1:8191/{HOSTILE}", last_probe_error=HOSTILE
    )
    Environment.objects.create(name=HOSTILE, owner=owner).connections.add(conn)
    row = quotes(row_html(client_for(owner).get(LIST).content.decode(), conn))
    assert "<img src=x" not in row
    escaped = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;"
    assert f'<span class="url-rest">/{escaped}</span>' in row
    assert f'<td class="col-environments" title="{escaped}">{escaped}</td>' in row
    assert f'<span class="problem" id="why-{conn.pk}" tabindex="0" title="{escaped}">' in row
    assert '<span class="url-port">:8191</span>' in row


def test_a_row_without_environments_or_probes_says_so(owner, make_connection):
    conn = make_connection(Status.REGISTERED, url="http://127.0.0.1:8192")
    row = row_html(client_for(owner).get(LIST).content.decode(), conn)
    assert '<span class="visually-hidden">none</span>' in row
    assert '<span class="muted">never</span>' in row
    assert '<span class="url-cell" title="http://127.0.0.1:8192">' in row
    assert 'aria-label="Last 0 probes of ' in row


@pytest.mark.parametrize(
    ("zone", "at", "shown"),
    [
        # +05:45: no whole-hour slip can pass for it
        ("Asia/Kathmandu", "2026-11-25T06:00:07+00:00", "2026-11-25 11:45:07"),
        # summer time: PostgreSQL reads "CET" as a fixed +01:00, the tz database as Europe's rule
        ("CET", "2026-07-01T12:00:00+00:00", "2026-07-01 14:00:00"),
    ],
)
def test_the_tick_times_are_in_the_current_time_zone(
    settings, owner, make_connection, zone, at, shown
):
    settings.TIME_ZONE = zone
    conn = make_connection(Status.CONNECTED, name="api")
    moment = datetime.fromisoformat(at)
    ProbeResult.objects.create(connection=conn, checked_at=moment, ok=True, latency_ms=4.0)
    Connection.objects.filter(pk=conn.pk).update(last_probe_at=moment, last_latency_ms=4.4)
    row = row_html(client_for(owner).get(LIST).content.decode(), conn)
    assert re.fullmatch(rf"ok · 4 ms · \d+ \w+ ago · {shown}", bar(row)[1][-1])
    # the last probe's cell too: its ISO time carries the zone's offset, its title is local
    local = moment.astimezone(ZoneInfo(zone))
    assert f'datetime="{local.isoformat()}" title="{shown}">' in row
    assert "</time> · 4 ms</td>" in row


@pytest.mark.parametrize(
    ("zone", "around"),
    [
        ("Europe/Berlin", "2026-10-25T01:00:00+00:00"),  # summer time ends: 03:00 -> 02:00
        ("Europe/Berlin", "2026-03-29T01:00:00+00:00"),  # and begins
        ("Australia/Lord_Howe", "2026-10-03T15:30:00+00:00"),  # half an hour, at :30 UTC
        ("America/St_Johns", "2026-11-01T04:30:00+00:00"),  # -02:30 -> -03:30
        ("Asia/Kathmandu", "2026-11-25T06:00:00+00:00"),  # +05:45, no change
        ("UTC", "2026-11-25T06:00:00+00:00"),
        # a change of offset inside a quarter hour: +00:19:32 -> +01:19:32 at 01:40:28 UTC
        ("Europe/Amsterdam", "1930-05-15T01:40:28+00:00"),
    ],
)
def test_tick_times_are_right_on_both_sides_of_a_change_of_offset(zone, around):
    """The ticks' local times are looked up once per quarter hour (LocalTimes): every second
    of the hour around a change of offset reads as the time zone database says."""
    tz = ZoneInfo(zone)
    local = LocalTimes(tz)
    start = datetime.fromisoformat(around).timestamp() - 1800
    for seconds in range(int(start), int(start) + 3600, 7):
        for fraction in (0.0, 0.25, 0.999):
            at = seconds + fraction
            expected = f"{datetime.fromtimestamp(at, tz):%Y-%m-%d %H:%M:%S}"
            assert local(at) == expected, (zone, at)


def test_a_new_connection_has_empty_slots_not_results(owner, make_connection):
    fresh = make_connection(Status.REGISTERED, name="fresh")
    add_results(fresh, [True, False])
    row = row_html(client_for(owner).get(LIST).content.decode(), fresh)
    assert ticks(row) == ["none"] * (HEARTBEAT_LENGTH - 2) + ["ok", "failed"]
    assert bar(row)[1][0] == "no probe yet"


def test_recent_results_takes_the_newest_per_connection_in_one_query(make_connection):
    a, b = make_connection(Status.CONNECTED), make_connection(Status.CONNECTED)
    add_results(a, [True] * 40)
    add_results(b, [False] * 3)
    with CaptureQueriesContext(db) as queries:
        found = recent_results([a.pk, b.pk])
    assert len(queries) == 1
    assert [len(found[a.pk]), len(found[b.pk])] == [30, 3]
    newest = ProbeResult.objects.filter(connection=a).order_by("-checked_at")[:30]
    assert [r.pk for r in found[a.pk]] == [r.pk for r in reversed(newest)]


def _queries_for_page(client, params=None, **headers):
    with CaptureQueriesContext(db) as queries:
        response = client.get(LIST, params or {}, **headers)
    assert response.status_code == 200
    return len(queries)


def test_a_page_costs_the_same_queries_for_3_rows_and_for_50_with_40_results_each(
    owner, make_connection
):
    client = client_for(owner)
    env = Environment.objects.create(name="prod", owner=owner)
    small = [make_connection(Status.CONNECTED) for _ in range(3)]
    env.connections.add(small[0])
    _queries_for_page(client)  # the first page reads the user's columns once (then cached)
    few = _queries_for_page(client)
    for conn in small:
        add_results(conn, [True, False])
    assert _queries_for_page(client) == few
    more = [make_connection(Status.DISCONNECTED) for _ in range(47)]
    for conn in small + more:
        add_results(conn, [True] * 30 + [False] * 10)
    env.connections.add(*more[:20])
    many = _queries_for_page(client)
    assert many == few, f"3 rows: {few} queries, 50 rows: {many}"
    # and a page of 50 among many more connections, sorted by state
    for _ in range(30):
        make_connection(Status.REGISTERED)
    assert _queries_for_page(client, {"sort": "status"}) == few
    # the fragment the refresh fetches: user (the session is read from the cache), the change
    # stamp (live/), counts per state, the rows, their environments, the user's global
    # permissions (Django's has_perm: their own and their groups'), which rows they may change
    # and act on, the heartbeats, the reasons
    assert _queries_for_page(client, HTTP_HX_REQUEST="true") == 10


# ---- the last problem -------------------------------------------------------------------


def test_the_row_shows_why_it_is_not_found_or_disconnected(owner, make_connection):
    gone = make_connection(Status.CONNECTED, name="gone")
    lifecycle.transition(
        gone, Status.DISCONNECTED, trigger=Trigger.PROBE, reason="3 failed probes: timeout"
    )
    failing = make_connection(Status.CONNECTED, name="failing")
    Connection.objects.filter(pk=failing.pk).update(
        last_probe_ok=False, last_probe_at=timezone.now(), last_probe_error="HTTP 503 " + "x" * 300
    )
    healthy = make_connection(Status.CONNECTED, name="healthy")
    body = client_for(owner).get(LIST).content.decode()
    assert 'title="3 failed probes: timeout"' in row_html(body, gone)
    row = row_html(body, failing)
    assert 'class="problem"' in row and "HTTP 503 " + "x" * 300 in row  # whole, clipped by CSS
    assert 'tabindex="0"' in row  # focus shows it too
    assert 'class="problem"' not in row_html(body, healthy)


# ---- URLs, times --------------------------------------------------------------------------


def test_a_url_is_split_so_its_host_and_port_are_never_clipped():
    assert url_parts("http://10.0.0.7:8191/api/v1/health") == {
        "host": "http://10.0.0.7",
        "port": ":8191",
        "rest": "/api/v1/health",
    }
    assert url_parts("https://[::1]:6443") == {"host": "https://[::1]", "port": ":6443", "rest": ""}
    assert url_parts("https://k8s.example.com/x?y=1")["host"] == "https://k8s.example.com"
    assert url_parts("not a url") == {"host": "not a url", "port": "", "rest": ""}
    assert url_parts("http://h:99999/")["host"] == "http://h:99999/"  # invalid port: whole


def test_the_row_has_the_full_url_in_its_title_and_times_as_ago(owner, make_connection):
    conn = make_connection(Status.CONNECTED, url="http://127.0.0.1:8192/a/very/long/path")
    Connection.objects.filter(pk=conn.pk).update(
        last_probe_at=timezone.now() - timedelta(minutes=3), last_probe_ok=True
    )
    row = row_html(client_for(owner).get(LIST).content.decode(), conn)
    assert 'title="http://127.0.0.1:8192/a/very/long/path"' in row
    assert '<span class="url-port">:8192</span>' in row
    assert ">3 min ago</time>" in row


# ---- the state menu ---------------------------------------------------------------------


def test_the_state_menu_is_a_popover_menu_with_edit_for_those_who_may_change(
    owner, stranger, make_connection
):
    conn = make_connection(Status.CONNECTED, name="api")
    body = client_for(owner).get(LIST).content.decode()
    row = row_html(body, conn)
    assert f'popovertarget="state-menu-{conn.pk}"' in row
    assert 'aria-haspopup="menu"' in row and 'aria-expanded="false"' in row
    assert f'id="state-menu-{conn.pk}" popover role="menu"' in row
    assert set(re.findall(r'role="menuitem"[^>]*name="to" value="(\w+)"', row)) == {
        "maintenance",
        "ignored",
        "deleted",
    }
    assert f'href="/connections/{conn.pk}/edit/"' in row
    # a user who may only view: a plain badge, no menu
    env = Environment.objects.create(name="shared", owner=owner)
    env.connections.add(conn)
    env.memberships.create(user=stranger, role="viewer")
    row = row_html(client_for(stranger).get(LIST).content.decode(), conn)
    assert "popovertarget" not in row and "/edit/" not in row and "Connected" in row


# ---- filters and chips ------------------------------------------------------------------


def test_filters_are_checkbox_dropdowns_and_active_ones_are_chips(owner, make_connection):
    env = Environment.objects.create(name="prod", owner=owner)
    conn = make_connection(Status.CONNECTED, name="prom", kind="prometheus")
    env.connections.add(conn)
    make_connection(Status.REGISTERED, name="web")
    client = client_for(owner)
    body = client.get(
        LIST,
        {"status": ["connected"], "kind": "prometheus", "environment": env.pk, "q": "pro"},
    ).content.decode()
    for name in ("status", "kind", "environment", "managed"):
        assert f'<details class="dropdown" id="dd-{name}">' in body
    assert 'type="checkbox" name="status" value="connected"' in body
    assert re.search(r'name="status" value="connected"[^>]*checked', body)
    assert 'type="radio" name="managed" value=""' in body
    chip = r'<li class="chip"><span>([^<]*)</span><a id="chip-[^"]*" class="chip-remove" '
    chip += r'href="([^"]*)"'
    chips = re.findall(chip, body)
    labels = [label for label, _ in chips]
    assert labels == [
        "Search: “pro”",
        "Status: Connected",
        "Kind: Prometheus",
        "Environment: prod",
    ]
    removes = dict(chips)
    assert "status=" not in removes["Status: Connected"].replace("&amp;", "&")
    assert "kind=prometheus" in removes["Status: Connected"]
    assert "Clear all" in body
    # the fragment carries the chips out of band, so removing one updates them
    fragment = client.get(LIST, {"status": "connected"}, HTTP_HX_REQUEST="true").content.decode()
    assert '<div id="filter-chips" class="chips" hx-swap-oob="true">' in fragment
    assert "Status: Connected" in fragment
    # and the summary strip still filters by state
    assert 'id="sum-registered"' in fragment


def test_no_filter_no_chips(owner, make_connection):
    make_connection(Status.CONNECTED)
    body = client_for(owner).get(LIST).content.decode()
    assert '<div id="filter-chips" class="chips">' in body and "Clear all" not in body


# ---- bulk actions: the confirmed count ----------------------------------------------------


def _bulk(user, data, htmx=True):
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client_for(user).post(BULK, data, **extra)


def test_all_matching_needs_the_count_the_user_confirmed(owner, make_connection):
    for i in range(3):
        make_connection(Status.CONNECTED, name=f"p{i}", kind="prometheus")
    data = {"action": "transition:deleted", "all_matching": "1", "query": "kind=prometheus"}
    missing = _bulk(owner, data)
    assert missing.status_code == 400
    assert "needs a confirmation" in missing.content.decode()
    stale = _bulk(owner, {**data, "confirm_count": "2"})
    assert stale.status_code == 409
    text = stale.content.decode()
    assert "you confirmed 2, 3 match now. Nothing was changed" in text
    assert Connection.objects.filter(status=Status.CONNECTED).count() == 3
    # a browser without htmx gets the same refusal as a message after the redirect
    plain = _bulk(owner, {**data, "confirm_count": "9"}, htmx=False)
    assert plain.status_code == 302
    assert Connection.objects.filter(status=Status.CONNECTED).count() == 3
    done = _bulk(owner, {**data, "confirm_count": "3"})
    assert done.status_code == 200
    assert Connection.all_objects.filter(status=Status.DELETED).count() == 3


def test_delete_of_selected_rows_needs_the_confirmation_too(owner, make_connection):
    a, b = make_connection(Status.CONNECTED), make_connection(Status.CONNECTED)
    ids = f"{a.pk},{b.pk}"
    assert _bulk(owner, {"action": "transition:deleted", "ids": ids}).status_code == 400
    assert (
        _bulk(owner, {"action": "transition:deleted", "ids": ids, "confirm_count": "x"}).status_code
        == 400
    )
    assert (
        _bulk(owner, {"action": "transition:deleted", "ids": ids, "confirm_count": "1"}).status_code
        == 409
    )
    assert not Connection.all_objects.filter(status=Status.DELETED).exists()
    ok = _bulk(owner, {"action": "transition:deleted", "ids": ids, "confirm_count": "2"})
    assert ok.status_code == 200
    assert Connection.all_objects.filter(status=Status.DELETED).count() == 2
    # a non-destructive action on chosen rows needs no confirmation
    c = make_connection(Status.CONNECTED)
    assert _bulk(owner, {"action": "transition:maintenance", "ids": str(c.pk)}).status_code == 200


def test_the_page_carries_what_the_confirmation_needs(owner, make_connection):
    for _ in range(3):
        make_connection(Status.CONNECTED)
    body = client_for(owner).get(LIST, {"status": "connected"}).content.decode()
    assert 'data-total="3"' in body
    assert '<input type="hidden" name="confirm_count" value="">' in body
    assert '<dialog id="confirm"' in body and 'aria-describedby="confirm-text"' in body
    assert 'id="selection-count" class="selection-count" aria-live="polite"' in body


def test_each_refusal_names_its_connection_once(owner, make_connection):
    dead = make_connection(Status.NOT_FOUND, name="dead-port")
    busy = make_connection(Status.CONNECTED, name="busy")
    response = client_for(owner).post(
        BULK, {"action": "transition:resume", "ids": f"{dead.pk},{busy.pk}"}, follow=True
    )
    body = response.content.decode()
    assert "&#x27;dead-port&#x27; was left unchanged: it is not in maintenance." in body
    assert "&#x27;busy&#x27; was left unchanged: it is not in maintenance." in body
    response = client_for(owner).post(
        BULK, {"action": "transition:connected", "ids": str(dead.pk)}, follow=True
    )
    body = response.content.decode()
    assert "&#x27;dead-port&#x27; is Not Found: it cannot move to Connected" in body
    assert "&#x27;dead-port&#x27;: " not in body


def test_many_refusals_are_counted_not_listed(owner, make_connection):
    conns = [make_connection(Status.CONNECTED, name=f"c{i:02}") for i in range(14)]
    response = client_for(owner).post(
        BULK,
        {"action": "transition:resume", "ids": ",".join(str(c.pk) for c in conns)},
        follow=True,
    )
    body = response.content.decode()
    assert body.count("was left unchanged: it is not in maintenance.") == 10
    assert "4 more connections were left unchanged." in body


# ---- large tables: capped counts, pages by cursor ----------------------------------------


@pytest.fixture
def small_limits(monkeypatch):
    """The limits of a million-row table, at the scale of a test: counts stop at 5, page
    numbers at row 25 (one page of 25)."""
    from connections.table import context as table
    from connections.views import actions

    monkeypatch.setattr(table, "COUNT_CAP", 5)
    monkeypatch.setattr(table, "OFFSET_PAGES_MAX_ROWS", 25)
    monkeypatch.setattr(actions, "BULK_MAX", 5)


def _names(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return [row["connection"].name for row in response.context["rows"]]


def _follow(client, link):
    return client.get(reverse("connections:list") + link)


def test_next_past_the_numbered_pages_reads_by_cursor_and_visits_every_row_once(
    owner, make_connection, small_limits
):
    for n in range(60):
        make_connection(Status.CONNECTED, name=f"svc-{n % 17:02d}")  # names repeat
    expected = [c.name for c in Connection.objects.order_by("name", "pk")]
    client = client_for(owner)
    response = client.get(reverse("connections:list"), {"per_page": 25})
    seen = _names(response)
    pager = response.context["pager"]
    assert pager["total_text"] == "5+" and "after=" in pager["next"]
    while pager.get("next"):
        response = _follow(client, pager["next"])
        seen += _names(response)
        pager = response.context["pager"]
    assert seen == expected
    last = _follow(client, "?per_page=25&last=1")
    assert _names(last) == expected[-25:]
    previous = _follow(client, last.context["pager"]["previous"])
    assert _names(previous) == expected[-50:-25]
    strip = {state["status"]: state["count_text"] for state in previous.context["summary"]}
    assert strip["connected"] == "5+"  # counted no further than the cap


def test_a_sort_without_a_cursor_stops_at_the_last_numbered_page_and_says_so(
    owner, make_connection, small_limits
):
    for _ in range(40):
        make_connection(Status.CONNECTED)
    response = client_for(owner).get(
        reverse("connections:list"), {"per_page": 25, "sort": "status", "page": 9}
    )
    assert response.status_code == 200
    assert response.context["pager"]["number"] == 1
    assert "Pages by number end at row 25" in response.content.decode()


LONE_SURROGATE = base64.urlsafe_b64encode(b'[["\\ud800"],1]').decode().rstrip("=")


@pytest.mark.parametrize("cursor", ["", "garbage", "W1siYSJdLCAwXQ", "x" * 5000, LONE_SURROGATE])
def test_a_bad_cursor_reads_the_first_page(owner, make_connection, cursor):
    make_connection(Status.CONNECTED, name="first")
    response = client_for(owner).get(reverse("connections:list"), {"after": cursor})
    assert _names(response) == ["first"]


def test_ties_in_a_sorted_column_are_paged_by_cursor_without_repeats_or_gaps(
    owner, make_connection, small_limits
):
    made = [make_connection(Status.CONNECTED, kind="http") for _ in range(60)]
    for connection in made[::3]:  # rewritten rows move in the heap: no physical order helps
        Connection.objects.filter(pk=connection.pk).update(name=connection.name + "-x")
    client = client_for(owner)
    response = client.get(reverse("connections:list"), {"per_page": 25, "sort": "kind"})
    seen = [row["connection"].pk for row in response.context["rows"]]
    pager = response.context["pager"]
    while pager.get("next"):
        response = _follow(client, pager["next"])
        seen += [row["connection"].pk for row in response.context["rows"]]
        pager = response.context["pager"]
    assert seen == sorted(c.pk for c in made)


def test_a_long_name_beyond_ascii_survives_its_cursor(owner, make_connection, small_limits):
    for n in range(30):
        make_connection(Status.CONNECTED, name=f"n{n:03d}" + ("🛰" * 190 if n == 24 else ""))
    client = client_for(owner)
    first = client.get(reverse("connections:list"), {"per_page": 25})
    second = _follow(client, first.context["pager"]["next"])
    assert _names(second) == [f"n{n:03d}" for n in range(25, 30)]


def test_all_matching_is_refused_beyond_what_the_table_counts(owner, make_connection, small_limits):
    for _ in range(8):
        make_connection(Status.CONNECTED)
    response = client_for(owner).post(
        reverse("connections:bulk"),
        {"action": "transition:ignored", "all_matching": "1", "query": "", "confirm_count": "8"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "More than 5 connections match" in response.content.decode()
    assert not Connection.objects.filter(status=Status.IGNORED).exists()


def test_removing_a_chip_starts_from_the_first_page_not_the_old_cursor(
    owner, make_connection, small_limits
):
    for _ in range(30):
        make_connection(Status.CONNECTED)
    client = client_for(owner)
    first = client.get(reverse("connections:list"), {"per_page": 25, "status": "connected"})
    deep = _follow(client, first.context["pager"]["next"])
    assert "after=" in deep.request["QUERY_STRING"]
    (chip,) = deep.context["chips"]
    left = QueryDict(chip["query"])
    assert not any(p in left for p in ("after", "before", "last", "page")), chip["query"]


def test_the_connection_pages_state_menu_links_to_its_edit_page(owner, make_connection):
    """The state menu is one macro for the table's rows and the connection's page: on both, its
    Edit item opens the connection's edit page."""
    conn = make_connection(Status.REGISTERED)
    edit = reverse("connections:edit", args=[conn.pk])
    client = client_for(owner)
    page = client.get(reverse("connections:detail", args=[conn.pk])).content.decode()
    menu = page[page.index(f'id="state-menu-{conn.pk}"') :]
    assert f'href="{edit}"' in menu[: menu.index("</div>")]
    assert client.get(edit).status_code == 200
    row = row_html(client.get(LIST).content.decode(), conn)
    assert f'href="{edit}"' in row


@pytest.mark.parametrize("debug", [False, True])
def test_a_name_the_jinja2_templates_do_not_get_is_an_error_not_empty_markup(settings, debug):
    """Django's Jinja2 backend passes its own ``undefined``: the project's environment must
    still make an unknown name an error, DEBUG on or off (an empty CSRF token or link would
    otherwise render silently)."""
    import jinja2
    from django.template import engines
    from django.test.utils import override_settings

    templates = [dict(t) for t in settings.TEMPLATES]
    with override_settings(DEBUG=debug, TEMPLATES=templates):
        env = engines["jinja2"].env
        assert env.undefined is jinja2.StrictUndefined
        with pytest.raises(jinja2.UndefinedError):
            env.from_string("{{ nope }}").render()


def test_an_empty_table_says_why_and_offers_the_way_out(owner, make_connection):
    """No connection yet: add one or import. Filters that match nothing: clear them (and never
    speak of filters that are not set)."""
    fresh = client_for(owner).get(LIST).content.decode()
    assert "No connections yet." in fresh and "filters" not in fresh.split('class="empty"')[1][:300]
    assert reverse("connections:import") in fresh.split('class="empty"')[1][:400]
    make_connection(Status.CONNECTED, name="api")
    filtered = client_for(owner).get(LIST, {"status": "maintenance"}).content.decode()
    empty = filtered.split('class="empty"')[1][:400]
    assert "No connections match these filters." in empty
    assert 'id="empty-clear"' in empty and "status=maintenance" not in empty
