"""The state table of shared/spec/lifecycle.md, edge by edge, with its rules."""

import itertools

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from connections import creating, lifecycle
from connections.choices import Status, Trigger
from connections.editing import validate_connection
from connections.models import Connection, ConnectionTransition, ProbeResult
from environments.models import Environment

S = Status
USER, PROBE, DISCOVERY, SCHEDULE = Trigger.USER, Trigger.PROBE, Trigger.DISCOVERY, Trigger.SCHEDULE


def always(conn):
    return True


def scheduled(conn):
    return conn.maintenance_source == "schedule"


# The spec's table, written out independently of the model: (from, to, triggers, rule).
SPEC = [
    (S.DISCOVERED, S.REGISTERED, {PROBE, USER}, always),
    (S.DISCOVERED, S.IGNORED, {USER}, always),
    (S.DISCOVERED, S.DISCONNECTED, {PROBE, DISCOVERY}, always),
    (S.REGISTERED, S.CONNECTED, {USER}, always),
    (S.REGISTERED, S.CONNECTED, {PROBE}, lambda c: c.kind == "remote_provider"),
    (S.REGISTERED, S.MAINTENANCE, {USER, SCHEDULE}, always),
    (S.REGISTERED, S.NOT_FOUND, {PROBE}, lambda c: not c.managed),
    (S.REGISTERED, S.DISCONNECTED, {PROBE, DISCOVERY}, lambda c: c.managed),
    (S.REGISTERED, S.IGNORED, {USER}, always),
    (S.CONNECTED, S.MAINTENANCE, {USER, SCHEDULE}, always),
    (S.CONNECTED, S.IGNORED, {USER}, always),
    (S.CONNECTED, S.DISCONNECTED, {PROBE}, always),
    # Discovery only ever acts on the connections it manages.
    (S.CONNECTED, S.DISCONNECTED, {DISCOVERY}, lambda c: c.managed),
    (S.DISCONNECTED, S.CONNECTED, {PROBE}, lambda c: c.resume_status == S.CONNECTED),
    (S.DISCONNECTED, S.REGISTERED, {PROBE}, lambda c: c.resume_status != S.CONNECTED),
    (S.DISCONNECTED, S.IGNORED, {USER}, always),
    (S.MAINTENANCE, S.CONNECTED, {USER}, lambda c: c.resume_status == S.CONNECTED),
    (S.MAINTENANCE, S.REGISTERED, {USER}, lambda c: c.resume_status != S.CONNECTED),
    # A schedule ends only the maintenance a schedule started (the spec's maintenance windows).
    (
        S.MAINTENANCE,
        S.CONNECTED,
        {SCHEDULE},
        lambda c: c.resume_status == S.CONNECTED and scheduled(c),
    ),
    (
        S.MAINTENANCE,
        S.REGISTERED,
        {SCHEDULE},
        lambda c: c.resume_status != S.CONNECTED and scheduled(c),
    ),
    (S.IGNORED, S.REGISTERED, {USER}, always),
    (S.IGNORED, S.NOT_FOUND, {USER}, always),
    (S.NOT_FOUND, S.REGISTERED, {USER}, always),
] + [(state, S.DELETED, {USER}, always) for state in S.values if state != S.DELETED]

# Discovered connections are managed by definition; the other states come in every variant.
VARIANTS = [
    {"managed": managed, "kind": kind, "resume_status": resume, "maintenance_source": source}
    for managed, kind, resume, source in itertools.product(
        (False, True),
        ("http", "remote_provider"),
        (S.CONNECTED, S.REGISTERED),
        ("user", "schedule"),
    )
]


def spec_allows(conn, target, trigger) -> bool:
    return any(
        conn.status == src and target == dst and trigger in triggers and rule(conn)
        for src, dst, triggers, rule in SPEC
    )


def test_the_machine_has_exactly_the_edges_of_the_spec():
    spec_edges = {
        (str(src), str(dst), str(trigger)) for src, dst, triggers, _ in SPEC for trigger in triggers
    }
    assert lifecycle.edges() == spec_edges


@pytest.mark.django_db
@pytest.mark.parametrize("source", S.values)
@pytest.mark.parametrize("target", S.values)
def test_every_state_pair_moves_iff_the_spec_has_the_edge(source, target, make_connection, owner):
    for variant, trigger in itertools.product(VARIANTS, (USER, PROBE, DISCOVERY, SCHEDULE)):
        if source == S.DISCOVERED and not variant["managed"]:
            continue
        conn = make_connection(source, **variant)
        expected = spec_allows(conn, target, trigger)
        before = ConnectionTransition.objects.filter(connection=conn).count()
        if expected:
            record = lifecycle.transition(conn, target, trigger=trigger, user=owner, reason="t")
            conn = Connection.all_objects.get(pk=conn.pk)
            assert conn.status == target, (variant, trigger)
            assert (record.from_status, record.to_status, record.trigger) == (
                source,
                target,
                trigger,
            )
            assert record.user == (owner if trigger == USER else None)
            assert conn.state_version == 1
        else:
            with pytest.raises(lifecycle.TransitionRefused) as refused:
                lifecycle.transition(conn, target, trigger=trigger, user=owner)
            assert Connection.all_objects.get(pk=conn.pk).status == source, (variant, trigger)
            assert ConnectionTransition.objects.filter(connection=conn).count() == before
            assert refused.value.current == source
            assert S(source).label in str(refused.value)


@pytest.mark.django_db
def test_refusal_names_the_current_state_and_the_reachable_ones(make_connection, owner):
    conn = make_connection(S.CONNECTED)
    with pytest.raises(lifecycle.TransitionRefused) as refused:
        lifecycle.transition(conn, S.REGISTERED, trigger=USER, user=owner)
    message = str(refused.value)
    assert "is Connected" in message
    assert "Ignored, Maintenance, Deleted" in message
    assert refused.value.allowed == [S.IGNORED, S.MAINTENANCE, S.DELETED]


@pytest.mark.django_db
def test_status_cannot_be_assigned_directly(make_connection):
    conn = make_connection(S.REGISTERED)
    with pytest.raises(AttributeError):
        conn.status = S.CONNECTED


@pytest.mark.django_db
def test_an_ordinary_save_never_writes_the_state(make_connection, owner):
    conn = make_connection(S.CONNECTED)
    stale = Connection.objects.get(pk=conn.pk)
    lifecycle.transition(conn, S.MAINTENANCE, trigger=USER, user=owner)
    stale.name = "renamed"
    stale.save()
    fresh = Connection.objects.get(pk=conn.pk)
    assert (fresh.name, fresh.status) == ("renamed", S.MAINTENANCE)


@pytest.mark.django_db
@pytest.mark.parametrize("entered_from", [S.CONNECTED, S.REGISTERED])
def test_maintenance_returns_to_the_state_it_was_entered_from(entered_from, make_connection, owner):
    conn = make_connection(entered_from)
    lifecycle.transition(conn, S.MAINTENANCE, trigger=USER, user=owner)
    assert lifecycle.user_targets(conn, owner) == [entered_from, S.DELETED]
    lifecycle.transition(conn, entered_from, trigger=USER, user=owner)
    assert Connection.objects.get(pk=conn.pk).status == entered_from


@pytest.mark.django_db
@pytest.mark.parametrize("lost_from", [S.CONNECTED, S.REGISTERED, S.DISCOVERED])
def test_a_lost_connection_recovers_to_connected_only_if_it_was_connected(
    lost_from, make_connection
):
    conn = make_connection(lost_from, managed=True)
    lifecycle.transition(conn, S.DISCONNECTED, trigger=PROBE, reason="3 failures")
    expected = S.CONNECTED if lost_from == S.CONNECTED else S.REGISTERED
    assert list(lifecycle.available(conn, PROBE)) == [expected]
    lifecycle.transition(conn, expected, trigger=PROBE, reason="reachable again")
    history = list(conn.history.values_list("from_status", "to_status", "trigger", "reason"))
    assert history == [
        (lost_from, S.DISCONNECTED, PROBE, "3 failures"),
        (S.DISCONNECTED, expected, PROBE, "reachable again"),
    ]


@pytest.mark.django_db
def test_user_edges_check_permission(make_connection, stranger, owner, django_user_model):
    conn = make_connection(S.REGISTERED)
    with pytest.raises(PermissionDenied):
        lifecycle.transition(conn, S.CONNECTED, trigger=USER, user=stranger)
    with pytest.raises(PermissionDenied):
        lifecycle.transition(conn, S.CONNECTED, trigger=USER, user=None)
    assert lifecycle.user_targets(conn, stranger) == []
    assert Connection.objects.get(pk=conn.pk).status == S.REGISTERED
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123")
    lifecycle.transition(conn, S.CONNECTED, trigger=USER, user=admin)
    assert conn.history.get().user == admin


@pytest.mark.django_db
def test_history_is_per_connection_in_time_order(make_connection, owner):
    conn = make_connection(S.REGISTERED)
    other = make_connection(S.REGISTERED)
    for target in (S.CONNECTED, S.MAINTENANCE, S.CONNECTED, S.IGNORED):
        lifecycle.transition(conn, target, trigger=USER, user=owner)
    lifecycle.transition(other, S.IGNORED, trigger=USER, user=owner)
    assert [row.to_status for row in conn.history.all()] == [
        S.CONNECTED,
        S.MAINTENANCE,
        S.CONNECTED,
        S.IGNORED,
    ]


@pytest.mark.django_db
def test_delete_purges_collected_data_and_keeps_a_hidden_tombstone(make_connection, owner):
    conn = make_connection(S.CONNECTED)
    keep = make_connection(S.CONNECTED)
    for c in (conn, keep):
        ProbeResult.objects.create(connection=c, ok=True, latency_ms=3.0)
    env = Environment.objects.create(name="prod", owner=owner)
    env.connections.add(conn, keep)

    lifecycle.transition(conn, S.DELETED, trigger=USER, user=owner, reason="decommissioned")

    assert not Connection.objects.filter(pk=conn.pk).exists()
    tombstone = Connection.all_objects.get(pk=conn.pk)
    assert tombstone.status == S.DELETED
    assert [h.to_status for h in tombstone.history.all()] == [S.DELETED]
    assert not ProbeResult.objects.filter(connection=conn).exists()
    assert ProbeResult.objects.filter(connection=keep).count() == 1
    assert list(env.connections.all()) == [keep]
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.transition(tombstone, S.REGISTERED, trigger=USER, user=owner)


@pytest.mark.django_db
def test_deletion_frees_the_identity_for_a_new_connection(make_connection, owner):
    conn = make_connection(S.REGISTERED, url="http://Prom.example:80/")
    twin = Connection(name="twin", kind="http", url="http://prom.example", owner=owner)
    with pytest.raises(ValidationError, match="already tracked as"):
        validate_connection(twin, user=owner)
    lifecycle.transition(conn, S.DELETED, trigger=USER, user=owner)
    validate_connection(twin, user=owner)
    twin.save()
    assert twin.identity == conn.identity
    assert Connection.all_objects.filter(identity=conn.identity).count() == 2


@pytest.mark.django_db
def test_adding_a_reachable_endpoint_registers_it(http_endpoint, owner):
    created = creating.create_manual_connection(
        name="api", kind="http", url=http_endpoint.url, user=owner
    )
    conn = created.connection
    assert (conn.status, conn.managed, conn.last_probe_ok) == (S.REGISTERED, False, True)
    row = conn.history.get()
    assert (row.from_status, row.to_status, row.trigger, row.user) == (
        "",
        S.REGISTERED,
        USER,
        owner,
    )


@pytest.mark.django_db
def test_adding_an_unreachable_endpoint_records_not_found_with_the_reason(dead_url, owner):
    created = creating.create_manual_connection(name="gone", kind="http", url=dead_url, user=owner)
    conn = created.connection
    assert conn.status == S.NOT_FOUND
    assert "connect" in conn.last_probe_error
    assert "reachability check failed" in conn.history.get().reason


@pytest.mark.django_db
def test_adding_the_same_endpoint_twice_is_refused(http_endpoint, owner):
    first = creating.create_manual_connection(
        name="a", kind="http", url=http_endpoint.url + "/", user=owner
    ).connection
    with pytest.raises(creating.DuplicateConnection) as duplicate:
        creating.create_manual_connection(
            name="b", kind="http", url=http_endpoint.url.upper().replace("HTTP", "http"), user=owner
        )
    assert duplicate.value.existing == first
    assert Connection.objects.count() == 1


@pytest.mark.django_db
def test_register_again_from_ignored_runs_the_check(
    http_endpoint, dead_url, make_connection, owner
):
    reachable = make_connection(S.IGNORED, url=http_endpoint.url)
    lifecycle.perform_user_action(reachable, S.REGISTERED, user=owner)
    assert reachable.status == S.REGISTERED

    unreachable = make_connection(S.IGNORED, url=dead_url)
    record = lifecycle.perform_user_action(unreachable, S.REGISTERED, user=owner)
    assert (record.to_status, unreachable.status) == (S.NOT_FOUND, S.NOT_FOUND)
    assert "reachability check failed" in record.reason


@pytest.mark.django_db
def test_retry_of_a_not_found_that_still_fails_changes_nothing(dead_url, make_connection, owner):
    conn = make_connection(S.NOT_FOUND, url=dead_url)
    with pytest.raises(lifecycle.RegistrationFailed, match="stays Not Found"):
        lifecycle.perform_user_action(conn, S.REGISTERED, user=owner)
    assert Connection.objects.get(pk=conn.pk).status == S.NOT_FOUND
    assert not conn.history.exists()


@pytest.mark.django_db
def test_discovery_creates_managed_discovered_connections(owner):
    conn = creating.create_discovered_connection(
        name="prometheus",
        kind="prometheus",
        url="http://prometheus.monitoring.svc:9090",
        identity="discovered|cluster-a/monitoring/prometheus:9090",
        owner=owner,
    )
    assert (conn.status, conn.managed) == (S.DISCOVERED, True)
    assert conn.history.get().trigger == DISCOVERY
    with pytest.raises(creating.DuplicateConnection):
        creating.create_discovered_connection(
            name="prometheus again",
            kind="prometheus",
            url="http://prometheus.monitoring.svc:9090",
            identity="discovered|cluster-a/monitoring/prometheus:9090",
        )
