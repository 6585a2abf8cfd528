"""Random sequences of user, probe and discovery events never leave the state table."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection

EVENTS = st.lists(
    st.tuples(
        st.sampled_from([Trigger.USER, Trigger.PROBE, Trigger.DISCOVERY]),
        st.sampled_from(Status.values),
    ),
    min_size=1,
    max_size=30,
)


@pytest.mark.django_db
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=EVENTS,
    start=st.sampled_from([Status.DISCOVERED, Status.REGISTERED, Status.NOT_FOUND]),
    managed=st.booleans(),
    kind=st.sampled_from(["http", "remote_provider", "prometheus"]),
)
def test_random_event_sequences_stay_inside_the_table(
    events, start, managed, kind, make_connection, owner
):
    edges = lifecycle.edges()
    managed = managed or start == Status.DISCOVERED
    conn = make_connection(start, managed=managed, kind=kind)
    applied = 0
    for trigger, target in events:
        was_deleted = conn.status == Status.DELETED
        try:
            lifecycle.transition(conn, target, trigger=trigger, user=owner, reason="random")
            applied += 1
        except lifecycle.TransitionRefused:
            pass
        assert not (was_deleted and conn.status != Status.DELETED), "a tombstone came back"
        assert conn.status in Status.values
    stored = Connection.all_objects.get(pk=conn.pk)
    assert stored.status == conn.status
    rows = list(stored.history.values_list("from_status", "to_status", "trigger"))
    assert len(rows) == applied == stored.state_version
    for row in rows:
        assert row in edges
    # consecutive rows chain: each starts where the previous one ended
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:], strict=False))
    if rows:
        assert rows[-1][1] == stored.status
