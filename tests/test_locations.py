"""Probing from several locations, decided by a quorum (connections/probing/rounds.py), in one
process: the rules of the quorum, a round from dispatch to decision, stale locations, and a
result delivered twice. The same with real workers in network namespaces of their own, on
Redis and on RabbitMQ: tests/test_locations_workers.py."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from connections.choices import Status
from connections.models import Connection, Location, LocationWorker, ProbeResult, ProbeRound
from connections.probing import rounds, scheduling
from connections.probing.probes import ProbeOutcome

pytestmark = pytest.mark.django_db(transaction=True)


def refused(port=443):
    return ProbeOutcome(ok=False, error_class="refused", error="connection refused")


def fine(ms=10.0):
    return ProbeOutcome(ok=True, latency_ms=ms)


def denied():
    return ProbeOutcome(ok=False, error_class="auth", error="HTTP 401", status_code=401)


@pytest.fixture
def target(make_connection):
    return make_connection("connected", url="https://10.0.3.4")


@pytest.mark.parametrize(
    ("quorum", "answers", "total", "verdict"),
    [
        # the default, a majority of those that answered (at least 2 when 2 or more did)
        ("", {"a": fine(), "b": fine(), "c": fine()}, 3, "ok"),
        ("", {"a": refused(), "b": fine(), "c": fine()}, 3, "partial"),
        ("", {"a": refused(), "b": refused(), "c": fine()}, 3, "failed"),
        ("", {"a": refused(), "b": fine()}, 3, "partial"),  # c did not answer: 1 of 2
        ("", {"a": refused(), "b": refused()}, 3, "failed"),  # 2 of the 2 that answered
        ("", {"a": refused()}, 3, "abstain"),  # one answer cannot make a majority
        ("", {"a": fine()}, 3, "abstain"),
        ("", {}, 3, "abstain"),
        ("", {"a": refused(), "b": refused(), "c": fine(), "d": fine()}, 4, "partial"),
        ("", {"a": refused()}, 1, "failed"),  # one location: as without locations
        ("any", {"a": refused(), "b": fine(), "c": fine()}, 3, "failed"),
        ("any", {"a": refused()}, 3, "failed"),
        ("all", {"a": refused(), "b": refused(), "c": fine()}, 3, "partial"),
        ("all", {"a": refused(), "b": refused(), "c": refused()}, 3, "failed"),
        ("all", {"a": refused(), "b": refused()}, 3, "failed"),  # all that answered
        ("all", {"a": refused()}, 3, "abstain"),
        ("2", {"a": refused(), "b": fine(), "c": fine()}, 3, "partial"),
        ("2", {"a": refused(), "b": refused(), "c": fine()}, 3, "failed"),
        ("2", {"a": refused()}, 3, "abstain"),
        ("5", {"a": refused(), "b": refused()}, 2, "failed"),  # capped at the locations
    ],
)
def test_the_quorum_decides_a_round(target, quorum, answers, total, verdict):
    target.quorum = quorum
    outcome = rounds.judge(target, answers, total)
    seen = (
        "abstain"
        if outcome.abstain
        else "failed"
        if not outcome.ok
        else "partial"
        if outcome.note and outcome.note.startswith("down")
        else "ok"
    )
    assert seen == verdict, outcome


def test_the_notes_say_where_and_what(target):
    partial = rounds.judge(target, {"eu-west": refused(), "us": fine(), "ap": fine()}, 3)
    assert partial.ok and partial.note == (
        "down in 1 of 3 locations (eu-west: nothing listens on 10.0.3.4:443)"
    )
    few = rounds.judge(target, {"eu-west": refused()}, 3)
    assert few.abstain and few.note.startswith("only 1 of 3 locations answered; eu-west: ")
    assert rounds.judge(target, {}, 2).note == "no location answered"
    quiet = rounds.judge(target, {"eu-west": fine(), "us": fine()}, 3)
    assert quiet.ok and quiet.note == "2 of 3 locations answered"
    assert rounds.judge(target, {"eu-west": fine(), "us": fine()}, 2).note == ""
    # an authentication failure from a quorum is the round's class (it disconnects at once)
    auth = rounds.judge(target, {"a": denied(), "b": denied(), "c": refused()}, 3)
    assert auth.error_class == "auth" and not auth.ok
    mixed = rounds.judge(target, {"a": denied(), "b": refused(), "c": refused()}, 3)
    assert mixed.error_class == "refused"


def test_a_quorum_is_checked(target):
    from django.core.exceptions import ValidationError

    for bad in ("0", "21", "most", "２", "-1", " 2", "01", "007"):
        target.quorum = bad
        with pytest.raises(ValidationError):
            target.full_clean()
    for good in ("", "any", "all", "1", "20"):
        target.quorum = good
        target.full_clean()


# ---- a whole round in this process -----------------------------------------------------------


def _locations(*names, stale=()):
    made = []
    for name in names:
        location = Location.objects.create(name=name)
        seen = timezone.now() - timedelta(hours=1) if name in stale else timezone.now()
        LocationWorker.objects.create(location=location, node=f"w@{name}", heartbeat_at=seen)
        made.append(location)
    return made


def _round(answers=None):
    """Claim what is due, dispatch it, and run each location's share here: ``answers``
    (location name -> True/False) says which locations get to answer (all by default)."""
    token, ids = scheduling.claim_due(100)
    sent = []
    rounds.dispatch(token, ids, lambda name, pks, deadline: sent.append((name, pks)))
    for name, pks in sent:
        if answers is None or answers.get(name, True):
            rounds.run_location_batch(token, name, pks, node=f"w@{name}")
    return token, dict(sent)


def _due_now(*connections):
    Connection.objects.filter(pk__in=[c.pk for c in connections]).update(
        next_probe_at=timezone.now(), probe_claim=None
    )


def test_no_location_means_no_round(make_connection, http_endpoint):
    assert not rounds.active()
    conn = make_connection("registered", url=http_endpoint.url)
    scheduling.run_round()
    conn.refresh_from_db()
    assert conn.last_probe_ok and conn.locations_note == ""
    assert ProbeResult.objects.get(connection=conn).location is None


def test_a_round_probes_from_every_location_and_decides_once(make_connection, http_endpoint):
    _locations("eu-west", "us-east", "ap-south")
    up = make_connection("discovered", url=http_endpoint.url)
    token, sent = _round()
    assert sorted(sent) == ["ap-south", "eu-west", "us-east"]
    up.refresh_from_db()
    assert up.status == Status.REGISTERED  # decided when the last location answered
    assert up.probe_claim is None and up.locations_note == ""
    results = ProbeResult.objects.filter(connection=up, round=token)
    assert sorted(r.location.name for r in results) == ["ap-south", "eu-west", "us-east"]
    # one transition for the round, not one per location
    assert up.history.count() == 1
    # a location's share delivered again writes nothing twice and decides nothing again
    stats = rounds.run_location_batch(token, "eu-west", [up.pk], node="w@eu-west")
    assert stats["redelivered"] == 1 and results.count() == 3
    rounds.close(token)
    assert not ProbeRound.objects.filter(token=token).exists()


def test_a_dead_endpoint_fails_rounds_until_the_threshold(make_connection, dead_url):
    _locations("eu-west", "us-east", "ap-south")
    down = make_connection("connected", url=dead_url, failure_threshold=2)
    _round()
    down.refresh_from_db()
    assert down.status == Status.CONNECTED and down.consecutive_failures == 1
    assert down.locations_note.startswith("failed in 3 of 3 locations (ap-south: nothing listens")
    _due_now(down)
    _round()
    down.refresh_from_db()
    assert down.status == Status.DISCONNECTED
    reason = down.history.latest("pk").reason
    assert "(in 3 of 3 locations)" in reason and "2 failed rounds in a row" in reason


def test_a_location_that_does_not_answer_is_left_out(make_connection, dead_url):
    _locations("eu-west", "us-east", "ap-south")
    down = make_connection("connected", url=dead_url, failure_threshold=2)
    for _ in range(3):
        token, _ = _round({"eu-west": True, "us-east": False, "ap-south": False})
        down.refresh_from_db()
        assert down.probe_claim == token  # waiting for the others
        rounds.close(token)  # the deadline
        down.refresh_from_db()
        assert down.status == Status.CONNECTED and down.consecutive_failures == 0
        assert down.locations_note.startswith("only 1 of 3 locations answered")
        _due_now(down)


def test_stale_locations_get_no_round_and_do_not_count(make_connection, dead_url):
    _locations("eu-west", "us-east", "ap-south", stale=("ap-south",))
    down = make_connection("connected", url=dead_url, failure_threshold=2)
    token, sent = _round()
    assert sorted(sent) == ["eu-west", "us-east"]
    down.refresh_from_db()
    # decided without waiting: both it was sent to answered, 2 of 2 failing
    assert down.probe_claim is None and down.consecutive_failures == 1
    assert down.locations_note.startswith("failed in 2 of 2 locations")


def test_no_online_location_means_no_judgement(make_connection, dead_url):
    _locations("eu-west", "us-east", stale=("eu-west", "us-east"))
    down = make_connection("connected", url=dead_url, failure_threshold=2)
    for _ in range(3):
        _, sent = _round()
        assert sent == {}
        down.refresh_from_db()
        assert down.status == Status.CONNECTED and down.probe_claim is None
        assert down.locations_note == "none of its locations is online"
        assert down.last_probe_at is None  # nothing was probed
        _due_now(down)


def test_a_connection_probed_only_where_it_is_reachable(make_connection, dead_url):
    eu, us, _ = _locations("eu-west", "us-east", "ap-south")
    inside = make_connection("connected", url=dead_url, failure_threshold=2)
    inside.locations.set([eu])
    _, sent = _round()
    assert sent == {"eu-west": [inside.pk]}
    inside.refresh_from_db()
    # its one location is the whole count, as without locations
    assert inside.consecutive_failures == 1 and inside.locations_note == ""


def test_an_environment_gives_its_connections_a_default(make_connection, owner, dead_url):
    from environments.models import Environment

    eu, us, ap = _locations("eu-west", "us-east", "ap-south")
    env = Environment.objects.create(name="dc", owner=owner)
    env.probe_locations.set([eu, us])
    a, b, own = (make_connection("connected") for _ in range(3))
    env.connections.set([a, own])
    own.locations.set([ap])
    assert rounds.locations_of([a.pk, b.pk, own.pk]) == {
        a.pk: sorted([eu.pk, us.pk]),
        b.pk: sorted([eu.pk, us.pk, ap.pk]),
        own.pk: [ap.pk],
    }


def test_the_command_adds_lists_and_removes(capsys):
    call_command("locations", "add", "eu-west", "--description", "Frankfurt")
    call_command("locations", "add", "eu-west")
    call_command("locations")
    out = capsys.readouterr().out
    assert "added: eu-west" in out and "already there" in out and "no worker yet" in out
    from django.core.management.base import CommandError

    for bad in ("EU", "eu_west", "-eu", "e" * 41, "eu\nwest"):
        with pytest.raises(CommandError):
            call_command("locations", "add", bad)
    conn = Connection.objects.create(name="c", kind="http", url="http://127.0.0.1:1/")
    Connection.objects.filter(pk=conn.pk).update(locations_note="2 of 3 locations answered")
    call_command("locations", "remove", "eu-west")
    assert not Location.objects.exists()
    assert _fresh(conn).locations_note == ""  # the last one gone: no note of several stays
    with pytest.raises(CommandError):
        call_command("locations", "remove", "eu-west")


@pytest.fixture
def tasks_here():
    """The locations' tasks run in this process, as they are sent."""
    from meshplay.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_probe_now_goes_to_every_location(make_connection, owner, dead_url, tasks_here):
    from connections.probing.now import probe_now

    _locations("eu-west", "us-east")
    down = make_connection("connected", url=dead_url)
    probed = probe_now(owner, down)
    assert not probed.ok
    assert "(failed in 2 of 2 locations (eu-west: nothing listens on 127.0.0.1:" in probed.said
    assert ProbeResult.objects.filter(connection=down, round__isnull=False).count() == 2
    assert _fresh(down).probe_claim is None


def _fresh(conn):
    return Connection.objects.get(pk=conn.pk)


def test_the_overview_lists_partial_outages_one_may_see(make_connection, owner, stranger):
    from overview.summary import build

    a = make_connection("connected", name="checkout")
    b = make_connection("connected", name="billing", owner=stranger)
    quiet = make_connection("connected", name="quiet")
    Connection.objects.filter(pk__in=[a.pk, b.pk]).update(
        locations_note="down in 1 of 3 locations (eu-west: nothing listens on 10.0.3.4:443)"
    )
    Connection.objects.filter(pk=quiet.pk).update(locations_note="2 of 3 locations answered")
    assert [c.name for c in build(owner).partial] == ["checkout"]
    from tests.helpers import client_for

    page = client_for(owner).get("/").content.decode()
    assert "Partial outages" in page and "down in 1 of 3 locations (eu-west: nothing" in page
    assert "billing" not in page and "quiet" not in page.split("Partial outages")[1][:2000]
    theirs = client_for(stranger).get("/").content.decode().split("Partial outages")[1]
    assert "billing" in theirs and "checkout" not in theirs


def test_a_partial_outage_is_notified_when_it_begins_and_ends(
    make_connection, http_endpoint, webhook
):
    from notifications.choices import Category
    from notifications.models import Event, Message
    from notifications.routing import route_events

    _locations("eu-west", "us-east", "ap-south")
    conn = make_connection("connected", url=http_endpoint.url, failure_threshold=5)
    rule = webhook.rules.first()  # partial outages are heard once chosen
    rule.categories = [*rule.categories, Category.PARTIAL]
    rule.save()

    def partial_round(failing):
        _due_now(conn)
        token, ids = scheduling.claim_due(100)
        sent = []
        rounds.dispatch(token, ids, lambda name, pks, deadline: sent.append((name, pks)))
        for name, _ in sent:
            outcome = refused() if name in failing else fine()
            rounds.record([(_fresh(conn), outcome)], token, Location.objects.get(name=name))
        rounds.close(token)

    partial_round({"eu-west"})
    partial_round({"eu-west"})  # still partial: no second event
    events = Event.objects.filter(connection=conn, category=Category.PARTIAL).order_by("pk")
    assert [e.reason[:33] for e in events.all()] == ["down in 1 of 3 locations (eu-west"]
    first = events.first()
    assert first.transition is None and first.from_status == first.to_status == "connected"
    partial_round(set())
    assert events.count() == 2 and events.last().reason.startswith("up again")
    route_events()
    titles = list(Message.objects.filter(channel=webhook).order_by("pk").values_list("title"))
    assert titles == [(f"{conn.name}: partial outage",), (f"{conn.name}: partial outage over",)]
    from django.urls import reverse

    from tests.helpers import client_for

    center = client_for(conn.owner).get(reverse("notifications:center")).content.decode()
    assert center.count("(no change)") == 2 and "Partial outages (down in some" in center
    assert not conn.history.exists()  # never a state change
    # a failed round is no partial outage; growing into one (or back) is not its end
    partial_round({"eu-west", "us-east"})
    assert events.count() == 2 and _fresh(conn).locations_note.startswith("failed in 2 of 3")
    partial_round({"eu-west"})
    partial_round({"eu-west", "us-east"})
    partial_round({"eu-west"})
    assert events.count() == 3  # began again once, after it had ended
    partial_round(set())
    assert events.count() == 4 and events.last().reason.startswith("up again")
    partial_round(set())
    assert events.count() == 4


def test_metrics_count_per_location(make_connection, dead_url, settings, client):
    settings.METRICS_TOKEN = "metrics-token-locations-1"
    _locations("eu-west", "us-east", stale=("us-east",))
    make_connection("connected", url=dead_url)
    _round()
    text = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-locations-1"
    ).content.decode()
    assert (
        'meshplay_location_probe_results_total{kind="http",location="eu-west",ok="false"} 1.0'
        in text
    )
    assert 'meshplay_location_online{location="eu-west"} 1.0' in text
    assert 'meshplay_location_online{location="us-east"} 0.0' in text
    # the totals per kind stay what they were: every location's results together
    assert 'meshplay_probe_results_total{kind="http",ok="false"} 1.0' in text


def test_a_location_removed_while_it_answers(make_connection, dead_url):
    _locations("eu-west", "us-east")
    conn = make_connection("connected", url=dead_url)
    token, ids = scheduling.claim_due(100)
    rounds.dispatch(token, ids, lambda *args: None)
    gone = Location.objects.get(name="eu-west")
    ProbeResult.objects.create(connection=conn, ok=True, location=gone)
    Location.objects.filter(pk=gone.pk).delete()  # never rewrites the results
    assert ProbeResult.objects.filter(location_id=gone.pk).count() == 1
    # its answer in flight is still stored, and the round decided with it
    assert rounds.record([(_fresh(conn), refused())], token, gone) == 1
    rounds.close(token)
    note = _fresh(conn).locations_note
    assert note.startswith("only 1 of 2 locations answered; removed location ")


def test_heartbeats_go_by_the_databases_clock(owner):
    """A location's machine whose clock is an hour off is neither always stale nor never."""
    import time_machine

    from connections.probing import heartbeat

    Location.objects.create(name="eu-west")
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=True):
        heartbeat.beat("w@eu-west", "eu-west", None)
    assert set(rounds.online_locations().values()) == {"eu-west"}
    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=True):
        heartbeat.beat("w@eu-west", "eu-west", None)
    assert set(rounds.online_locations().values()) == {"eu-west"}
    LocationWorker.objects.update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert rounds.online_locations() == {}


# ---- the review's findings ---------------------------------------------------------------


def test_a_stale_location_is_left_out_of_the_count(make_connection, dead_url):
    """One location down must not blind the fleet: the others judge alone."""
    _locations("eu-west", "us-east", stale=("us-east",))
    down = make_connection("connected", url=dead_url, failure_threshold=2)
    _round()
    _due_now(down)
    _round()
    down.refresh_from_db()
    assert down.status == Status.DISCONNECTED


def test_a_round_waits_for_the_waves_one_host_needs(make_connection, settings):
    settings.PROBE_PER_HOST_CONCURRENCY = 20
    settings.PROBE_CONCURRENCY = 500
    (eu,) = _locations("eu-west")
    same_host = [make_connection("connected", url=f"http://127.0.0.1:1/{i}") for i in range(100)]
    ids = [c.pk for c in same_host]
    assert rounds.waves(ids, {eu.pk: ids}) == 5  # 100 to one host, 20 at a time
    other = [make_connection("connected", url=f"http://10.0.{i}.1/") for i in range(30)]
    assert rounds.waves([c.pk for c in other], {eu.pk: [c.pk for c in other]}) == 1


def test_a_round_that_cannot_close_never_stops_the_tick(make_connection, dead_url, monkeypatch):
    _locations("eu-west", "us-east")
    broken = make_connection("connected", url=dead_url)
    Connection.objects.filter(pk=broken.pk).update(quorum="0")  # no form lets it in
    token, _ = _round()
    assert _fresh(broken).consecutive_failures == 1  # "0" is read as the default, a majority
    other = make_connection("connected", url=dead_url + "/other")
    token2, ids = scheduling.claim_due(100)
    rounds.dispatch(token2, ids, lambda *args: None)
    ProbeRound.objects.filter(token=token2).update(deadline=timezone.now() - timedelta(minutes=1))
    real_close = rounds.close
    monkeypatch.setattr(rounds, "close", lambda t: (_ for _ in ()).throw(RuntimeError("boom")))
    assert rounds.close_overdue() == 1  # logged and dropped, the tick goes on
    monkeypatch.setattr(rounds, "close", real_close)
    assert not ProbeRound.objects.filter(token=token2).exists()
    assert other.pk in ids


def test_a_result_for_a_connection_no_longer_in_the_round_is_not_stored(
    make_connection, http_endpoint
):
    _locations("eu-west", "us-east")
    conn = make_connection("connected", url=http_endpoint.url)
    token, ids = scheduling.claim_due(100)
    rounds.dispatch(token, ids, lambda *args: None)
    from connections import lifecycle

    lifecycle.transition(_fresh(conn), Status.MAINTENANCE, trigger="user", user=conn.owner)
    learned = ProbeOutcome(ok=True, latency_ms=3.0, metadata={"version": "9.9"})
    assert rounds.record([(conn, learned)], token, Location.objects.get(name="eu-west")) == 0
    assert not ProbeResult.objects.filter(connection=conn).exists()
    assert "version" not in _fresh(conn).metadata
