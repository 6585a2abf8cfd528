"""Maintenance windows: when they are active (timezones, midnight, DST), how apply_windows moves
connections in and out of maintenance, and which notifications they keep quiet."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.models import Connection, ConnectionTransition
from environments.models import Environment
from maintenance import schedule
from maintenance.apply import apply_windows
from maintenance.models import Window
from notifications import channels, routing
from notifications.models import Event, Message
from tests.helpers import make_window, one_off

AMS = ZoneInfo("Europe/Amsterdam")
LA = ZoneInfo("America/Los_Angeles")
PERTH = ZoneInfo("Australia/Perth")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def recurring(weekdays, at, minutes, tz="UTC", **extra) -> Window:
    """An unsaved recurring window (the schedule functions need no database)."""
    return Window(
        name=extra.pop("name", "w"),
        kind=Window.Kind.RECURRING,
        weekdays=weekdays,
        start_time=time.fromisoformat(at),
        duration_minutes=minutes,
        timezone=tz,
        **extra,
    )


# ---- when a window is active: pure functions ---------------------------------------------


def test_a_window_crossing_midnight_belongs_to_the_day_it_starts():
    w = recurring([FRI], "23:00", 120, "Europe/Amsterdam")
    fri_23 = datetime(2025, 6, 6, 23, 0, tzinfo=AMS)
    assert w.active_occurrence(fri_23 - timedelta(seconds=1)) is None
    assert w.active_occurrence(fri_23) == (fri_23, fri_23 + timedelta(hours=2))
    assert w.active_occurrence(datetime(2025, 6, 7, 0, 59, tzinfo=AMS)) is not None
    assert w.active_occurrence(datetime(2025, 6, 7, 1, 0, tzinfo=AMS)) is None  # end exclusive
    # Saturday 23:30 is not a start day
    assert w.active_occurrence(datetime(2025, 6, 7, 23, 30, tzinfo=AMS)) is None


@pytest.mark.parametrize(
    "tz, day, at, expected_utc",
    [
        # spring forward: 02:30 does not exist, it starts when the clocks jump (03:00 local)
        ("Europe/Amsterdam", date(2025, 3, 30), "02:30", utc(2025, 3, 30, 1, 0)),
        ("America/Los_Angeles", date(2025, 3, 9), "02:30", utc(2025, 3, 9, 10, 0)),
        # fall back: 02:30 (Amsterdam) / 01:30 (Los Angeles) happen twice: the first one
        ("Europe/Amsterdam", date(2025, 10, 26), "02:30", utc(2025, 10, 26, 0, 30)),
        ("America/Los_Angeles", date(2025, 11, 2), "01:30", utc(2025, 11, 2, 8, 30)),
        # ordinary days either side
        ("Europe/Amsterdam", date(2025, 3, 23), "02:30", utc(2025, 3, 23, 1, 30)),
        ("Europe/Amsterdam", date(2025, 4, 6), "02:30", utc(2025, 4, 6, 0, 30)),
        # Perth has no DST now (UTC+8 all year) but had it in its 2006-2009 trial
        ("Australia/Perth", date(2025, 1, 15), "09:00", utc(2025, 1, 15, 1, 0)),
        ("Australia/Perth", date(2025, 7, 15), "09:00", utc(2025, 7, 15, 1, 0)),
        ("Australia/Perth", date(2007, 1, 15), "09:00", utc(2007, 1, 15, 0, 0)),
    ],
)
def test_start_times_follow_the_timezone_across_dst(tz, day, at, expected_utc):
    assert schedule.local_start(day, time.fromisoformat(at), ZoneInfo(tz)) == expected_utc
    w = recurring([day.weekday()], at, 60, tz)
    assert w.active_occurrence(expected_utc) == (expected_utc, expected_utc + timedelta(hours=1))
    assert w.active_occurrence(expected_utc - timedelta(seconds=1)) is None


def test_durations_are_elapsed_time_across_a_dst_change():
    # Saturday 22:00 for 6 hours over the Amsterdam fall-back night: 6 real hours, 03:00 local
    w = recurring([SAT], "22:00", 360, "Europe/Amsterdam")
    start, end = w.active_occurrence(utc(2025, 10, 25, 21, 0))
    assert end - start == timedelta(hours=6)
    assert end.astimezone(AMS).time() == time(3, 0)


def test_a_perth_window_is_at_the_same_utc_instant_all_year():
    w = recurring([MON, TUE, WED, THU, FRI, SAT, SUN], "09:00", 30, "Australia/Perth")
    found = w.next_occurrences(utc(2025, 1, 1), 365)
    assert len(found) == 365
    assert {start.astimezone(UTC).time() for start, _ in found} == {time(1, 0)}


def test_next_occurrences_of_a_weekly_window_keep_local_time_through_both_dst_changes():
    w = recurring([SUN], "02:30", 60, "America/Los_Angeles")
    found = w.next_occurrences(utc(2025, 1, 1), 52)
    assert len(found) == 52
    local = [start.astimezone(LA) for start, _ in found]
    assert all(s.weekday() == SUN for s in local)
    assert {s.time() for s in local} == {time(2, 30), time(3, 0)}  # 03:00 on 9 March only
    assert [s.date() for s in local if s.time() == time(3, 0)] == [date(2025, 3, 9)]
    starts = [start for start, _ in found]
    assert all(
        b - a >= timedelta(days=6, hours=23) for a, b in zip(starts, starts[1:], strict=False)
    )


def test_one_off_windows_and_end_now():
    w = Window(
        name="upgrade",
        kind=Window.Kind.ONE_OFF,
        starts_at=utc(2025, 5, 1, 10),
        ends_at=utc(2025, 5, 1, 12),
    )
    assert w.active_occurrence(utc(2025, 5, 1, 11)) == (utc(2025, 5, 1, 10), utc(2025, 5, 1, 12))
    assert w.next_occurrences(utc(2025, 4, 1), 3) == [(utc(2025, 5, 1, 10), utc(2025, 5, 1, 12))]
    w.ended_at = utc(2025, 5, 1, 10, 30)
    assert w.active_occurrence(utc(2025, 5, 1, 11)) is None
    assert schedule.last_end(w, utc(2025, 5, 1, 11)) == w.ended_at


def test_a_disabled_window_is_never_active():
    w = recurring([MON], "00:00", 1440, enabled=False)
    assert w.active_occurrence(utc(2025, 6, 2, 12)) is None
    assert w.next_occurrences(utc(2025, 6, 1), 3) == []


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"weekdays": [7]}, "weekdays"),
        ({"weekdays": []}, "weekdays"),
        ({"kinds": ["teapot"]}, "kinds"),
    ],
)
@pytest.mark.django_db
def test_bad_windows_are_a_validation_error(fields, error, owner):
    w = recurring([MON], "02:00", 60, owner=owner)
    for name, value in fields.items():
        setattr(w, name, value)
    with pytest.raises(ValidationError) as raised:
        w.full_clean()
    assert error in raised.value.message_dict


@pytest.mark.django_db
def test_a_one_off_window_must_end_after_it_starts(owner):
    w = Window(name="x", owner=owner, starts_at=utc(2025, 1, 2), ends_at=utc(2025, 1, 1))
    with pytest.raises(ValidationError):
        w.full_clean()


# ---- apply_windows ---------------------------------------------------------------------------


@pytest.fixture
def environment(owner):
    return Environment.objects.create(name="prod", owner=owner)


def schedule_rows(conn):
    return list(
        ConnectionTransition.objects.filter(connection=conn, trigger=Trigger.SCHEDULE)
        .order_by("pk")
        .values_list("from_status", "to_status", "created_at")
    )


@pytest.mark.django_db
def test_a_window_moves_its_connections_in_and_back_where_they_came_from(make_connection, owner):
    connected = make_connection(Status.CONNECTED)
    registered = make_connection(Status.REGISTERED)
    outside = make_connection(Status.CONNECTED)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(
            owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), connections=[connected, registered]
        )
        assert apply_windows()["entered"] == 0
    with time_machine.travel(utc(2025, 5, 1, 10), tick=False):
        assert apply_windows()["entered"] == 2
    for conn in (connected, registered):
        conn.refresh_from_db()
        assert (conn.status, conn.maintenance_source) == (Status.MAINTENANCE, "schedule")
        assert conn.history.last().reason == "maintenance window nightly"
    assert Connection.objects.get(pk=outside.pk).status == Status.CONNECTED
    with time_machine.travel(utc(2025, 5, 1, 12), tick=False):
        assert apply_windows()["left"] == 2
        for conn, was in ((connected, Status.CONNECTED), (registered, Status.REGISTERED)):
            conn.refresh_from_db()
            assert (conn.status, conn.maintenance_source) == (was, "")
            assert conn.next_probe_at == utc(2025, 5, 1, 12)  # probed at once
            assert conn.history.last().reason == "maintenance window nightly ended"


@pytest.mark.django_db
def test_rerunning_apply_windows_is_a_no_op(make_connection, owner, environment):
    conns = [make_connection(Status.CONNECTED) for _ in range(3)]
    environment.connections.set(conns)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), environments=[environment])
    for instant in (utc(2025, 5, 1, 10), utc(2025, 5, 1, 12)):
        with time_machine.travel(instant, tick=False):
            apply_windows()
            before = ConnectionTransition.objects.count()
            stats = apply_windows()
            assert ConnectionTransition.objects.count() == before
            assert stats["entered"] == stats["left"] == stats["skipped"] == 0


@pytest.mark.django_db
def test_environment_members_added_during_a_window_enter_it(make_connection, owner, environment):
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), environments=[environment])
    late = make_connection(Status.CONNECTED)
    with time_machine.travel(utc(2025, 5, 1, 11), tick=False):
        apply_windows()
        assert Connection.objects.get(pk=late.pk).status == Status.CONNECTED
        environment.connections.add(late)
        apply_windows()
        assert Connection.objects.get(pk=late.pk).status == Status.MAINTENANCE


@pytest.mark.django_db
def test_a_weekly_window_fires_every_week_for_a_year(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    start_of_year = utc(2025, 1, 1)
    with time_machine.travel(start_of_year, tick=False):
        window = make_window(
            owner,
            kind=Window.Kind.RECURRING,
            weekdays=[SUN],
            start_time=time(2, 30),
            duration_minutes=90,
            timezone="Europe/Amsterdam",
            connections=[conn],
        )
    occurrences = window.next_occurrences(start_of_year, 52)
    assert len(occurrences) == 52
    for start, end in occurrences:
        # a tick just before, at the start, a worker restart mid-window, at the end, after
        for instant, expected in (
            (start - timedelta(seconds=1), Status.CONNECTED),
            (start, Status.MAINTENANCE),
            (start + (end - start) / 2, Status.MAINTENANCE),
            (end - timedelta(seconds=1), Status.MAINTENANCE),
            (end, Status.CONNECTED),
            (end + timedelta(seconds=15), Status.CONNECTED),
        ):
            with time_machine.travel(instant, tick=False):
                apply_windows()
            assert Connection.objects.get(pk=conn.pk).status == expected, instant
    rows = schedule_rows(conn)
    entered = [at for src, dst, at in rows if dst == Status.MAINTENANCE]
    left = [at for src, dst, at in rows if src == Status.MAINTENANCE]
    assert entered == [start for start, _ in occurrences]  # each start once, on time
    assert left == [end for _, end in occurrences]  # each end once, on time
    # the local wall clock held through both DST changes (03:00 on the spring-forward Sunday)
    local = {s.astimezone(AMS).time() for s in entered}
    assert local == {time(2, 30), time(3, 0)}


@pytest.mark.django_db
def test_a_tick_missed_at_the_start_enters_late_not_never(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), connections=[conn])
    with time_machine.travel(utc(2025, 5, 1, 10, 40), tick=False):  # the worker was down
        apply_windows()
    assert Connection.objects.get(pk=conn.pk).status == Status.MAINTENANCE
    with time_machine.travel(utc(2025, 5, 1, 13), tick=False):  # and again at the end
        apply_windows()
    assert Connection.objects.get(pk=conn.pk).status == Status.CONNECTED
    assert len(schedule_rows(conn)) == 2


@pytest.mark.django_db
def test_manual_maintenance_survives_a_windows_end(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    lifecycle.transition(conn, Status.MAINTENANCE, trigger=Trigger.USER, user=owner)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), connections=[conn])
    for instant in (utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), utc(2025, 5, 1, 13)):
        with time_machine.travel(instant, tick=False):
            apply_windows()
        conn.refresh_from_db()
        assert (conn.status, conn.maintenance_source) == (Status.MAINTENANCE, "user")
    assert schedule_rows(conn) == []
    # and the schedule edge itself refuses it
    with pytest.raises(lifecycle.TransitionRefused):
        lifecycle.transition(conn, Status.CONNECTED, trigger=Trigger.SCHEDULE)


@pytest.mark.django_db
def test_a_user_may_end_a_scheduled_maintenance_and_the_window_respects_it(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        make_window(
            owner,
            kind=Window.Kind.RECURRING,
            weekdays=list(range(7)),
            start_time=time(10, 0),
            duration_minutes=120,
            connections=[conn],
        )
    with time_machine.travel(utc(2025, 5, 1, 10), tick=False):
        apply_windows()
    with time_machine.travel(utc(2025, 5, 1, 10, 30), tick=False):
        conn.refresh_from_db()
        lifecycle.perform_user_action(conn, Status.CONNECTED, user=owner)
        apply_windows()
    assert Connection.objects.get(pk=conn.pk).status == Status.CONNECTED  # not put back
    with time_machine.travel(utc(2025, 5, 2, 10), tick=False):  # the next occurrence
        apply_windows()
    assert Connection.objects.get(pk=conn.pk).status == Status.MAINTENANCE


@pytest.mark.django_db
def test_overlapping_windows_keep_it_in_maintenance_until_the_last_ends(make_connection, owner):
    conn = make_connection(Status.REGISTERED)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 11), connections=[conn], name="a")
        one_off(owner, utc(2025, 5, 1, 10, 30), utc(2025, 5, 1, 12), connections=[conn], name="b")
    for instant, expected in (
        (utc(2025, 5, 1, 10), Status.MAINTENANCE),
        (utc(2025, 5, 1, 10, 30), Status.MAINTENANCE),
        (utc(2025, 5, 1, 11), Status.MAINTENANCE),
        (utc(2025, 5, 1, 12), Status.REGISTERED),
    ):
        with time_machine.travel(instant, tick=False):
            apply_windows()
        assert Connection.objects.get(pk=conn.pk).status == expected
    assert len(schedule_rows(conn)) == 2


@pytest.mark.django_db
def test_end_now_ends_the_window_at_once(make_connection, owner):
    conn = make_connection(Status.CONNECTED)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        window = one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), connections=[conn])
    with time_machine.travel(utc(2025, 5, 1, 10), tick=False):
        apply_windows()
    with time_machine.travel(utc(2025, 5, 1, 10, 20), tick=False):
        window.ended_at = utc(2025, 5, 1, 10, 20)
        window.save()
        apply_windows()
    assert Connection.objects.get(pk=conn.pk).status == Status.CONNECTED


@pytest.fixture
def channel(owner):
    made, _ = channels.create_channel(
        owner, name="hook", kind="webhook", destination="http://127.0.0.1:9/hook", group_window=0
    )
    return made


def route_at(instant):
    with time_machine.travel(instant, tick=False):
        return routing.route_events()


@pytest.mark.django_db
def test_disconnected_at_the_start_stays_disconnected_quiet_and_is_probed_at_the_end(
    make_connection, owner, channel
):
    gone = make_connection(Status.DISCONNECTED, managed=True, resume_status=Status.CONNECTED)
    found = make_connection(Status.DISCOVERED, managed=True)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), connections=[gone, found])
    with time_machine.travel(utc(2025, 5, 1, 10), tick=False):
        apply_windows()
    assert Connection.objects.get(pk=gone.pk).status == Status.DISCONNECTED  # no such edge
    with time_machine.travel(utc(2025, 5, 1, 11), tick=False):
        lifecycle.transition(found, Status.DISCONNECTED, trigger=Trigger.PROBE, reason="down")
    route_at(utc(2025, 5, 1, 11, 0, 5))
    event = Event.objects.get(connection=found)
    assert event.quiet == "under maintenance window nightly"
    assert not Message.objects.exists()
    with time_machine.travel(utc(2025, 5, 1, 12), tick=False):
        apply_windows()
    assert Connection.objects.get(pk=gone.pk).next_probe_at == utc(2025, 5, 1, 12)
    assert Connection.objects.get(pk=found.pk).next_probe_at == utc(2025, 5, 1, 12)


@pytest.mark.django_db
def test_no_notification_inside_a_window_and_a_failure_after_it_is_reported(
    make_connection, owner, channel
):
    conn = make_connection(Status.CONNECTED, managed=True)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), connections=[conn])
    for instant in (utc(2025, 5, 1, 10), utc(2025, 5, 1, 12)):
        with time_machine.travel(instant, tick=False):
            apply_windows()
        route_at(instant + timedelta(seconds=5))
    assert not Message.objects.exists()
    assert set(Event.objects.filter(connection=conn).values_list("quiet", flat=True)) == {
        "the connection is in maintenance",
        "a maintenance window started or ended",
    }
    # still down at the first probes after the end: reported like any failure
    with time_machine.travel(utc(2025, 5, 1, 12, 0, 10), tick=False):
        conn.refresh_from_db()
        lifecycle.transition(conn, Status.DISCONNECTED, trigger=Trigger.PROBE, reason="down")
    route_at(utc(2025, 5, 1, 12, 0, 15))
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_kind_scopes_span_the_fleet_only_for_staff(make_connection, owner, django_user_model):
    prom = make_connection(Status.CONNECTED, kind="prometheus")
    admin = django_user_model.objects.create_user("admin", password="pw-admin-123", is_staff=True)
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(owner, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), kinds=["prometheus"])
    with time_machine.travel(utc(2025, 5, 1, 10), tick=False):
        apply_windows()
    assert Connection.objects.get(pk=prom.pk).status == Status.CONNECTED
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        one_off(admin, utc(2025, 5, 1, 10), utc(2025, 5, 1, 12), kinds=["prometheus"])
    with time_machine.travel(utc(2025, 5, 1, 10), tick=False):
        apply_windows()
    assert Connection.objects.get(pk=prom.pk).status == Status.MAINTENANCE


def _fleet(make_connection, owner, environment, n):
    Connection.objects.all().delete()
    conns = [make_connection(Status.CONNECTED) for _ in range(n)]
    environment.connections.set(conns)
    return conns


@pytest.mark.django_db
def test_apply_windows_costs_the_same_queries_at_10_and_300_connections(
    make_connection, owner, environment, django_assert_max_num_queries
):
    with time_machine.travel(utc(2025, 5, 1, 9), tick=False):
        for i in range(5):
            one_off(
                owner,
                utc(2025, 5, 1, 10),
                utc(2025, 5, 1, 12),
                name=f"w{i}",
                environments=[environment],
            )
        make_window(
            owner,
            name="weekly",
            kind=Window.Kind.RECURRING,
            weekdays=[THU],
            start_time=time(10, 0),
            duration_minutes=60,
            connections=[],
        )
    counts = []
    for n in (10, 300):
        _fleet(make_connection, owner, environment, n)
        quiet_hour = time_machine.travel(utc(2025, 5, 1, 9, 30), tick=False)
        with quiet_hour, django_assert_max_num_queries(2):  # nothing active, nothing to do
            apply_windows()
        with time_machine.travel(utc(2025, 5, 1, 10, 30), tick=False):
            apply_windows()  # they enter
            assert Connection.objects.filter(status=Status.MAINTENANCE).count() == n
            with django_assert_max_num_queries(3) as steady:
                apply_windows()
        counts.append(len(steady.captured_queries))
    assert counts[0] == counts[1]


# ---- after the review: bad zones, lost rights ----------------------------------------------


@pytest.mark.django_db
def test_a_window_whose_zone_the_host_lost_stops_neither_the_others_nor_routing(
    make_connection, owner
):
    from datetime import timedelta

    from django.utils import timezone

    from maintenance.apply import apply_windows
    from notifications.routing import route_events

    lost, kept = make_connection(Status.CONNECTED), make_connection(Status.CONNECTED)
    now = timezone.now()
    broken = make_window(
        owner,
        connections=[lost],
        kind=Window.Kind.RECURRING,
        weekdays=list(range(7)),
        start_time=(now - timedelta(minutes=5)).time(),
        duration_minutes=60,
    )
    Window.objects.filter(pk=broken.pk).update(timezone="US/Pacific-New")  # gone in 2020b
    one_off(owner, now - timedelta(minutes=5), now + timedelta(hours=1), connections=[kept])
    apply_windows(now=now)
    kept.refresh_from_db()
    lost.refresh_from_db()
    assert (kept.status, lost.status) == (Status.MAINTENANCE, Status.CONNECTED)
    route_events()  # the events of that move are routed, not stopped by the broken window


@pytest.mark.parametrize(
    "name", ["localtime", "Factory", "posixrules", "europe/amsterdam", "x" * 5000]
)
def test_host_dependent_or_unknown_zone_names_are_refused(name):
    from django.core.exceptions import ValidationError

    from maintenance.models import validate_timezone

    with pytest.raises(ValidationError):
        validate_timezone(name)


@pytest.mark.django_db
def test_a_window_stops_holding_connections_its_owner_may_no_longer_change(
    make_connection, owner, django_user_model
):
    from datetime import timedelta

    from django.utils import timezone

    from environments.models import EnvironmentMembership
    from maintenance.apply import apply_windows

    editor = django_user_model.objects.create_user("ed", password="x")
    env = Environment.objects.create(name="prod", owner=owner)
    membership = EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    conn = make_connection(Status.CONNECTED)
    env.connections.add(conn)
    now = timezone.now()
    start = now + timedelta(hours=1)
    one_off(editor, start, start + timedelta(hours=2), environments=[env])  # saved while allowed
    membership.delete()  # then the editor is removed from the environment
    apply_windows(now=start + timedelta(minutes=1))
    conn.refresh_from_db()
    assert conn.status == Status.CONNECTED  # the removed editor's window no longer takes it
    EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    apply_windows(now=start + timedelta(minutes=2))
    conn.refresh_from_db()
    assert conn.status == Status.MAINTENANCE  # and does again once they are back


# ---- who reads a reason, what it names --------------------------------------------------


@pytest.mark.django_db
def test_windows_ending_together_are_named_only_in_their_own_connections_reasons(
    make_connection, owner, stranger
):
    """Two users' private windows end in the same tick: each connection's history names only
    the window that covered it, never the other user's."""
    mine = make_connection(Status.CONNECTED, owner=owner)
    theirs = make_connection(Status.CONNECTED, owner=stranger)
    start, end = utc(2025, 5, 1, 10), utc(2025, 5, 1, 12)
    with time_machine.travel(start - timedelta(hours=1), tick=False):
        one_off(owner, start, end, name="owner-window", connections=[mine])
        one_off(stranger, start, end, name="stranger-private-window", connections=[theirs])
    apply_windows(now=start)
    apply_windows(now=end)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.history.last().reason == "maintenance window owner-window ended"
    assert theirs.history.last().reason == "maintenance window stranger-private-window ended"


@pytest.mark.django_db
def test_a_private_window_over_a_shared_connection_is_not_named_to_its_members(
    make_connection, owner, django_user_model, environment
):
    """The owner's own window covers a connection shared into "prod": its members read the
    connection's history, so the window's name stays out of it."""
    from environments.models import EnvironmentMembership

    viewer = django_user_model.objects.create_user("viewer", password="x")
    EnvironmentMembership.objects.create(environment=environment, user=viewer, role="viewer")
    shared = make_connection(Status.CONNECTED, owner=owner)
    environment.connections.add(shared)
    start, end = utc(2025, 5, 1, 10), utc(2025, 5, 1, 12)
    with time_machine.travel(start - timedelta(hours=1), tick=False):
        one_off(owner, start, end, name="owner-secret-plan", connections=[shared])
    apply_windows(now=start)
    apply_windows(now=end)
    as_viewer, as_owner = _history_as(viewer, shared), _history_as(owner, shared)
    assert "owner-secret-plan" not in as_viewer
    assert "a maintenance window" in as_viewer and "a maintenance window ended" in as_viewer
    assert "maintenance window owner-secret-plan ended" in as_owner  # the owner may see it
    # an environment's window is named: everyone who sees the connection sees the window
    one_off(
        owner,
        utc(2025, 5, 2, 10),
        utc(2025, 5, 2, 12),
        name="prod-window",
        environment=environment,
        connections=[shared],
    )
    apply_windows(now=utc(2025, 5, 2, 10))
    assert "maintenance window prod-window" in _history_as(viewer, shared)


def _history_as(user, connection) -> str:
    """The connection's history as ``user`` reads it: its page and the API's."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    page = client.get(f"/connections/{connection.pk}/").content.decode()
    api = client.get(f"/api/connections/{connection.pk}/history/").content.decode()
    return page + api


@pytest.mark.django_db
def test_a_quiet_note_names_a_window_only_to_those_who_see_it(
    make_connection, owner, django_user_model, environment, channel
):
    from environments.models import EnvironmentMembership

    viewer = django_user_model.objects.create_user("viewer", password="x")
    EnvironmentMembership.objects.create(environment=environment, user=viewer, role="viewer")
    shared = make_connection(Status.CONNECTED, owner=owner)
    environment.connections.add(shared)
    Event.objects.all().delete()
    now = utc(2025, 5, 1, 10)
    with time_machine.travel(now, tick=False):
        # a failure during the owner's private window (before apply_windows moved it)
        one_off(
            owner,
            now - timedelta(minutes=5),
            now + timedelta(hours=1),
            name="owner-secret-plan",
            connections=[shared],
        )
        lifecycle.transition(shared, Status.DISCONNECTED, trigger=Trigger.PROBE, reason="down")
        routing.route_events(now=now)
    from django.test import Client

    for user, expected in (
        (viewer, "under a maintenance window"),
        (owner, "under maintenance window owner-secret-plan"),
    ):
        client = Client()
        client.force_login(user)
        assert expected in client.get("/notifications/").content.decode()


# ---- times at the edge, zones that no longer load, rights that ended ------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
        ("0001-01-02T00:00:00+14:00", "2025-01-01T00:00:00Z"),
        ("2025-01-01T00:00:00Z", "9999-12-31T00:00:00-12:00"),
    ],
)
def test_a_window_at_the_edge_of_time_is_refused_and_pages_never_break(
    owner, environment, start, end
):
    from django.test import Client

    from accounts.models import ApiToken

    key = ApiToken.issue(owner, "t")[1]
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    body = {
        "name": "forever",
        "kind": "one_off",
        "starts_at": start,
        "ends_at": end,
        "environment": environment.pk,
    }
    answer = api.post("/api/maintenance/windows/", body, content_type="application/json")
    assert answer.status_code == 400, answer.content
    assert "0001-01-03 and 9999-12-29" in answer.content.decode()
    assert not Window.objects.exists()


@pytest.mark.django_db
def test_a_window_stored_at_the_edge_of_time_shows_in_every_zone(make_connection, owner):
    """Saved by an earlier release: the migration's clamp, and the pages in a far zone."""
    from importlib import import_module

    from django.apps import apps as global_apps
    from django.test import Client
    from django.urls import reverse

    conn = make_connection(Status.CONNECTED, owner=owner)
    window = one_off(
        owner, utc(2025, 1, 1), utc(2025, 1, 2), connections=[conn], timezone="Pacific/Kiritimati"
    )
    Window.objects.filter(pk=window.pk).update(
        starts_at=datetime.min.replace(tzinfo=UTC), ends_at=datetime.max.replace(tzinfo=UTC)
    )
    import_module("maintenance.migrations.0003_window_times_within_bounds").clamp(global_apps, None)
    client = Client()
    client.force_login(owner)
    client.post(reverse("maintenance:list"), {"tz": "Etc/GMT+12"})
    for url in (
        reverse("maintenance:list"),
        reverse("maintenance:detail", args=[window.pk]),
        reverse("maintenance:edit", args=[window.pk]),
        reverse("connections:detail", args=[conn.pk]),
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_a_window_whose_zone_no_longer_loads_shows_and_says_so(make_connection, owner, environment):
    from django.test import Client
    from django.urls import reverse

    conn = make_connection(Status.CONNECTED, owner=owner)
    environment.connections.add(conn)
    window = make_window(
        owner,
        connections=[conn],
        kind=Window.Kind.RECURRING,
        weekdays=[0, 1, 2, 3, 4, 5, 6],
        start_time=time(3, 0),
        duration_minutes=60,
        environment=environment,
    )
    Window.objects.filter(pk=window.pk).update(timezone="US/Pacific-New")  # gone in 2020b
    client = Client()
    client.force_login(owner)
    for url in (
        reverse("maintenance:list"),
        reverse("maintenance:detail", args=[window.pk]),
        reverse("maintenance:edit", args=[window.pk]),
        reverse("connections:detail", args=[conn.pk]),
        reverse("environments:detail", args=[environment.pk]),
    ):
        page = client.get(url)
        assert page.status_code == 200, url
    page = client.get(reverse("maintenance:detail", args=[window.pk]))
    assert "no longer knows the time zone US/Pacific-New" in page.text


@pytest.mark.django_db
def test_an_editor_removed_from_an_environment_no_longer_sees_its_windows(
    owner, django_user_model, environment
):
    from django.test import Client
    from django.urls import reverse

    from environments.models import EnvironmentMembership

    editor = django_user_model.objects.create_user("ed", password="x")
    membership = EnvironmentMembership.objects.create(
        environment=environment, user=editor, role="editor"
    )
    window = one_off(
        editor, utc(2030, 1, 1), utc(2030, 1, 2), name="eds-window", environment=environment
    )
    client = Client()
    client.force_login(editor)
    detail = reverse("maintenance:detail", args=[window.pk])
    assert client.get(detail).status_code == 200
    membership.delete()
    assert client.get(detail).status_code == 404
    assert "eds-window" not in client.get(reverse("maintenance:list")).text
    assert (
        client.post(reverse("maintenance:delete", args=[window.pk]), {"confirm": "yes"}).status_code
        == 404
    )
    assert Window.objects.filter(pk=window.pk).exists()
    # his own window of no environment stays his
    own = one_off(editor, utc(2030, 1, 1), utc(2030, 1, 2), name="eds-own")
    assert client.get(reverse("maintenance:detail", args=[own.pk])).status_code == 200


@pytest.mark.django_db
def test_an_environments_window_outlives_the_editor_who_made_it(
    make_connection, owner, django_user_model, environment
):
    """The window is the environment's (its editors manage it): it keeps covering the
    environment's connections after its maker leaves, and only while they are in it."""
    from datetime import timedelta

    from django.utils import timezone

    from environments.models import EnvironmentMembership

    editor = django_user_model.objects.create_user("ed", password="x")
    membership = EnvironmentMembership.objects.create(
        environment=environment, user=editor, role="editor"
    )
    stays, leaves = make_connection(Status.CONNECTED), make_connection(Status.CONNECTED)
    environment.connections.add(stays, leaves)
    now = timezone.now()
    start = now + timedelta(hours=1)
    one_off(
        editor,
        start,
        start + timedelta(hours=2),
        environment=environment,
        connections=[stays, leaves],
    )
    membership.delete()
    environment.connections.remove(leaves)
    apply_windows(now=start + timedelta(minutes=1))
    stays.refresh_from_db()
    leaves.refresh_from_db()
    assert (stays.status, leaves.status) == (Status.MAINTENANCE, Status.CONNECTED)


@pytest.mark.django_db
def test_texts_written_before_mentions_name_nothing_a_reader_may_not_see(
    make_connection, owner, django_user_model, environment
):
    """The upgrade's data migration: older reasons and quiet notes get their mentions when the
    object is certain, else the unseen wording."""
    from importlib import import_module

    from django.apps import apps as global_apps
    from django.test import Client

    from connections.dependencies import add_parent
    from environments.models import EnvironmentMembership

    viewer = django_user_model.objects.create_user("viewer", password="x")
    EnvironmentMembership.objects.create(environment=environment, user=viewer, role="viewer")
    shared = make_connection(Status.DISCONNECTED, owner=owner)
    environment.connections.add(shared)
    parent = make_connection(Status.DISCONNECTED, owner=owner, name="owners-parent")
    add_parent(owner, shared, parent)
    one_off(owner, utc(2025, 1, 1), utc(2025, 1, 2), name="unique-private")
    one_off(owner, utc(2025, 1, 1), utc(2025, 1, 2), name="twice")
    one_off(owner, utc(2025, 1, 1), utc(2025, 1, 2), name="twice")
    older = [  # as the releases before mentions wrote them
        ("maintenance window unique-private", Trigger.SCHEDULE),
        ("maintenance window twice ended", Trigger.SCHEDULE),
        ("unreachable (connect: refused); parent owners-parent is Disconnected", Trigger.PROBE),
    ]
    for reason, trigger in older:
        ConnectionTransition.objects.create(
            connection=shared, to_status="disconnected", trigger=trigger, reason=reason
        )
    Event.objects.filter(connection=shared).update(quiet="under maintenance window twice")
    import_module("notifications.migrations.0007_mentions_of_older_texts").mentions_of_older_texts(
        global_apps, None
    )
    client = Client()
    client.force_login(viewer)
    seen = client.get(f"/connections/{shared.pk}/").text
    seen += client.get("/notifications/").text + client.get("/api/notifications/events/").text
    for name in ("unique-private", "twice", "owners-parent"):
        assert name not in seen, name
    assert "a connection it depends on is Disconnected" in seen
    client.force_login(owner)  # the owner may see the window and the parent: named to him
    mine = client.get(f"/connections/{shared.pk}/").text
    assert "maintenance window unique-private" in mine and "parent owners-parent is" in mine
