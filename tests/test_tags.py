"""Tags on connections: what a tag may be, setting them (edit page, API), filtering and searching
by them, adding or removing one on many rows, and never learning of a connection through one."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from connections.choices import Status
from connections.models import Connection, Tag
from connections.tagging import MAX_TAGS_PER_CONNECTION, clean_tags, set_tags
from environments.models import Environment
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


# ---- what a tag may be ---------------------------------------------------------------------


def test_tags_are_cleaned_to_one_spelling():
    assert clean_tags("Prod, TEAM=Payments  eu-west,prod") == ["prod", "team=payments", "eu-west"]
    assert clean_tags("ｐｒｏｄ") == ["prod"]  # full-width letters are their ASCII twins
    assert clean_tags("") == [] and clean_tags([]) == []


@pytest.mark.parametrize(
    "bad",
    [
        "-leading",
        "x" * 51,
        "ümlaut",
        "١٢٣",  # Arabic-Indic digits: not ASCII digits
        "a\x00b",
        "semi;colon",
        "<script>",
    ],
)
def test_a_bad_tag_is_refused_with_a_message(bad):
    with pytest.raises(ValidationError) as caught:
        clean_tags([bad])
    assert "tag" in caught.value.messages[0]
    assert "\x00" not in caught.value.messages[0]


def test_at_most_20_tags_and_only_texts():
    with pytest.raises(ValidationError, match="At most 20"):
        clean_tags(" ".join(f"t{i}" for i in range(MAX_TAGS_PER_CONNECTION + 1)))
    with pytest.raises(ValidationError, match="list of texts"):
        clean_tags([1, 2])
    with pytest.raises(ValidationError):
        clean_tags("a," * 10_000)  # a huge text is refused before it is split
    with pytest.raises(ValidationError, match="At most 20"):
        clean_tags([f"t{i}" for i in range(30_000)])  # a huge list: before any is read


# ---- setting them --------------------------------------------------------------------------


def edit_data(client, conn, **changes):
    page = client.get(reverse("connections:edit", args=[conn.pk])).content.decode()
    version = re.search(r'name="version" value="([^"]*)"', page).group(1)
    shown = re.search(r'name="tags_shown" value="([^"]*)"', page)
    data = {
        "name": conn.name,
        "url": conn.url,
        "failure_threshold": conn.failure_threshold,
        "probe_interval": conn.probe_interval,
        "retry_interval": conn.retry_interval,
        "version": version,
        "tags_shown": shown.group(1) if shown else "",
    }
    data.update(changes)
    return data


def test_the_edit_page_sets_tags_and_says_what_changed(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    client = client_for(owner)
    answer = client.post(
        reverse("connections:edit", args=[conn.pk]),
        edit_data(client, conn, tags="prod, Team=Payments"),
        follow=True,
    )
    assert "tagged &#x27;prod&#x27;; tagged &#x27;team=payments&#x27;" in answer.content.decode()
    assert sorted(conn.tags.values_list("name", flat=True)) == ["prod", "team=payments"]
    # a bad tag: nothing saved, the message says why, the typed text is kept
    bad = client.post(
        reverse("connections:edit", args=[conn.pk]),
        edit_data(client, conn, tags="prod, bad tag!", name="renamed"),
    )
    assert bad.status_code == 400
    body = bad.content.decode()
    assert "“bad” is not a tag" not in body and "“tag!” is not a tag" in body
    conn.refresh_from_db()
    assert conn.name != "renamed"
    # a tag someone added while the page was open stays; one removed on the page goes
    data = edit_data(client, conn, tags="prod")
    set_tags(conn, ["prod", "team=payments", "oncall"])  # meanwhile, elsewhere
    answer = client.post(reverse("connections:edit", args=[conn.pk]), data, follow=True)
    assert "untagged &#x27;team=payments&#x27;" in answer.content.decode()
    assert sorted(conn.tags.values_list("name", flat=True)) == ["oncall", "prod"]
    # an unused tag is never offered (nor kept on any connection)
    assert "team=payments" not in client.get("/connections/").content.decode()


def test_the_api_reads_and_replaces_tags(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    client = client_for(owner)
    url = f"/api/connections/{conn.pk}/"
    answer = client.patch(url, {"tags": ["b", "A"]}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["tags"] == ["a", "b"]
    assert client.get(url).json()["tags"] == ["a", "b"]
    for bad in ("a,b", [{"x": 1}], ["ok", "no way"], ["t"] * 0 + [f"t{i}" for i in range(21)]):
        refused = client.patch(url, {"tags": bad}, content_type="application/json")
        assert refused.status_code == 400, bad
        assert "tags" in refused.json()["error"]["fields"]
    assert client.get(url).json()["tags"] == ["a", "b"]


# ---- finding by tag ------------------------------------------------------------------------


def names(html: str) -> set[str]:
    return set(re.findall(r'id="name-\d+" href="[^"]*" title="([^"]*)"', html))


def test_filter_and_search_by_tag(owner, make_connection):
    tagged = make_connection(Status.CONNECTED, name="api")
    other = make_connection(Status.CONNECTED, name="db")
    make_connection(Status.CONNECTED, name="prod-named")
    set_tags(tagged, ["prod"])
    set_tags(other, ["staging"])
    client = client_for(owner)
    page = client.get("/connections/", {"tag": "prod"})
    assert names(page.content.decode()) == {"api"}
    assert "Tag: prod" in page.content.decode()  # its chip
    both = client.get("/connections/", {"tag": ["prod", "staging"]}).content.decode()
    assert names(both) == {"api", "db"}  # any of the tags chosen
    # search: a name containing the text, or a tag that is the text
    assert names(client.get("/connections/", {"q": "PROD"}).content.decode()) == {
        "api",
        "prod-named",
    }
    # the table's tag filter offers exactly the tags on what the user sees
    listing = client.get("/connections/").content.decode()
    assert re.findall(r'name="tag" value="([^"]+)"', listing) == ["prod", "staging"]


def test_a_tag_never_tells_of_a_connection_one_may_not_see(owner, stranger, make_connection):
    hidden = make_connection(Status.CONNECTED, name="secret-acquisition")
    set_tags(hidden, ["project=falcon"])
    client = client_for(stranger)
    listing = client.get("/connections/").content.decode()
    assert "project=falcon" not in listing
    # filtering by it is the same answer as a tag that does not exist
    known = client.get("/connections/", {"tag": "project=falcon"})
    unknown = client.get("/connections/", {"tag": "no-such-tag"})
    assert known.status_code == unknown.status_code == 400
    assert names(known.content.decode()) == set()
    # nor does the search
    assert names(client.get("/connections/", {"q": "project=falcon"}).content.decode()) == set()


# ---- on many rows ----------------------------------------------------------------------------


def bulk(client, ids, action, tag, **extra):
    data = {"ids": " ".join(str(i) for i in ids), "action": action, "tag": tag, **extra}
    return client.post(reverse("connections:bulk"), data, follow=True)


def test_add_and_remove_a_tag_on_the_selected_rows(owner, make_connection):
    conns = [make_connection(Status.CONNECTED, name=f"c{i}") for i in range(3)]
    client = client_for(owner)
    answer = bulk(client, [c.pk for c in conns[:2]], "tag:add", "Team=Web")
    assert "Add the tag &#x27;team=web&#x27;: 2 connection(s)" in answer.content.decode()
    assert set(Tag.objects.get(name="team=web").connections.values_list("name", flat=True)) == {
        "c0",
        "c1",
    }
    # again: nothing to do, nothing doubled
    bulk(client, [c.pk for c in conns[:2]], "tag:add", "team=web")
    assert Connection.tags.through.objects.count() == 2
    bulk(client, [c.pk for c in conns], "tag:remove", "team=web")
    assert not Connection.tags.through.objects.exists()
    assert 'value="team=web"' not in client.get("/connections/").content.decode()


def test_a_bad_or_missing_tag_in_the_bulk_bar_changes_nothing(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    client = client_for(owner)
    for tag, says in (
        ("", "Type the tag"),
        ("no way", "“no way” is not a tag"),
        ("\r\nX-Bad: 1", "is not a tag"),
    ):
        answer = client.post(
            reverse("connections:bulk"),
            {"ids": str(conn.pk), "action": "tag:add", "tag": tag},
            HTTP_HX_REQUEST="true",
        )
        assert answer.status_code == 400, tag
        assert says in answer.content.decode()
    assert not Tag.objects.exists()


def test_a_viewer_cannot_tag_what_they_may_only_see(owner, stranger, make_connection):
    conn = make_connection(Status.CONNECTED, name="shared")
    env = Environment.objects.create(name="prod", owner=owner)
    env.connections.add(conn)
    env.memberships.create(user=stranger, role="viewer")
    answer = bulk(client_for(stranger), [conn.pk], "tag:add", "mine")
    assert "you may not edit it" in answer.content.decode()
    assert not conn.tags.exists()


def test_the_tags_column_shows_chips_when_chosen(owner, make_connection):
    conn = make_connection(Status.CONNECTED)
    set_tags(conn, ["prod", "team=web"])
    client = client_for(owner)
    assert 'class="tag-chip"' not in client.get("/connections/").content.decode()
    client.post("/connections/columns/", {"show": ["tags", "heartbeat"]})
    html = client.get("/connections/").content.decode()
    assert '<a class="tag-chip" href="?tag=team%3Dweb">team=web</a>' in html
