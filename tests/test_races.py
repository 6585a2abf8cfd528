"""Two actors on one connection at once, for real, on PostgreSQL."""

import pytest

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection, ConnectionTransition
from tests.helpers import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("round_", range(10))
def test_two_users_acting_at_once_exactly_one_wins(round_, make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    # both load the connection before either acts
    first = Connection.objects.get(pk=conn.pk)
    second = Connection.objects.get(pk=conn.pk)

    results = run_concurrently(
        lambda: lifecycle.transition(first, Status.MAINTENANCE, trigger=Trigger.USER, user=owner),
        lambda: lifecycle.transition(second, Status.IGNORED, trigger=Trigger.USER, user=owner),
    )

    outcomes = sorted(kind for kind, _ in results)
    assert outcomes == ["error", "ok"], results
    error = next(value for kind, value in results if kind == "error")
    assert isinstance(error, lifecycle.StaleState)
    assert "nothing was applied" in str(error)
    stored = Connection.objects.get(pk=conn.pk)
    winner = next(value for kind, value in results if kind == "ok")
    assert stored.status == winner.to_status
    assert ConnectionTransition.objects.filter(connection=conn).count() == 1
    assert stored.state_version == 1


def test_the_same_action_twice_at_once_applies_once(make_connection, owner):
    conn = make_connection(Status.REGISTERED)
    loaded = [Connection.objects.get(pk=conn.pk) for _ in range(4)]
    results = run_concurrently(
        *[
            (lambda c=c: lifecycle.transition(c, Status.DELETED, trigger=Trigger.USER, user=owner))
            for c in loaded
        ]
    )
    assert sorted(kind for kind, _ in results) == ["error", "error", "error", "ok"]
    assert ConnectionTransition.objects.filter(connection=conn).count() == 1


def test_a_users_action_wins_over_a_probe_that_started_before_it(make_connection, owner):
    conn = make_connection(Status.CONNECTED, managed=True)
    seen_by_probe = Connection.objects.get(pk=conn.pk)  # the probe reads the row, then probes
    # meanwhile the user puts it into maintenance and takes it out again
    lifecycle.transition(conn, Status.MAINTENANCE, trigger=Trigger.USER, user=owner)
    lifecycle.transition(conn, Status.CONNECTED, trigger=Trigger.USER, user=owner)
    # the probe's (failed) result arrives: same status as it read, but it is stale
    with pytest.raises(lifecycle.StaleState):
        lifecycle.transition(
            seen_by_probe, Status.DISCONNECTED, trigger=Trigger.PROBE, reason="timeout"
        )
    assert seen_by_probe.status == Status.CONNECTED  # the loser sees the truth
    stored = Connection.objects.get(pk=conn.pk)
    assert stored.status == Status.CONNECTED
    assert [h.trigger for h in stored.history.all()] == [Trigger.USER, Trigger.USER]


def test_a_user_and_a_probe_at_once_never_leave_the_table(make_connection, owner):
    edges = lifecycle.edges()
    for _ in range(10):
        conn = make_connection(Status.CONNECTED, managed=True)
        by_user = Connection.objects.get(pk=conn.pk)
        by_probe = Connection.objects.get(pk=conn.pk)
        run_concurrently(
            lambda u=by_user: lifecycle.transition(
                u, Status.MAINTENANCE, trigger=Trigger.USER, user=owner
            ),
            lambda p=by_probe: lifecycle.transition(
                p, Status.DISCONNECTED, trigger=Trigger.PROBE, reason="timeout"
            ),
        )
        rows = list(conn.history.values_list("from_status", "to_status", "trigger"))
        assert len(rows) == 1 and rows[0] in edges
        assert Connection.objects.get(pk=conn.pk).status == rows[0][1]


@pytest.mark.parametrize("round_", range(3))
def test_workers_counting_at_once_lose_no_count_and_never_deadlock(round_):
    """Four workers record results of the same kinds at once (the first ones creating the
    counter rows): every result is counted once."""
    from connections.models import ProbeCounter

    def worker(seed):
        def add():
            for i in range(20):
                kinds = ["http", "prometheus"] if (seed + i) % 2 else ["prometheus", "http"]
                ProbeCounter.add([(k, ok, 7.0) for k in kinds for ok in (True, False)])

        return add

    results = run_concurrently(*(worker(seed) for seed in range(4)))
    assert all(outcome == "ok" for outcome, _ in results), results
    counters = {(c.kind, c.ok): c for c in ProbeCounter.objects.all()}
    assert set(counters) == {(k, ok) for k in ("http", "prometheus") for ok in (True, False)}
    for counter in counters.values():
        assert (counter.count, counter.latency_count) == (80, 80)
        assert counter.buckets[1] == 80 and counter.buckets[0] == 0  # 7 ms: le 10, not le 5


def test_a_users_register_wins_over_a_probe_that_lands_during_its_check(
    make_connection, owner, http_endpoint, monkeypatch
):
    """The spec's race: a probe started before the user's Register (it read the row first)
    and its failure lands while the user's reachability check runs. The user's action wins."""
    from connections.probing import outcomes as health
    from connections.probing.probes import ProbeOutcome

    conn = make_connection(
        Status.DISCOVERED, managed=True, url=http_endpoint.url, failure_threshold=1
    )
    seen_by_probe = Connection.objects.get(pk=conn.pk)  # the probe read the row, then probed
    real_check = lifecycle.check_reachability
    landed = []

    def check_while_the_probe_lands(connection):
        landed.append(
            health.apply_outcomes(
                [(seen_by_probe, ProbeOutcome(ok=False, error_class="connect", error="refused"))]
            )
        )
        return real_check(connection)

    monkeypatch.setattr(lifecycle, "check_reachability", check_while_the_probe_lands)
    record = lifecycle.perform_user_action(conn, Status.REGISTERED, user=owner)
    assert record.to_status == Status.REGISTERED and record.trigger == Trigger.USER
    assert landed[0]["stale"] == 1 and landed[0]["transitions"] == 0
    stored = Connection.objects.get(pk=conn.pk)
    assert stored.status == Status.REGISTERED
    assert stored.history.last().trigger == Trigger.USER
    assert not stored.history.filter(trigger=Trigger.PROBE).exists()


def test_a_bulk_register_wins_over_probes_that_land_during_its_checks(
    make_connection, owner, http_endpoint, monkeypatch
):
    from connections.probing import outcomes as health
    from connections.probing.probes import ProbeOutcome

    conns = [
        make_connection(
            Status.DISCOVERED, managed=True, url=f"{http_endpoint.url}/{n}", failure_threshold=1
        )
        for n in range(3)
    ]
    seen_by_probe = [Connection.objects.get(pk=c.pk) for c in conns]
    real_probe_many = lifecycle.probe_many
    landed = []

    def checks_while_probes_land(connections):
        failed = ProbeOutcome(ok=False, error_class="connect", error="refused")
        landed.append(health.apply_outcomes([(c, failed) for c in seen_by_probe]))
        return real_probe_many(connections)

    monkeypatch.setattr(lifecycle, "probe_many", checks_while_probes_land)
    report = lifecycle.perform_bulk_action(conns, Status.REGISTERED, user=owner)
    assert len(report.changed) == 3 and report.refused == []
    assert landed[0]["stale"] == 3
    assert set(
        Connection.objects.filter(pk__in=[c.pk for c in conns]).values_list("status", flat=True)
    ) == {Status.REGISTERED}


def test_two_users_registering_at_once_one_wins(make_connection, owner, monkeypatch):
    """The second Register arrives while the first one's check runs: the first (staked first)
    wins, the second is told the connection changed meanwhile; never both lose."""
    from connections.probing.probes import ProbeOutcome

    conn = make_connection(Status.DISCOVERED)
    first, second = (Connection.objects.get(pk=conn.pk) for _ in range(2))
    told = {}

    def check(connection):
        if "second" not in told:  # the first one's check is running when the second arrives
            try:
                lifecycle.perform_user_action(second, Status.REGISTERED, user=owner)
                told["second"] = "registered"
            except lifecycle.StaleState as exc:
                told["second"] = str(exc)
        return ProbeOutcome(ok=True)

    monkeypatch.setattr(lifecycle, "check_reachability", check)
    record = lifecycle.perform_user_action(first, Status.REGISTERED, user=owner)
    assert record.to_status == Status.REGISTERED
    assert "while this action was being taken" in told["second"]
    assert Connection.objects.get(pk=conn.pk).status == Status.REGISTERED
    assert conn.history.filter(to_status=Status.REGISTERED).count() == 1
