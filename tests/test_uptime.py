"""Uptime and mean latency per connection: read from the probe history (raw results and hourly
roll-ups), kept on the row by a beat task, shown and sorted in the table; the columns a user
shows are their choice, remembered."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from connections.choices import Status
from connections.models import Connection, ProbeResult, ProbeRollup, TableColumns
from connections.probing import uptime
from connections.table.columns import DEFAULT_HIDDEN
from connections.tasks import refresh_uptime
from core.figures import latency_text, percent_text
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _from_the_start():
    """Each test's refresh starts at the first connection (the last run's point is cached)."""
    from django.core.cache import cache

    cache.delete(uptime.RESUME_KEY)


def results(connection, outcomes, *, ago=timedelta(minutes=1), latency=20.0):
    """Raw results, one a second apart, the newest ``ago`` before now."""
    now = timezone.now() - ago
    ProbeResult.objects.bulk_create(
        ProbeResult(
            connection=connection,
            checked_at=now - timedelta(seconds=i),
            ok=ok,
            latency_ms=latency if ok else None,
            error_class="" if ok else "connect",
        )
        for i, ok in enumerate(outcomes)
    )


def rollup(connection, hours_ago, ok, failed, latency_sum=0.0, latency_count=0):
    hour = (timezone.now() - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
    ProbeRollup.objects.create(
        connection=connection,
        hour=hour,
        ok_count=ok,
        failed_count=failed,
        latency_sum_ms=latency_sum,
        latency_count=latency_count,
    )


# ---- how figures are written ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "no data"),
        (100.0, "100 %"),
        (99.99999, "99.99 %"),  # one failure in millions is not "100 %"
        (99.5, "99.5 %"),
        (0.0, "0 %"),
        (87.0, "87 %"),
    ],
)
def test_an_uptime_is_never_rounded_up_to_100_and_no_data_is_said(value, text):
    assert percent_text(value) == text


def test_latency_text():
    assert latency_text(None) == "no data"
    assert latency_text(0.4) == "<1 ms"
    assert latency_text(1234.6) == "1,235 ms"


# ---- the figures ---------------------------------------------------------------------------


def test_nothing_probed_is_no_data_not_100(make_connection):
    quiet = make_connection(Status.REGISTERED)
    assert uptime.figures([quiet.pk])[quiet.pk] == {
        "uptime_24h": None,
        "uptime_7d": None,
        "uptime_30d": None,
        "latency_mean_ms": None,
    }


def test_each_window_counts_raw_results_and_hourly_rollups_inside_it(make_connection):
    conn = make_connection(Status.CONNECTED)
    results(conn, [True] * 9 + [False])  # the last hour: 9 of 10
    rollup(conn, 30, ok=10, failed=0)  # yesterday: in 7 d and 30 d, not in 24 h
    rollup(conn, 24 * 20, ok=0, failed=20)  # 20 days ago: only in 30 d
    rollup(conn, 24 * 40, ok=0, failed=1000)  # older than every window: counts nowhere
    got = uptime.figures([conn.pk])[conn.pk]
    assert got["uptime_24h"] == 90.0
    assert got["uptime_7d"] == 95.0  # 19 of 20
    assert got["uptime_30d"] == 47.5  # 19 of 40
    assert got["latency_mean_ms"] == 20.0


def test_latency_is_the_mean_of_successful_probes_of_the_last_day(make_connection):
    conn = make_connection(Status.CONNECTED)
    results(conn, [True, True], latency=10.0)
    rollup(conn, 3, ok=2, failed=5, latency_sum=100.0, latency_count=2)  # two at 50 ms
    rollup(conn, 48, ok=1, failed=0, latency_sum=9000.0, latency_count=1)  # not the last day
    assert uptime.figures([conn.pk])[conn.pk]["latency_mean_ms"] == 30.0


# ---- the refresh ---------------------------------------------------------------------------


def test_the_refresh_writes_the_figures_and_only_them(make_connection):
    conn = make_connection(Status.CONNECTED)
    results(conn, [True, False, True, True])
    before = Connection.objects.values("status", "state_version", "updated_at").get(pk=conn.pk)
    report = refresh_uptime()
    assert report["written"] == 1 and report["resume"] is None
    conn.refresh_from_db()
    assert conn.uptime_24h == 75.0 and conn.uptime_30d == 75.0 and conn.latency_mean_ms == 20.0
    # a transition's fields and the row's change time are untouched
    after = Connection.objects.values("status", "state_version", "updated_at").get(pk=conn.pk)
    assert after == before
    # nothing changed: nothing written
    assert refresh_uptime()["written"] == 0


def test_a_failure_ageing_out_of_the_window_raises_the_uptime(make_connection, time_machine):
    conn = make_connection(Status.CONNECTED)
    results(conn, [False], ago=timedelta(hours=23, minutes=59))
    results(conn, [True])
    refresh_uptime()
    conn.refresh_from_db()
    assert conn.uptime_24h == 50.0
    time_machine.move_to(timezone.now() + timedelta(minutes=5))
    refresh_uptime()
    conn.refresh_from_db()
    assert conn.uptime_24h == 100.0 and conn.uptime_7d == 50.0


def test_a_refresh_out_of_budget_says_where_the_next_resumes(make_connection, monkeypatch):
    monkeypatch.setattr(uptime, "UPTIME_CHUNK", 2)
    conns = [make_connection(Status.CONNECTED) for _ in range(5)]
    for conn in conns:
        results(conn, [True])
    first = uptime.refresh(after=0, budget=0)
    assert first["seen"] == 2 and first["resume"] == conns[1].pk
    rest = uptime.refresh(after=first["resume"], budget=0)
    assert rest["resume"] == conns[3].pk
    assert uptime.refresh(after=rest["resume"], budget=0)["resume"] is None
    assert set(Connection.objects.values_list("uptime_24h", flat=True)) == {100.0}
    # a run that is not told where to start goes on where the last one stopped
    Connection.objects.update(uptime_24h=None)
    partial = uptime.refresh(after=0, budget=0)
    assert uptime.refresh(budget=0)["seen"] == 2  # from partial's point: the next two
    assert partial["resume"] == conns[1].pk
    assert list(Connection.objects.order_by("pk").values_list("uptime_24h", flat=True)) == [
        100.0,
        100.0,
        100.0,
        100.0,
        None,
    ]


def test_a_second_refresh_at_once_returns_without_work(make_connection):
    from django.db import connection as db

    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL's advisory lock")
    results(make_connection(Status.CONNECTED), [True])
    # another run holds the lock (its own session, as another worker's)
    import psycopg
    from django.conf import settings

    other = settings.DATABASES["default"]
    with psycopg.connect(
        dbname=other["NAME"], user=other["USER"], host=other["HOST"], port=other["PORT"]
    ) as session:
        session.execute("SELECT pg_advisory_lock(%s)", [uptime.LOCK_KEY])
        assert uptime.refresh(after=0)["skipped"] is True
        session.execute("SELECT pg_advisory_unlock(%s)", [uptime.LOCK_KEY])
    assert uptime.refresh(after=0)["written"] == 1


def test_a_refresh_writes_only_when_what_is_shown_changes(make_connection):
    conn = make_connection(Status.CONNECTED)
    results(conn, [True], latency=20.2)
    assert uptime.refresh(after=0)["written"] == 1
    results(conn, [True], latency=20.3, ago=timedelta(minutes=2))  # mean 20.25: still 20 ms
    assert uptime.refresh(after=0)["written"] == 0
    conn.refresh_from_db()
    assert conn.latency_mean_ms == 20.0


# ---- the table -----------------------------------------------------------------------------


def names_in_order(html: str) -> list[str]:
    return re.findall(r'id="name-\d+" href="[^"]*" title="([^"]*)"', html)


def test_the_table_shows_and_sorts_uptime_with_no_data_last_both_ways(owner, make_connection):
    figures = {"flaky": 80.0, "solid": 100.0, "mostly": 99.5, "unprobed": None}
    for name, value in figures.items():
        conn = make_connection(Status.CONNECTED)
        Connection.objects.filter(pk=conn.pk).update(name=name, uptime_24h=value)
    client = client_for(owner)
    html = client.get("/connections/", {"sort": "uptime_24h"}).content.decode()
    assert names_in_order(html) == ["flaky", "mostly", "solid", "unprobed"]
    assert "99.5 %" in html and "no data" in html
    html = client.get("/connections/", {"sort": "-uptime_24h"}).content.decode()
    assert names_in_order(html) == ["solid", "mostly", "flaky", "unprobed"]
    # a sort by a figure pages by number, and every page is whole
    page = client.get("/connections/", {"sort": "uptime_7d", "page": "1"})
    assert page.status_code == 200 and len(names_in_order(page.content.decode())) == 4


def test_a_low_uptime_is_marked_in_words_and_colour(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    Connection.objects.filter(pk=conn.pk).update(uptime_24h=90.0)
    html = client_for(owner).get("/connections/").content.decode()
    assert '<span class="uptime uptime-bad">90 %</span>' in html


# ---- the column chooser --------------------------------------------------------------------


def table_classes(html: str) -> set[str]:
    return set(re.search(r'<table class="([^"]*)"', html).group(1).split())


def test_columns_a_user_chooses_are_remembered_per_user(owner, stranger, make_connection):
    make_connection(Status.CONNECTED)
    mine, theirs = client_for(owner), client_for(stranger)
    assert {f"hide-{c}" for c in DEFAULT_HIDDEN} <= table_classes(
        mine.get("/connections/").content.decode()
    )
    answer = mine.post(
        "/connections/columns/",
        {"show": ["uptime_24h", "uptime_30d", "latency_mean_ms", "no-such-column"]},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 204
    classes = table_classes(mine.get("/connections/").content.decode())
    assert "hide-uptime_30d" not in classes and "hide-latency_mean_ms" not in classes
    assert {"hide-kind", "hide-url", "hide-heartbeat", "hide-uptime_7d"} <= classes
    assert TableColumns.objects.get(user=owner).hidden.count("no-such-column") == 0
    # the chooser's boxes say the same
    page = mine.get("/connections/").content.decode()
    assert re.search(r'id="show-uptime_30d" data-column="uptime_30d" checked', page)
    assert not re.search(r'id="show-kind" data-column="kind" checked', page)
    # another user keeps the defaults
    assert "hide-uptime_30d" in table_classes(theirs.get("/connections/").content.decode())
    # without script: the form posts and comes back to the table
    back = mine.post("/connections/columns/", {"show": ["kind"], "next": "/connections/?q=x"})
    assert back.status_code == 302 and back["Location"] == "/connections/?q=x"
    away = mine.post("/connections/columns/", {"show": ["kind"], "next": "https://evil.test/"})
    assert away["Location"] == "/connections/"


def test_the_chooser_refuses_get_and_strangers(client, owner):
    assert client.post("/connections/columns/", {"show": ["kind"]}).status_code == 302  # sign in
    assert client_for(owner).get("/connections/columns/").status_code == 405
    assert not TableColumns.objects.exists()


def test_one_failure_in_a_million_probes_is_not_100(make_connection):
    conn = make_connection(Status.CONNECTED)
    rollup(conn, 2, ok=999_999, failed=1)
    refresh_uptime()
    conn.refresh_from_db()
    assert conn.uptime_24h < 100 and percent_text(conn.uptime_24h) == "99.99 %"


# ---- the connection page's health card -----------------------------------------------------


def health_of(client, conn, **params) -> str:
    return client.get(f"/connections/{conn.pk}/", params).content.decode()


def test_the_range_picker_changes_what_the_figures_count(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    results(conn, [True, True, True, False], ago=timedelta(minutes=5), latency=40.0)
    rollup(conn, 24 * 3, ok=6, failed=0, latency_sum=60.0, latency_count=6)  # 3 days ago
    client = client_for(owner)
    day = health_of(client, conn)  # the last 24 h by default
    assert 'id="range-uptime">75 %<' in day and 'id="range-latency">40 ms<' in day
    assert 'id="range-24h" href="?range=24h#health" hx-get="?range=24h"' in day
    assert re.search(r'id="range-24h"[^>]*aria-current="true"', day)
    week = health_of(client, conn, range="7d")
    assert 'id="range-uptime">90 %<' in week  # 9 of 10
    assert 'id="range-latency">20 ms<' in week  # (3 × 40 + 6 × 10) / 9
    # a range without a probe says so, and a bad range is the default one
    old = make_connection(Status.CONNECTED)
    rollup(old, 24 * 20, ok=5, failed=0)
    assert "No data in this range" in health_of(client, old, range="1h")
    assert 'id="range-uptime">no data<' in health_of(client, old, range="1h")
    assert 'id="range-uptime">100 %<' in health_of(client, old, range="30d")
    assert health_of(client, old, range="<script>").count('aria-current="true"') >= 1
    assert client.get(f"/connections/{old.pk}/", {"range": "x" * 5000}).status_code == 200


def test_the_90_day_bar_says_no_data_and_never_makes_up_a_green_day(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    rollup(conn, 24 * 10, ok=99, failed=1)  # ten days ago: 99 %
    results(conn, [True])  # today
    html = health_of(client_for(owner), conn)
    cells = re.findall(r'<rect [^>]*class="day day-(\w+)"><title>([^<]*)</title>', html)
    assert len(cells) == 90
    levels = [level for level, _ in cells]
    assert levels.count("none") == 88 and levels[-1] == "ok"
    assert (
        sum(1 for level, title in cells if level == "warn" and "99 % up, 100 probes" in title) == 1
    )
    assert all(title.endswith(": no data") for level, title in cells if level == "none")
    assert "88 without data" in html


def test_a_column_choice_changes_the_fragment_an_open_tab_polls(owner, make_connection):
    """The poll of an open tab answers 304 while nothing it shows changed; a column shown
    since is a change (else its cells, never drawn, stay empty until a reload)."""
    make_connection(Status.CONNECTED)
    client = client_for(owner)
    first = client.get("/connections/", HTTP_HX_REQUEST="true")
    etag = first["ETag"]
    again = client.get("/connections/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    client.post("/connections/columns/", {"show": ["tags"]}, HTTP_HX_REQUEST="true")
    after = client.get("/connections/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
    assert after.status_code == 200 and "hide-tags" not in after.content.decode()
