"""Dependencies: a parent's outage keeps its children's true state, names the parent in their
reasons, and reaches people as one message listing them; no cycles."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from connections.choices import Status
from connections.dependencies import add_parent, children_of, remove_parent
from connections.models import Connection, Dependency
from connections.probing import outcomes as health
from connections.probing.probes.base import ProbeOutcome
from notifications import channels
from notifications.models import Event
from tests.helpers import one_off
from tests.notifying import down, run, up

pytestmark = pytest.mark.django_db

FAILED = ProbeOutcome(ok=False, error_class="connect", error="connection refused")


def test_a_parent_outage_over_200_children_sends_one_message(make_connection, owner, receiver):
    channel, receiver.secret = channels.create_channel(
        owner, name="ops", kind="webhook", destination=receiver.url, group_window=0
    )
    cluster = make_connection(Status.CONNECTED, managed=True, kind="kubernetes", name="prod-eu")
    children = [
        make_connection(Status.CONNECTED, managed=True, cluster=cluster, failure_threshold=1)
        for _ in range(200)
    ]
    Event.objects.update(routed_at=timezone.now())
    down(cluster)
    stats = health.apply_outcomes([(c, FAILED) for c in children])
    assert stats["transitions"] == 200
    statuses = set(Connection.objects.filter(cluster=cluster).values_list("status", flat=True))
    assert statuses == {Status.DISCONNECTED}  # their true state, probed and kept
    reasons = Event.objects.filter(connection__in=children).values_list("reason", flat=True)
    assert all(r.endswith("parent prod-eu is Disconnected") for r in reasons)
    run()
    run()
    assert len(receiver.received) == 1
    body = receiver.received[0]["body"]
    assert body["kind"] == "failure" and body["events"][0]["connection"]["name"] == "prod-eu"
    assert len(body["dependents"]) == 200
    assert "200 connections that depend on it are down too" in body["text"]
    quiet = Event.objects.filter(connection__in=children).values_list("quiet", flat=True)
    assert set(quiet) == {"parent prod-eu is Disconnected"}


def test_a_child_failing_while_its_parent_is_up_is_reported_on_its_own(
    make_connection, owner, receiver
):
    channel, receiver.secret = channels.create_channel(
        owner, name="ops", kind="webhook", destination=receiver.url, group_window=0
    )
    parent = make_connection(Status.CONNECTED, managed=True)
    child = make_connection(Status.CONNECTED, managed=True, failure_threshold=1)
    add_parent(owner, child, parent)
    Event.objects.update(routed_at=timezone.now())
    health.apply_outcomes([(child, FAILED)])
    run()
    assert [r["body"]["events"][0]["connection"]["name"] for r in receiver.received] == [child.name]


def test_a_dependency_that_would_close_a_cycle_is_refused_with_a_clear_error(
    make_connection, owner
):
    a, b, c = (make_connection(Status.CONNECTED) for _ in range(3))
    add_parent(owner, b, a)  # b depends on a
    add_parent(owner, c, b)  # c depends on b
    with pytest.raises(ValidationError) as refused:
        add_parent(owner, a, c)  # a → c → b → a
    assert "cycle" in str(refused.value)
    with pytest.raises(ValidationError):
        add_parent(owner, a, a)
    assert set(children_of([a.pk])) == {b}
    remove_parent(owner, b, a)
    add_parent(owner, a, c)  # no cycle any more


def test_only_someone_who_may_change_the_child_sets_its_parent(make_connection, owner, stranger):
    from django.core.exceptions import PermissionDenied

    child, parent = make_connection(Status.CONNECTED), make_connection(Status.CONNECTED)
    with pytest.raises(PermissionDenied):
        add_parent(stranger, child, parent)
    theirs = make_connection(Status.CONNECTED, owner=stranger)
    with pytest.raises(ValidationError):
        add_parent(owner, child, theirs)  # a parent the owner cannot see


def test_the_page_shows_parents_and_children_and_sets_a_parent(client, make_connection, owner):
    cluster = make_connection(Status.CONNECTED, kind="kubernetes", name="cluster-a")
    child = make_connection(Status.CONNECTED, cluster=cluster, name="grafana-a")
    other = make_connection(Status.CONNECTED, name="db-a")
    client.force_login(owner)
    page = client.get(f"/connections/{child.pk}/").content.decode()
    assert "cluster-a" in page and "(its cluster)" in page
    answer = client.post(f"/connections/{child.pk}/parents/", {"parent": other.pk})
    assert answer.status_code == 302
    page = client.get(f"/connections/{other.pk}/").content.decode()
    assert "grafana-a" in page  # depended on by
    listed = client.get(f"/connections/?depends_on={cluster.pk}").content.decode()
    assert "grafana-a" in listed and "db-a" not in listed
    answer = client.post(f"/connections/{other.pk}/parents/", {"parent": child.pk}, follow=True)
    assert "would make a cycle" in answer.content.decode()  # db-a → grafana-a → db-a
    assert not Dependency.objects.filter(child=other).exists()
    htmx = client.post(f"/connections/{child.pk}/parents/", {"parent": "x"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400


# ---- still down at a window's end (issue 14, point 2) ----------------------------------------


def _discovered_in_a_window(make_connection, owner, receiver):
    """A discovered connection (no maintenance edge from there) under an active window, and a
    webhook channel hearing it."""
    from datetime import timedelta

    channel, receiver.secret = channels.create_channel(
        owner, name="ops", kind="webhook", destination=receiver.url, group_window=0
    )
    conn = make_connection(Status.DISCOVERED, managed=True, failure_threshold=1, name="prom-x")
    now = timezone.now()
    window = one_off(
        owner, now - timedelta(minutes=5), now + timedelta(minutes=30), connections=[conn]
    )
    Event.objects.update(routed_at=timezone.now())
    return conn, window, now + timedelta(minutes=30)


def test_a_failure_inside_a_window_is_quiet_and_told_at_its_end_if_still_down(
    make_connection, owner, receiver
):
    from datetime import timedelta

    from notifications import routing

    conn, window, end = _discovered_in_a_window(make_connection, owner, receiver)
    health.apply_outcomes([(conn, FAILED)])
    run()
    assert receiver.received == []  # inside the window: quiet
    event = Event.objects.get(connection=conn, to_status=Status.DISCONNECTED)
    assert event.quiet.startswith("under maintenance window")
    assert event.deferred_until <= timezone.now() + routing.RECHECK_EVERY  # looked at again
    stats = routing.release_deferred(now=end - timedelta(seconds=1))
    assert (stats["released"], stats["still_quiet"]) == (0, 1)  # still inside the window
    run()
    assert receiver.received == []  # not yet
    assert routing.release_deferred(now=end + timedelta(seconds=1))["released"] == 1
    run(now=end + timedelta(seconds=2))
    run(now=end + timedelta(seconds=3))
    assert [r["body"]["kind"] for r in receiver.received] == ["failure"]
    assert receiver.received[0]["body"]["events"][0]["connection"]["name"] == "prom-x"


def test_a_connection_back_before_the_windows_end_is_not_told_about(
    make_connection, owner, receiver
):
    from datetime import timedelta

    from notifications import routing

    conn, window, end = _discovered_in_a_window(make_connection, owner, receiver)
    health.apply_outcomes([(conn, FAILED)])
    conn.refresh_from_db()
    health.apply_outcomes([(conn, ProbeOutcome(ok=True, latency_ms=3.0))])
    run()
    assert routing.release_deferred(now=end + timedelta(seconds=1))["released"] == 0
    run(now=end + timedelta(seconds=2))
    assert receiver.received == []


def test_a_window_ended_early_releases_a_still_down_failure_within_a_minute(
    make_connection, owner, receiver
):
    from datetime import timedelta

    from notifications import routing

    conn, window, end = _discovered_in_a_window(make_connection, owner, receiver)
    health.apply_outcomes([(conn, FAILED)])
    run()
    window.ended_at = timezone.now()  # "End now"
    window.save()
    soon = timezone.now() + routing.RECHECK_EVERY + timedelta(seconds=1)
    assert routing.release_deferred(now=soon)["released"] == 1
    run(now=soon)
    assert [r["body"]["kind"] for r in receiver.received] == ["failure"]


def test_a_child_still_down_after_its_parent_came_back_is_told(make_connection, owner, receiver):
    from datetime import timedelta

    from notifications import routing

    channel, receiver.secret = channels.create_channel(
        owner, name="ops", kind="webhook", destination=receiver.url, group_window=0
    )
    cluster = make_connection(Status.CONNECTED, managed=True, kind="kubernetes", name="c1")
    child = make_connection(
        Status.CONNECTED, managed=True, cluster=cluster, failure_threshold=1, name="kid"
    )
    Event.objects.update(routed_at=timezone.now())
    down(cluster)
    run()  # the parent's message goes out before the child fails
    health.apply_outcomes([(child, FAILED)])
    run()
    assert len(receiver.received) == 1  # the child's failure is quiet: its parent is down
    later = timezone.now() + routing.RECHECK_EVERY + timedelta(seconds=1)
    assert routing.release_deferred(now=later)["still_quiet"] == 1  # parent still down
    up(cluster)
    run()
    much_later = later + routing.RECHECK_EVERY + timedelta(seconds=1)
    assert routing.release_deferred(now=much_later)["released"] == 1
    run(now=much_later)
    kinds = [
        (r["body"]["kind"], r["body"]["events"][0]["connection"]["name"]) for r in receiver.received
    ]
    assert kinds == [("failure", "c1"), ("recovery", "c1"), ("failure", "kid")]


def test_a_parents_message_lists_only_dependents_its_channel_may_see(
    make_connection, owner, stranger, receiver
):
    channel, receiver.secret = channels.create_channel(
        owner, name="ops", kind="webhook", destination=receiver.url, group_window=0
    )
    parent = make_connection(Status.CONNECTED, managed=True, name="shared-db")
    mine = make_connection(Status.CONNECTED, managed=True, failure_threshold=1, name="mine")
    theirs = make_connection(
        Status.CONNECTED, managed=True, failure_threshold=1, owner=stranger, name="URGENT evil"
    )
    add_parent(owner, mine, parent)
    Dependency.objects.create(child=theirs, parent=parent)  # as a viewer of the parent could
    Event.objects.update(routed_at=timezone.now())
    down(parent)
    health.apply_outcomes([(mine, FAILED), (theirs, FAILED)])
    run()
    (body,) = [r["body"] for r in receiver.received]
    assert [d["name"] for d in body["dependents"]] == ["mine"]
    assert "URGENT" not in body["text"]


def test_a_chain_deeper_than_the_limit_is_refused_not_left_unchecked(make_connection, owner):
    from connections.dependencies import MAX_DEPTH

    chain = [make_connection(Status.CONNECTED) for _ in range(MAX_DEPTH + 2)]
    for child, parent in zip(chain[1:], chain[:-1], strict=True):
        Dependency.objects.create(child=child, parent=parent)
    with pytest.raises(ValidationError) as refused:
        add_parent(owner, chain[0], chain[-1])  # would close a cycle beyond the limit
    assert "at most" in str(refused.value)


def test_a_private_parent_is_not_named_in_a_shared_childs_reason(
    make_connection, owner, django_user_model, receiver
):
    """An editor makes a shared connection depend on his private one: members of the
    environment read the child's history and quiet notes, so the parent's name stays out."""
    from environments.models import Environment, EnvironmentMembership

    editor = django_user_model.objects.create_user("ed", password="x")
    viewer = django_user_model.objects.create_user("vi", password="x")
    env = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    EnvironmentMembership.objects.create(environment=env, user=viewer, role="viewer")
    shared = make_connection(Status.CONNECTED, managed=True, owner=owner, failure_threshold=1)
    env.connections.add(shared)
    private = make_connection(
        Status.CONNECTED, managed=True, owner=editor, name="eds-private-parent"
    )
    add_parent(editor, shared, private)
    Event.objects.update(routed_at=timezone.now())
    down(private)
    health.apply_outcomes([(shared, FAILED)])
    run()
    from django.test import Client

    def read_by(user) -> str:
        client = Client()
        client.force_login(user)
        return " ".join(
            client.get(url).content.decode()
            for url in (
                f"/connections/{shared.pk}/",
                f"/api/connections/{shared.pk}/history/",
                "/connections/",
                f"/environments/{env.pk}/",
                "/",
                "/notifications/",
                "/api/notifications/events/",
            )
        )

    # the viewer gets 404 for the parent, and reads no name of it anywhere about the child
    viewer_client = Client()
    viewer_client.force_login(viewer)
    assert viewer_client.get(f"/connections/{private.pk}/").status_code == 404
    as_viewer = read_by(viewer)
    assert "eds-private-parent" not in as_viewer
    assert "a connection it depends on is Disconnected" in as_viewer
    assert "parent eds-private-parent is Disconnected" in read_by(editor)  # he may see it
    # a webhook of the environment tells its readers what the viewer may read
    for message in receiver.received:
        assert "eds-private-parent" not in json.dumps(message["body"])


def test_a_parent_everyone_may_see_is_named(make_connection, owner):
    parent = make_connection(Status.CONNECTED, managed=True, owner=owner, name="visible-parent")
    child = make_connection(Status.CONNECTED, managed=True, owner=owner, failure_threshold=1)
    add_parent(owner, child, parent)
    down(parent)
    health.apply_outcomes([(child, FAILED)])
    child.refresh_from_db()
    assert child.history.last().reason.endswith("parent visible-parent is Disconnected")


@pytest.mark.parametrize("url", ["/connections/?depends_on={}", "/api/connections/?depends_on={}"])
def test_the_children_of_a_hidden_connection_are_not_listed(make_connection, owner, stranger, url):
    """?depends_on= of an id one may not see is refused, as ?environment= is: no oracle."""
    from django.test import Client

    hidden = make_connection(Status.CONNECTED, owner=owner, name="hidden-parent")
    child = make_connection(Status.CONNECTED, owner=stranger, name="strangers-child")
    Dependency.objects.create(child=child, parent=hidden)
    client = Client()
    client.force_login(stranger)
    answer = client.get(url.format(hidden.pk))
    assert answer.status_code == 400
    assert "strangers-child" not in answer.content.decode()
    assert client.get(url.format(child.pk)).status_code == 200  # one's own: fine


@pytest.mark.parametrize("raw", ["²", "①", "٣", "1_0", "99999999999999999999", "-1", ""])
def test_a_parent_that_is_not_an_id_is_a_400(client, make_connection, owner, raw):
    child = make_connection(Status.CONNECTED, owner=owner)
    client.force_login(owner)
    answer = client.post(
        f"/connections/{child.pk}/parents/", {"parent": raw}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 400
    assert "Choose the connection it depends on." in answer.content.decode()
    assert not Dependency.objects.exists()


def test_an_environments_channel_is_told_a_childs_failure_without_a_private_parents_name(
    make_connection, owner, django_user_model, receiver
):
    """The child's failure, kept quiet while its parent was down, is told once the parent is
    back: to the environment's channel, whose readers include a viewer who may not see the
    editor's private parent."""
    from datetime import timedelta

    from environments.models import Environment, EnvironmentMembership
    from notifications import routing

    editor = django_user_model.objects.create_user("ed", password="x")
    viewer = django_user_model.objects.create_user("vi", password="x")
    env = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    EnvironmentMembership.objects.create(environment=env, user=viewer, role="viewer")
    channel, receiver.secret = channels.create_channel(
        owner,
        name="prod",
        kind="webhook",
        destination=receiver.url,
        group_window=0,
        environment=env,
    )
    child = make_connection(
        Status.CONNECTED, managed=True, owner=owner, failure_threshold=1, name="kid"
    )
    env.connections.add(child)
    private = make_connection(
        Status.CONNECTED, managed=True, owner=editor, name="eds-private-parent"
    )
    add_parent(editor, child, private)
    Event.objects.update(routed_at=timezone.now())
    down(private)
    health.apply_outcomes([(child, FAILED)])
    run()
    up(private)
    later = timezone.now() + routing.RECHECK_EVERY + timedelta(seconds=1)
    assert routing.release_deferred(now=later)["released"] == 1
    run(now=later)
    (told,) = receiver.received
    assert told["body"]["events"][0]["connection"]["name"] == "kid"
    assert "a connection it depends on is Disconnected" in told["body"]["text"]
    assert "eds-private-parent" not in json.dumps(told["body"])
