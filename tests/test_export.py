"""CSV and JSON export of exactly the rows the table's filters select: every one of them (not a
page), in the table's order, only what the user may see, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

import pytest

from connections.choices import Status
from connections.models import Connection
from connections.tagging import set_tags
from environments.models import Environment
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


def download(client, fmt="csv", **params):
    response = client.get(f"/connections/export.{fmt}", params)
    body = b"".join(response.streaming_content).decode() if response.status_code == 200 else ""
    return response, body


def csv_rows(body: str) -> list[dict]:
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


def test_the_export_is_every_row_the_filters_select_in_the_table_order(owner, make_connection):
    for i in range(60):  # more than a page
        make_connection(Status.CONNECTED, name=f"up-{i:02d}")
    down = make_connection(Status.DISCONNECTED, name="down-1")
    client = client_for(owner)
    response, body = download(client, status="connected", sort="-name", per_page="25")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="connections-')
    rows = csv_rows(body)
    assert [r["name"] for r in rows] == [f"up-{i:02d}" for i in reversed(range(60))]
    assert down.name not in body
    assert set(rows[0]) >= {"id", "name", "state", "environments", "tags", "uptime_24h", "problem"}


def test_json_has_lists_and_figures(owner, make_connection):
    conn = make_connection(Status.DISCONNECTED, name="api", last_probe_ok=False)
    Connection.objects.filter(pk=conn.pk).update(
        uptime_24h=87.5,
        last_probe_class="refused",
        last_probe_error="refused: cannot connect: [Errno 111]",
        url="http://127.0.0.1:18086/",
    )
    env = Environment.objects.create(name="prod", owner=owner)
    env.connections.add(conn)
    set_tags(conn, ["team=web", "prod"])
    response, body = download(client_for(owner), "json")
    assert response["Content-Type"] == "application/json"
    (row,) = json.loads(body)
    assert row["environments"] == ["prod"] and row["tags"] == ["prod", "team=web"]
    assert row["uptime_24h"] == 87.5 and row["uptime_7d"] is None
    assert row["state"] == "disconnected"
    assert row["problem"].startswith("Nothing listens on 127.0.0.1:18086")


def test_a_cell_a_spreadsheet_would_run_is_written_as_text(owner, make_connection):
    make_connection(Status.CONNECTED, name='=HYPERLINK("http://evil.test","x")')
    make_connection(Status.CONNECTED, name="+1-2")
    make_connection(Status.CONNECTED, name="@SUM(A1)")
    names = {r["name"] for r in csv_rows(download(client_for(owner))[1])}
    assert names == {'\'=HYPERLINK("http://evil.test","x")', "'+1-2", "'@SUM(A1)"}
    # the JSON is data, not a spreadsheet: as typed
    rows = json.loads(download(client_for(owner), "json")[1])
    assert "+1-2" in {r["name"] for r in rows}


def test_only_what_the_user_may_see_and_the_environment_page_export(
    owner, stranger, make_connection
):
    mine = make_connection(Status.CONNECTED, name="mine")
    shared = make_connection(Status.CONNECTED, name="shared")
    env = Environment.objects.create(name="prod", owner=owner)
    env.connections.add(shared)
    env.memberships.create(user=stranger, role="viewer")
    stranger_client = client_for(stranger)
    assert [r["name"] for r in csv_rows(download(stranger_client)[1])] == ["shared"]
    # the environment page's export: its rows only
    own = client_for(owner)
    rows = csv_rows(download(own, within_environment=env.pk)[1])
    assert [r["name"] for r in rows] == ["shared"]
    assert mine.name in download(own)[1]
    # an environment one may not see is no filter: refused, never "its rows"
    hidden = Environment.objects.create(name="secret", owner=owner)
    hidden.connections.add(mine)
    response, _ = download(stranger_client, within_environment=hidden.pk)
    assert response.status_code == 400
    # the page links its export with its filters
    page = own.get(f"/environments/{env.pk}/").content.decode()
    assert f"/connections/export.csv?within_environment={env.pk}" in page


def test_bad_filters_and_formats_are_refused(owner, make_connection, client):
    make_connection(Status.CONNECTED)
    own = client_for(owner)
    for params in ({"status": "bogus"}, {"environment": "99999999999999999999"}, {"tag": "x"}):
        response, _ = download(own, **params)
        assert response.status_code == 400, params
        assert "not valid" in response.content.decode()
    assert own.get("/connections/export.xml").status_code == 404
    assert own.get("/connections/export.csv/").status_code == 404
    # a bad sort is the default order, not an error
    assert download(own, sort="nonsense")[0].status_code == 200
    assert client.get("/connections/export.csv").status_code == 302  # sign in first


def test_the_table_links_its_export_with_its_filters(owner, make_connection):
    make_connection(Status.CONNECTED, name="a")
    page = client_for(owner).get("/connections/", {"status": "connected", "q": "a"})
    html = page.content.decode()
    assert 'href="/connections/export.csv?status=connected&amp;q=a" download' in html
    assert 'id="export-json"' in html


def test_more_rows_than_an_export_may_hold_is_refused_with_the_way_out(
    owner, make_connection, monkeypatch
):
    from connections import exporting

    monkeypatch.setattr(exporting, "EXPORT_MAX", 3)
    for i in range(4):
        make_connection(Status.CONNECTED, name=f"c{i}")
    own = client_for(owner)
    response, _ = download(own)
    assert response.status_code == 400
    assert "More than 3 connections match: narrow the filters" in response.content.decode()
    assert len(csv_rows(download(own, q="c1")[1])) == 1  # narrowed: fine


def test_the_environment_sort_never_orders_by_a_name_one_may_not_see(
    owner, stranger, make_connection
):
    """Sorting by environments reads only the environments the reader may see: an order would
    otherwise tell the name of a hidden one, a letter at a time."""
    shared = make_connection(Status.CONNECTED, name="shared")
    visible = Environment.objects.create(name="zzz-shared", owner=owner)
    visible.connections.add(shared)
    visible.memberships.create(user=stranger, role="viewer")
    hidden = Environment.objects.create(name="acme-merger", owner=owner)
    hidden.connections.add(shared)
    mine = make_connection(Status.CONNECTED, name="mine")
    Connection.objects.filter(pk=mine.pk).update(owner=stranger)
    own_env = Environment.objects.create(name="b", owner=stranger)
    own_env.connections.add(mine)
    client = client_for(stranger)
    order = [r["name"] for r in csv_rows(download(client, sort="environments")[1])]
    assert order == ["mine", "shared"]  # "b" before "zzz-shared"; "acme-merger" never counts
