"""Probe results drive the automatic edges: threshold, recovery, auth, backoff, races, history."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from connections import creating, lifecycle
from connections.choices import Status, Trigger
from connections.metadata import merge_metadata
from connections.models import Connection, ProbeResult, ProbeRollup
from connections.probing import scheduling
from connections.probing.history import prune_probe_history
from connections.probing.outcomes import apply_outcomes
from connections.probing.probes import ProbeOutcome
from credentials.bounds import origin_of
from credentials.models import Credential

pytestmark = pytest.mark.django_db


def make_due(*conns):
    Connection.objects.filter(pk__in=[c.pk for c in conns]).update(
        next_probe_at=timezone.now() - timedelta(seconds=1)
    )


def probe_round(*conns):
    make_due(*conns)
    stats = scheduling.run_round()
    for conn in conns:
        conn.refresh_from_db()
    return stats


def probe_history(conn):
    return list(conn.history.filter(trigger=Trigger.PROBE).values_list("from_status", "to_status"))


def test_one_failure_never_changes_state_the_threshold_does(http_endpoint, make_connection):
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url, failure_threshold=3)
    http_endpoint.status = 500
    for expected_failures in (1, 2):
        probe_round(conn)
        assert (conn.status, conn.consecutive_failures) == (Status.CONNECTED, expected_failures)
    http_endpoint.status = 200  # one success resets the count
    probe_round(conn)
    assert (conn.status, conn.consecutive_failures) == (Status.CONNECTED, 0)
    http_endpoint.status = 500
    for _ in range(3):
        probe_round(conn)
    assert conn.status == Status.DISCONNECTED
    row = conn.history.get()
    assert (row.trigger, row.from_status) == (Trigger.PROBE, Status.CONNECTED)
    assert row.reason.endswith(
        "answered 500 Internal Server Error: the service runs but is failing."
        " (3 failed probes in a row)"
    )


@pytest.mark.parametrize(
    ("lost_from", "back_to"),
    [(Status.CONNECTED, Status.CONNECTED), (Status.REGISTERED, Status.REGISTERED)],
)
def test_recovery_returns_to_what_was_lost(lost_from, back_to, http_endpoint, make_connection):
    conn = make_connection(lost_from, url=http_endpoint.url, managed=True, failure_threshold=1)
    http_endpoint.status = 502
    probe_round(conn)
    assert conn.status == Status.DISCONNECTED
    http_endpoint.status = 200
    probe_round(conn)
    assert conn.status == back_to
    assert probe_history(conn) == [(lost_from, Status.DISCONNECTED), (Status.DISCONNECTED, back_to)]


def test_an_unreachable_unmanaged_registration_goes_to_not_found(dead_url, make_connection):
    unmanaged = make_connection(Status.REGISTERED, url=dead_url, failure_threshold=2)
    managed = make_connection(
        Status.REGISTERED, url=dead_url + "/m", managed=True, failure_threshold=2
    )
    probe_round(unmanaged, managed)
    probe_round(unmanaged, managed)
    assert (unmanaged.status, managed.status) == (Status.NOT_FOUND, Status.DISCONNECTED)
    # not_found is not probed any more
    assert unmanaged.next_probe_at is None
    stats = probe_round(unmanaged)
    assert stats["claimed"] == 0


def test_a_reachable_discovered_connection_registers(http_endpoint, make_connection):
    conn = make_connection(Status.DISCOVERED, url=http_endpoint.url, managed=True)
    probe_round(conn)
    assert conn.status == Status.REGISTERED
    assert probe_history(conn) == [(Status.DISCOVERED, Status.REGISTERED)]
    probe_round(conn)  # an ordinary kind does not connect itself
    assert conn.status == Status.REGISTERED


def test_a_self_connecting_kind_connects_itself(http_endpoint, owner):
    token = Credential(
        name="provider", kind="bearer_token", owner=owner, endpoints=[origin_of(http_endpoint.url)]
    )
    token.set_secret({"token": "t0k"})
    token.save()
    created = creating.create_manual_connection(
        name="provider", kind="remote_provider", url=http_endpoint.url, user=owner, credential=token
    )
    conn = created.connection
    assert conn.status == Status.REGISTERED
    probe_round(conn)
    assert conn.status == Status.CONNECTED
    assert probe_history(conn) == [(Status.REGISTERED, Status.CONNECTED)]


def test_an_auth_failure_disconnects_at_once_with_that_reason(http_endpoint, make_connection):
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url, failure_threshold=5)
    http_endpoint.status = 401
    probe_round(conn)
    assert conn.status == Status.DISCONNECTED
    assert "refused the credential (HTTP 401): check it, or renew it." in conn.history.get().reason
    assert conn.last_probe_error.startswith("auth:")


def test_a_short_outage_is_never_hidden_behind_backoff_a_long_one_backs_off_to_a_cap(
    dead_url, make_connection, settings
):
    """Down less than PROBE_BACKOFF_AFTER: probed every interval (recovery is seen within
    one interval); then the interval doubles per PROBE_BACKOFF_AFTER down, up to the cap."""
    settings.PROBE_BACKOFF_MAX = 100
    settings.PROBE_BACKOFF_AFTER = 300
    conn = make_connection(
        Status.CONNECTED, url=dead_url, managed=True, failure_threshold=1, probe_interval=10
    )
    delays = {}
    with time_machine.travel(timezone.now(), tick=False) as clock:
        probe_round(conn)
        assert conn.status == Status.DISCONNECTED
        for down_for in (0, 120, 299, 300, 600, 1200, 2400, 9000):
            clock.move_to(conn.status_changed_at + timedelta(seconds=down_for))
            probe_round(conn)
            delays[down_for] = round((conn.next_probe_at - conn.last_probe_at).total_seconds())
    assert delays == {0: 10, 120: 10, 299: 10, 300: 20, 600: 40, 1200: 80, 2400: 100, 9000: 100}


def test_after_a_first_failure_the_next_probe_comes_at_the_retry_interval(
    http_endpoint, make_connection
):
    conn = make_connection(
        Status.CONNECTED, url=http_endpoint.url, probe_interval=30, retry_interval=5
    )
    http_endpoint.status = 503
    probe_round(conn)
    assert conn.status == Status.CONNECTED and conn.consecutive_failures == 1
    assert (conn.next_probe_at - conn.last_probe_at).total_seconds() == 5
    http_endpoint.status = 200
    probe_round(conn)
    assert conn.consecutive_failures == 0
    assert (conn.next_probe_at - conn.last_probe_at).total_seconds() == 30


def test_lost_probes_that_do_not_reach_the_threshold_never_change_state(
    http_endpoint, make_connection
):
    """One probe in three failing, or two in a row with the retry succeeding: no flap."""
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url, failure_threshold=3)
    for status in [503, 200, 200] * 4 + [503, 503, 200] * 4:
        http_endpoint.status = status
        probe_round(conn)
        assert conn.status == Status.CONNECTED
    assert probe_history(conn) == []


def test_connections_outside_the_probed_states_are_never_claimed(make_connection, http_endpoint):
    probed = [
        make_connection(s, url=f"{http_endpoint.url}/{s}", managed=True)
        for s in (Status.DISCOVERED, Status.REGISTERED, Status.CONNECTED, Status.DISCONNECTED)
    ]
    unprobed = [
        make_connection(s, url=f"{http_endpoint.url}/{s}")
        for s in (Status.IGNORED, Status.MAINTENANCE, Status.NOT_FOUND, Status.DELETED)
    ]
    make_due(*probed, *unprobed)
    token, ids = scheduling.claim_due(100)
    assert sorted(ids) == sorted(c.pk for c in probed)


def test_overlapping_claims_never_share_a_connection(make_connection):
    conns = [make_connection(Status.CONNECTED) for _ in range(10)]
    make_due(*conns)
    _, first = scheduling.claim_due(6)
    _, second = scheduling.claim_due(6)
    _, third = scheduling.claim_due(6)
    assert len(first) == 6 and len(second) == 4 and third == []
    assert not set(first) & set(second)


def test_a_probe_result_that_raced_with_maintenance_is_dropped(
    http_endpoint, make_connection, owner
):
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url, failure_threshold=1)
    make_due(conn)
    token, ids = scheduling.claim_due(10)
    batch = scheduling.load_claimed(token, ids)  # the probe starts from this row
    lifecycle.transition(conn, Status.MAINTENANCE, trigger=Trigger.USER, user=owner)
    failed = ProbeOutcome(ok=False, error_class="connect", error="refused")
    stats = apply_outcomes([(batch[0], failed)], claim=token)
    assert (stats["stale"], stats["applied"]) == (1, 0)
    conn.refresh_from_db()
    assert conn.status == Status.MAINTENANCE
    assert conn.consecutive_failures == 0
    assert not ProbeResult.objects.filter(connection=conn).exists()
    assert [h.trigger for h in conn.history.all()] == [Trigger.USER]


def test_a_batch_whose_claim_was_taken_over_applies_nothing(http_endpoint, make_connection):
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url)
    make_due(conn)
    old_token, ids = scheduling.claim_due(10)
    make_due(conn)  # the lease ran out (the old worker died) and a new round claims it
    new_token, _ = scheduling.claim_due(10)
    stats = scheduling.run_batch(old_token, ids)
    assert stats["skipped"] == 1 and stats["applied"] == 0
    assert scheduling.run_batch(new_token, ids)["applied"] == 1
    assert ProbeResult.objects.filter(connection=conn).count() == 1


def test_results_are_recorded_and_metadata_merged(http_endpoint, make_connection):
    conn = make_connection(Status.CONNECTED, url=http_endpoint.url, metadata={"team": "sre"})
    make_due(conn)
    token, ids = scheduling.claim_due(10)
    batch = scheduling.load_claimed(token, ids)
    ok = ProbeOutcome(ok=True, latency_ms=12.5, status_code=200, metadata={"version": "2.42"})
    apply_outcomes([(batch[0], ok)], claim=token)
    conn.refresh_from_db()
    assert conn.metadata == {"team": "sre", "version": "2.42"}
    assert (conn.last_probe_ok, conn.last_latency_ms, conn.probe_claim) == (True, 12.5, None)
    result = conn.probe_results.get()
    assert (result.ok, result.latency_ms, result.status_code) == (True, 12.5, 200)


def test_probe_history_is_bounded_and_rolled_up_per_hour(make_connection):
    conn = make_connection(Status.CONNECTED)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    ProbeResult.objects.bulk_create(
        ProbeResult(
            connection=conn,
            checked_at=start + timedelta(minutes=2 * i),
            ok=i % 5 != 0,
            latency_ms=float(i),
        )
        for i in range(150)
    )
    assert prune_probe_history(keep=50) == 100
    kept = list(conn.probe_results.values_list("latency_ms", flat=True))
    assert sorted(kept) == [float(i) for i in range(100, 150)]
    rollups = list(conn.rollups.order_by("hour"))
    assert [r.ok_count + r.failed_count for r in rollups] == [30, 30, 30, 10]
    assert sum(r.failed_count for r in rollups) == 20
    assert rollups[0].latency_mean_ms == pytest.approx(14.5)
    assert rollups[0].latency_max_ms == 29.0
    # pruning again changes nothing; adding results folds into the same hours
    assert prune_probe_history(keep=50) == 0


def test_deleting_purges_raw_results_and_rollups(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    ProbeResult.objects.create(connection=conn, ok=True)
    ProbeRollup.objects.create(connection=conn, hour=timezone.now(), ok_count=3)
    lifecycle.transition(conn, Status.DELETED, trigger=Trigger.USER, user=owner)
    assert not ProbeResult.objects.filter(connection=conn).exists()
    assert not ProbeRollup.objects.filter(connection=conn).exists()


def test_probe_connections_command_runs_one_round(http_endpoint, make_connection, capsys):
    conn = make_connection(Status.DISCOVERED, url=http_endpoint.url, managed=True)
    make_due(conn)
    call_command("probe_connections", "--once")
    assert "probed 1: 1 ok, 0 failed, 1 state changes" in capsys.readouterr().out
    conn.refresh_from_db()
    assert conn.status == Status.REGISTERED


@pytest.mark.parametrize("writer", ["_compare_and_set_many", "_compare_and_set_each"])
def test_both_bulk_writers_apply_only_unchanged_rows(writer, make_connection, owner):
    """The PostgreSQL statement and the per-row fallback (SQLite) guard rows alike."""
    from connections.probing import outcomes as health

    kept, raced = make_connection(Status.CONNECTED), make_connection(Status.CONNECTED)
    make_due(kept, raced)
    token, ids = scheduling.claim_due(10)
    batch = {c.pk: c for c in scheduling.load_claimed(token, ids)}
    lifecycle.transition(raced, Status.MAINTENANCE, trigger=Trigger.USER, user=owner)
    outcome = ProbeOutcome(ok=False, error_class="connect", error="refused", metadata={"v": 1})
    rows = [
        (c, outcome, health._bookkeeping(c, outcome, health.decide(c, outcome), timezone.now()))
        for c in batch.values()
    ]
    assert getattr(health, writer)(rows, token) == {kept.pk}
    kept.refresh_from_db()
    raced.refresh_from_db()
    assert (kept.consecutive_failures, kept.metadata, kept.probe_claim) == (1, {"v": 1}, None)
    assert (raced.consecutive_failures, raced.status) == (0, Status.MAINTENANCE)


# ---- probing that stalls says so -----------------------------------------------------------


def _overdue(make_connection, seconds: float):
    conn = make_connection("registered")
    Connection.objects.filter(pk=conn.pk).update(
        next_probe_at=timezone.now() - timedelta(seconds=seconds), probe_claim=None
    )
    return conn


@pytest.mark.django_db
def test_readiness_says_probes_stalled_when_nothing_is_probed_for_two_ticks(
    client, make_connection, settings
):
    settings.PROBE_TICK = 5
    _overdue(make_connection, 3)  # due 3 s ago: within two ticks, not yet a stall
    assert client.get("/readyz").json()["probes"] == "ok"
    conn = _overdue(make_connection, 60)
    ready = client.get("/readyz")
    assert ready.status_code == 200  # the web serves: a load balancer keeps sending it requests
    body = ready.json()
    assert body["status"] == "degraded"
    since = Connection.objects.get(pk=conn.pk).next_probe_at.isoformat(timespec="seconds")
    assert body["probes"] == f"stalled since {since}"


@pytest.mark.django_db
def test_readiness_tells_behind_from_stalled(client, make_connection, settings):
    from connections.models import ProbeCounter

    settings.PROBE_TICK = 5
    _overdue(make_connection, 60)
    ProbeCounter.add([("http", True, 12.0)])  # a result was counted just now: it goes on
    assert client.get("/readyz").json()["probes"].startswith("behind since ")
    ProbeCounter.objects.update(recorded_at=timezone.now() - timedelta(seconds=30))
    assert client.get("/readyz").json()["probes"].startswith("stalled since ")


@pytest.mark.django_db
def test_the_overview_says_probes_stalled_and_its_poll_notices(
    client, owner, make_connection, settings
):
    settings.PROBE_TICK = 5
    conn = make_connection("registered", owner=owner)
    client.force_login(owner)
    page = client.get("/")
    assert "Probes stalled" not in page.text
    etag = page.wsgi_request.live_etag
    Connection.objects.filter(pk=conn.pk).update(
        next_probe_at=timezone.now() - timedelta(minutes=3)
    )
    poll = client.get("/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
    assert poll.status_code == 200  # no stamp changed, but what the fragment shows did
    assert "Probes stalled since" in poll.text


@pytest.mark.django_db
def test_probing_is_stalled_when_beat_claims_but_no_worker_probes(
    make_connection, settings, monkeypatch
):
    """Workers dead, beat and broker alive: beat claims the due rows again every tick (each
    claim pushes the lease forward), nothing is probed; that is a stall, seen from the time
    the rows were first due."""
    from connections import tasks
    from connections.probing.state import probing_state

    settings.PROBE_TICK = 5
    monkeypatch.setattr(tasks.probe_batch, "apply_async", lambda *args, **kwargs: None)
    conn = make_connection("registered")
    start = timezone.now()
    first_due = start - timedelta(seconds=1)
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=first_due, probe_claim=None)
    states = []
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(12):  # a minute of ticks: the broker takes each batch, nobody runs it
            tasks.dispatch_due_probes()
            states.append(probing_state())
            clock.shift(5)
    assert states[0].state == "ok"  # just due: not a stall yet
    assert states[-1].state == "stalled" and states[-1].since == first_due


# ---- the probe engine's review: leases that survive a queue, metadata merged not overwritten,
# a credential edited while its probe is in flight ----------------------------------------


def test_a_claimed_row_is_not_claimed_again_before_its_lease_runs_out(make_connection, settings):
    settings.PROBE_CLAIM_LEASE = 15
    conn = make_connection(Status.CONNECTED)
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=timezone.now())
    token, ids = scheduling.claim_due(10, horizon=5)
    assert ids == [conn.pk]
    # ten seconds later a tick whose horizon reaches past the lease's end claims nothing
    later = timezone.now() + timedelta(seconds=11)
    assert scheduling.claim_due(10, now=later, horizon=5)[1] == []
    # a batch that waited in the queue starts with a whole lease
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=timezone.now())
    scheduling.load_claimed(token, ids)
    conn.refresh_from_db()
    assert (conn.next_probe_at - timezone.now()).total_seconds() > 13


def test_a_probe_result_never_undoes_metadata_written_while_it_ran(make_connection):
    conn = make_connection(Status.CONNECTED, metadata={"cluster_id": "registered-uid"})
    Connection.objects.filter(pk=conn.pk).update(next_probe_at=timezone.now())
    token, ids = scheduling.claim_due(10)
    (loaded,) = scheduling.load_claimed(token, ids)
    merge_metadata(Connection.objects.filter(pk=conn.pk), {"nodes": 5, "discovery_error": ""})
    outcome = ProbeOutcome(ok=True, metadata={"version": "v2", "cluster_id": "another-uid"})
    assert apply_outcomes([(loaded, outcome)], claim=token)["applied"] == 1
    conn.refresh_from_db()
    assert conn.metadata == {
        "cluster_id": "registered-uid",
        "nodes": 5,
        "discovery_error": "",
        "version": "v2",
    }


def test_a_credential_saved_with_a_new_secret_drops_results_in_flight(make_connection, owner):
    credential = Credential(
        name="t", kind="bearer_token", owner=owner, endpoints=["http://127.0.0.1:1"]
    )
    credential.set_secret({"token": "old-token"})
    credential.save()
    conn = make_connection(Status.CONNECTED, credential=credential, consecutive_failures=2)
    Connection.objects.filter(pk=conn.pk).update(
        next_probe_at=timezone.now() + timedelta(minutes=5)
    )
    conn.refresh_from_db()
    version = conn.state_version
    credential = Credential.objects.get(pk=credential.pk)
    credential.set_secret({"token": "fixed-token"})
    credential.save()
    conn.refresh_from_db()
    assert conn.state_version == version + 1  # a probe that started with the old one: stale
    assert conn.consecutive_failures == 0
    assert conn.next_probe_at <= timezone.now()  # probed again with the new one at once
    # saving it unchanged touches nothing
    Credential.objects.get(pk=credential.pk).save()
    conn.refresh_from_db()
    assert conn.state_version == version + 1


# ---- found in review: a result probed against an old URL, the threshold, a claim's lease -----


def test_editing_the_url_drops_a_result_probed_against_the_old_one(make_connection):
    conn = make_connection(Status.REGISTERED, failure_threshold=3)
    Connection.objects.filter(pk=conn.pk).update(consecutive_failures=2)
    token, ids = scheduling.claim_due(10)
    in_flight = scheduling.load_claimed(token, ids)[0]
    edited = Connection.objects.get(pk=conn.pk)
    edited.url = "http://127.0.0.1:2/fixed"
    edited.save()
    failed = ProbeOutcome(ok=False, error_class="connect", error="old url down")
    stats = apply_outcomes([(in_flight, failed)], claim=token)
    assert stats["stale"] == 1
    conn.refresh_from_db()
    assert (conn.status, conn.consecutive_failures) == (Status.REGISTERED, 0)
    assert conn.url.endswith("/fixed") and not conn.history.exists()


def test_a_threshold_of_one_is_not_allowed(make_connection):
    conn = make_connection(Status.CONNECTED)
    conn.failure_threshold = 1
    with pytest.raises(ValidationError, match="failure_threshold"):
        conn.full_clean()


def test_a_users_transition_does_not_overwrite_a_claims_lease(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    loaded = Connection.objects.get(pk=conn.pk)
    token, _ = scheduling.claim_due(10)
    leased = Connection.objects.get(pk=conn.pk).next_probe_at
    lifecycle.transition(loaded, Status.IGNORED, trigger=Trigger.USER, user=owner)
    assert Connection.objects.get(pk=conn.pk).next_probe_at == leased
