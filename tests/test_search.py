"""The header's search box: connections (name, URL, tag), environments, credentials and
channels, each only among what the searcher may see."""

from __future__ import annotations

import re

import pytest

from connections.choices import Status
from connections.tagging import set_tags
from credentials.models import Credential
from environments.models import Environment
from notifications import channels as notify_channels
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


def found(client, q) -> dict[str, list[str]]:
    response = client.get("/search/", {"q": q})
    html = response.content.decode()
    groups = {}
    for title, body in re.findall(r'<h2 id="found-\d+">([^<]+)</h2>(.*?)</section>', html, re.S):
        groups[title] = re.findall(r'<li><a href="[^"]+">([^<]+)</a>', body)
    return groups


def test_one_box_finds_every_kind_by_name(owner, make_connection):
    api = make_connection(Status.CONNECTED, name="payments-api", url="http://10.0.0.7:8080/")
    make_connection(Status.CONNECTED, name="search-db")
    set_tags(api, ["team=payments"])
    Environment.objects.create(name="payments-prod", owner=owner)
    credential = Credential(name="payments token", kind="bearer_token", owner=owner)
    credential.set_secret({"token": "s3cret-value"})
    credential.save()
    notify_channels.create_channel(
        owner, name="payments on-call", kind="email", destination="oncall@example.com"
    )
    client = client_for(owner)
    groups = found(client, "payments")
    assert groups["Connections"] == ["payments-api"]
    assert groups["Environments"] == ["payments-prod"]
    assert groups["Credentials"] == ["payments token"]
    assert groups["Notification channels"] == ["payments on-call"]
    assert "s3cret-value" not in client.get("/search/", {"q": "payments"}).content.decode()
    # a URL, a tag
    assert found(client, "10.0.0.7")["Connections"] == ["payments-api"]
    assert found(client, "team=payments")["Connections"] == ["payments-api"]


def test_nothing_of_others_is_found(owner, stranger, make_connection):
    make_connection(Status.CONNECTED, name="acquisition-target")
    Environment.objects.create(name="acquisition", owner=owner)
    client = client_for(stranger)
    response = client.get("/search/", {"q": "acquisition"})
    assert response.status_code == 200
    assert "acquisition-target" not in response.content.decode().replace("“acquisition”", "")
    assert found(client, "acquisition") == {}
    assert "Nothing you may see" in response.content.decode()


def test_many_matches_link_to_the_table_and_bad_input_is_calm(owner, make_connection):
    for i in range(12):
        make_connection(Status.CONNECTED, name=f"web-{i:02d}")
    client = client_for(owner)
    html = client.get("/search/", {"q": "web"}).content.decode()
    assert len(found(client, "web")["Connections"]) == 10
    assert 'href="/connections/?q=web" id="all-connections"' in html
    assert client.get("/search/", {"q": "x" * 201}).status_code == 400
    for hostile in ("\x00", "\r\nSet-Cookie: a=b", "%", "_", "١٢", "<script>"):
        response = client.get("/search/", {"q": hostile})
        assert response.status_code in (200, 400), hostile
        assert "<script>" not in response.content.decode().split("</header>")[1]
    assert client.get("/search/").status_code == 200
    # the box is in every page's header
    assert 'id="header-q"' in client.get("/connections/").content.decode()


def test_search_needs_a_sign_in(client):
    assert client.get("/search/", {"q": "x"}).status_code == 302


def test_the_table_search_reads_the_trigram_indexes_on_postgresql(owner, make_connection):
    """The search is a UNION of index reads (names, URLs: migration 0023's trigram indexes;
    tags) instead of a scan of every row: the indexes match the ORM's expression (the figures
    at a million rows: bench/table.py)."""
    from django.db import connection as db

    from connections.filters import ConnectionFilterSet
    from connections.models import Connection

    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL's indexes")
    make_connection(Status.CONNECTED, name="payments-api")
    rows = ConnectionFilterSet({"q": "paym"}, queryset=Connection.objects.all()).qs
    # the branch of the URLs, as the search writes it (a tiny table's planner reads the other
    # branches its own way)
    branch = Connection.all_objects.filter(url__icontains="paym").order_by().values("pk")
    sql, params = branch.query.sql_with_params()
    with db.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'connections_connection'"
            " AND indexdef LIKE '%%gin_trgm_ops%%' ORDER BY 1"
        )
        trigram = [row[0] for row in cursor.fetchall()]
    # both exist; the planner reads one of them here (a tiny table has cheaper ways for the
    # other): the expression the ORM writes is the one indexed
    assert trigram == ["connection_name_trgm_idx", "connection_url_trgm_idx"]
    assert "connection_url_trgm_idx" in plan, plan
    assert [c.name for c in rows] == ["payments-api"]
