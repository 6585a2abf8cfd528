"""Live refresh: a poll of the table answers 304 while nothing it shows changed, and shows
every change at the next poll."""

import time

import pytest
from django.db import connection as db
from django.db import transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections import lifecycle
from connections.models import Connection
from connections.probing import outcomes as health
from connections.probing.probes import ProbeOutcome
from environments.models import Environment
from live import stamp
from tests.chromium import sign_in

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs for real

HX = {"HTTP_HX_REQUEST": "true"}


def poll(client, etag=None, path="/connections/"):
    extra = dict(HX, **({"HTTP_IF_NONE_MATCH": etag} if etag else {}))
    return client.get(path, **extra)


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


@pytest.mark.parametrize("page", ["/connections/", "/", "environment"])
def test_an_unchanged_poll_answers_304_with_a_few_queries(signed_in, owner, make_connection, page):
    connection = make_connection(name="alpha")
    if page == "environment":
        environment = Environment.objects.create(name="prod", owner=owner)
        environment.connections.add(connection)
        page = f"/environments/{environment.pk}/"
    first = poll(signed_in, path=page)
    assert first.status_code == 200 and (page == "/" or b"alpha" in first.content)
    etag = first["ETag"]
    with CaptureQueriesContext(db) as queries:
        again = poll(signed_in, etag, path=page)
    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == etag
    # session, user, stamp; the overview also tells whether probing stalled: the oldest due
    # time, one index lookup (and when a result was last counted, if one is overdue)
    budget = 4 if page == "/" else 3
    assert len(queries) <= budget, [q["sql"] for q in queries]


@pytest.mark.parametrize(
    "change",
    [
        "rename",  # a plain save
        "transition",  # the lifecycle
        "probe results in bulk",  # no signal: read from the newest result's id
        "environment membership",  # an m2m change
    ],
)
def test_every_kind_of_change_shows_at_the_next_poll(signed_in, owner, make_connection, change):
    connection = make_connection(name="alpha", status="registered")
    etag = poll(signed_in)["ETag"]
    if change == "rename":
        connection.name = "beta"
        connection.save()
    elif change == "transition":
        lifecycle.perform_user_action(connection, "ignored", user=owner, reason="")
    elif change == "probe results in bulk":  # no signal: the probe apply tells the stamp
        health.apply_outcomes([(connection, ProbeOutcome(ok=False, error="refused"))])
    else:
        Environment.objects.create(name="prod", owner=owner).connections.add(connection)
    after = poll(signed_in, etag)
    assert after.status_code == 200
    assert after["ETag"] != etag


def test_a_change_counts_after_its_commit_and_once_per_transaction(owner, make_connection):
    before = stamp.current(owner)
    with transaction.atomic():
        for n in range(5):
            make_connection(name=f"c{n}")
        assert stamp.current(owner) == before  # not before the commit: no stale page is kept
    after = stamp.current(owner)
    assert after != before
    assert int(after.split(".")[0]) == int(before.split(".")[0]) + 1  # five saves, one bump


def test_a_rolled_back_change_does_not_count_and_the_next_one_does(owner, make_connection):
    before = stamp.current(owner)
    with pytest.raises(RuntimeError), transaction.atomic():
        make_connection(name="lost")
        raise RuntimeError
    assert stamp.current(owner) == before
    make_connection(name="kept")
    assert stamp.current(owner) != before


def test_a_poll_answers_for_what_its_user_may_see_and_nothing_else(
    client, owner, stranger, make_connection, django_user_model
):
    """Another user's private fleet changing (probed, renamed) costs a poll nothing and tells
    it nothing; a change in an environment one belongs to shows; staff see every change."""
    private = make_connection(name="private")
    shared = make_connection(name="shared")
    environment = Environment.objects.create(name="prod", owner=owner)
    environment.connections.add(shared)
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123")
    environment.memberships.create(user=viewer, role="viewer")
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    clients, etags = {}, {}
    for user in (stranger, viewer, staff):  # signed in once: a sign-in changes one's rights
        clients[user] = Client()
        clients[user].force_login(user)
        etags[user] = poll(clients[user])["ETag"]

    def answers():
        return {u.username: poll(clients[u], etags[u]).status_code for u in clients}

    health.apply_outcomes([(private, ProbeOutcome(ok=True, latency_ms=2.0))])
    assert answers() == {"stranger": 304, "viewer": 304, "staff": 200}
    health.apply_outcomes([(shared, ProbeOutcome(ok=True, latency_ms=2.0))])
    assert answers() == {"stranger": 304, "viewer": 200, "staff": 200}


def test_a_new_membership_changes_what_the_new_member_sees(
    client, owner, stranger, make_connection
):
    shared = make_connection(name="shared")
    environment = Environment.objects.create(name="prod", owner=owner)
    environment.connections.add(shared)
    client.force_login(stranger)
    etag = poll(client)["ETag"]
    environment.memberships.create(user=stranger, role="viewer")
    response = poll(client, etag)
    assert response.status_code == 200 and b"shared" in response.content
    # from now on the environment's changes are the new member's too (each process keeps the
    # stamp's SQL for a user: the SQL reads memberships, it does not hold them)
    etag = response["ETag"]
    assert poll(client, etag).status_code == 304
    health.apply_outcomes([(shared, ProbeOutcome(ok=False, error="refused"))])
    assert poll(client, etag).status_code == 200


def test_rights_taken_away_are_read_at_the_next_poll(client, owner, stranger, make_connection):
    """Staff who are staff no more see their own scopes only, at once."""
    other = make_connection(name="other")
    stranger.is_staff = True
    stranger.save()
    client.force_login(stranger)
    assert b"other" in poll(client).content
    stranger.is_staff = False
    stranger.save()
    response = poll(client)
    assert response.status_code == 200 and b"other" not in response.content
    etag = response["ETag"]
    health.apply_outcomes([(other, ProbeOutcome(ok=False, error="refused"))])
    assert poll(client, etag).status_code == 304


def test_one_users_etag_never_serves_another_user(client, owner, stranger, make_connection):
    make_connection(name="alpha")
    client.force_login(owner)
    etag = poll(client)["ETag"]
    client.force_login(stranger)
    response = poll(client, etag)
    assert response.status_code == 200 and b"alpha" not in response.content


def test_other_filters_are_another_etag(signed_in, make_connection):
    make_connection(name="alpha")
    etag = poll(signed_in)["ETag"]
    response = poll(signed_in, etag, "/connections/?q=alp")
    assert response.status_code == 200 and response["ETag"] != etag


def test_a_whole_page_is_always_rendered(signed_in, make_connection):
    """A whole page may carry one-time messages: it is never answered 304."""
    make_connection(name="alpha")
    etag = poll(signed_in)["ETag"]
    response = signed_in.get("/connections/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and b"alpha" in response.content


def test_a_write_no_signal_sees_shows_within_the_heal_time(
    signed_in, make_connection, settings, time_machine
):
    settings.LIVE_STAMP_HEAL_SECONDS = 60
    time_machine.move_to(timezone.now(), tick=False)
    connection = make_connection(name="alpha")
    etag = poll(signed_in)["ETag"]
    Connection.objects.filter(pk=connection.pk).update(name="renamed-behind-our-back")
    assert poll(signed_in, etag).status_code == 304  # nothing told the stamp
    time_machine.shift(61)
    response = poll(signed_in, etag)
    assert response.status_code == 200 and b"renamed-behind-our-back" in response.content


@pytest.mark.postgres
def test_in_a_browser_an_unchanged_poll_leaves_the_table_as_it_is(
    live_server, browser, django_user_model, make_connection, settings
):
    settings.LIVE_STAMP_HEAL_SECONDS = 3600  # no healing slice ends during the test

    user = django_user_model.objects.create_user("tabs", password="pw-tabs-2026")
    connection = make_connection(name="steady", owner=user)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    polls = []
    page.on(
        "response",
        lambda r: (
            polls.append(r.status)
            if r.request.headers.get("hx-request") and "/connections/" in r.url
            else None
        ),
    )
    sign_in(page, live_server, "tabs", "pw-tabs-2026")
    page.evaluate("document.getElementById('table-region').dataset.seen = 'yes'")
    while len(polls) < 2:
        page.wait_for_timeout(200)
    assert polls[:2] == [304, 304]  # the page carried its fragment's ETag
    # the same element: htmx swapped nothing
    assert page.evaluate("document.getElementById('table-region').dataset.seen") == "yes"
    assert "steady" in page.inner_text("#table-region")
    connection.name = "renamed"
    connection.save()
    while len(polls) < 3:
        page.wait_for_timeout(200)
    assert polls[2] == 200
    page.wait_for_function(
        "() => document.getElementById('table-region').innerText.includes('renamed')"
    )


def test_renders_heal_at_times_of_their_own_so_tabs_never_render_all_at_once(
    signed_in, make_connection, settings
):
    settings.LIVE_STAMP_HEAL_SECONDS = 600
    make_connection(name="alpha")
    started = time.time()
    heals = [int(poll(signed_in)["ETag"].strip('"').split(".")[1]) for _ in range(20)]
    assert all(started + 299 <= heal <= time.time() + 600 for heal in heals)
    assert len(set(heals)) > 1


@pytest.mark.parametrize(
    "forged",
    ['"{digest}.99999999999"', '"{digest}"', '"{digest}.-5"', '"other.99999999999"', "*"],
)
def test_an_etag_not_ours_or_healed_is_rendered_again(signed_in, make_connection, forged):
    make_connection(name="alpha")
    digest = poll(signed_in)["ETag"].strip('"').split(".")[0]
    tag = forged.format(digest=digest)
    expected = 304 if tag == f'"{digest}.99999999999"' else 200  # a later heal only hurts itself
    assert poll(signed_in, tag).status_code == expected


def test_in_development_an_edit_of_how_rows_are_drawn_changes_every_etag(settings):
    """With DEBUG on and no LIVE_RELEASE, the release an ETag is made of digests the project's
    own Python beside its templates, scripts and styles (never the libraries'); a deploy names
    its release instead."""
    from live.conditional import release, release_files

    settings.DEBUG, settings.LIVE_RELEASE = True, ""
    release.cache_clear()
    try:
        assert len(release()) == 16 and release() != "tests"
    finally:
        release.cache_clear()

    names = {name for name, _ in release_files()}
    assert "connections/templatetags/connection_table.py" in names
    assert "connections/table/rows.py" in names
    assert "templates/connections/_table.html" in names
    assert "requirements.txt" in names  # a library's upgrade may change markup too
    libraries = [p for _, p in release_files() if "site-packages" in p.parts and p.suffix == ".py"]
    assert libraries == []
