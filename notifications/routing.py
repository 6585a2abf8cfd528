"""From events to messages: which channels hear an event, and what they are told.

``route_events`` claims unrouted events (``FOR UPDATE SKIP LOCKED``: two workers never route one
event), and in the same transaction queues their messages and marks them routed, so a crash
routes an event again from the start or not at all. Per channel and connection an
``AlertState`` keeps the no-noise rules: a recovery is sent only after the failure it resolves;
a failure within the cool-down of the last one is held back and reported when the cool-down
ends if the connection is still down; reminders follow while it stays down.

(Over 400 lines, on purpose: routing is one transaction whose rules read the same per-channel
alert state; the quiet rules of maintenance and parents are part of that decision.)
"""

from __future__ import annotations

import copy as copy_module
import json
import logging
from collections import Counter
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connections.choices import Status, Trigger
from connections.dependencies import down_parents, parent_note
from connections.mentions import Said, Seen
from connections.models import Connection

from .choices import FAILURES, Category, MessageKind
from .messages import event_message, reminder_message, still_down_message
from .models import AlertState, Channel, Event, Message

log = logging.getLogger(__name__)

ROUTE_BATCH = 2000
ROUTE_LOCK_KEY = 0x4E4F54494659  # "NOTIFY"
_DOWN = (Status.DISCONNECTED, Status.NOT_FOUND)


class Quiet(NamedTuple):
    """Why an event raises no notification (``cause`` "" : it does), and how it is told (a
    window or a parent named only to those who may see it: connections.mentions)."""

    cause: str = ""  # "maintenance", "schedule", "window", "parent"
    said: Said = Said()


def quiet_reason(
    event: Event,
    connection: Connection,
    windows: dict | None = None,
    parents_down: dict | None = None,
) -> Quiet:
    """Why an event raises no notification at all (the one place quiet is decided).

    ``windows``: connection id → (window, start, end) of the maintenance windows that cover it
    around the events' times (``maintenance_windows_of``, computed once per batch).
    ``parents_down``: connection id → its parent that is down now (``parents_down_of``): a
    child's failure is then listed in the parent's message, not sent on its own."""
    if connection.status == Status.MAINTENANCE and event.category != Category.ADMINISTRATIVE:
        return Quiet("maintenance", Said("the connection is in maintenance"))
    if event.trigger == Trigger.SCHEDULE:
        return Quiet("schedule", Said("a maintenance window started or ended"))
    if event.category != Category.ADMINISTRATIVE and not event.after_window:
        from maintenance.scope import window_phrase

        for window, start, end in (windows or {}).get(connection.pk, ()):
            if start <= event.created_at < end:
                return Quiet("window", "under " + window_phrase(window))
    parent = (parents_down or {}).get(connection.pk)
    if parent is not None and event.category in FAILURES:
        return Quiet("parent", parent_note(parent))
    return Quiet()


def _window_end(event: Event, cause: str, windows: dict) -> datetime | None:
    """When the last window that kept this failure quiet ends (None: not a window's)."""
    if event.category not in FAILURES or cause != "window":
        return None
    ends = [
        end
        for _, start, end in (windows or {}).get(event.connection_id, ())
        if start <= event.created_at < end
    ]
    return max(ends) if ends else None


RECHECK_EVERY = timedelta(seconds=60)  # a quiet failure's reason is looked at again so often
RELEASE_BATCH = 2000


def release_deferred(now: datetime | None = None) -> Counter:
    """Failures kept quiet by a window or a parent, looked at again (at the window's end, and at
    least every RECHECK_EVERY): while still covered or while a parent is still down they stay
    quiet; once neither holds, if the connection is still down and nothing happened to it since,
    the failure is routed again, like any failure. So an extended window keeps it quiet, an
    ended-early one releases it within a minute, and a child still down after its parent came
    back is told. Batched: a few queries for up to RELEASE_BATCH events."""
    from django.db.models import Max

    from maintenance.scope import windows_between

    now = now or timezone.now()
    stats: Counter = Counter()
    with transaction.atomic():
        due = list(
            Event.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(deferred_until__lte=now)
            .select_related("connection")
            .order_by("pk")[:RELEASE_BATCH]
        )
        if not due:
            return stats
        ids = {e.connection_id for e in due}
        latest = dict(
            Event.objects.filter(connection_id__in=ids)
            .values("connection_id")
            .annotate(last=Max("pk"))
            .values_list("connection_id", "last")
        )
        covered = windows_between({e.connection_id: e.connection.kind for e in due}, now, now)
        parents_down = down_parents(ids)
        release, clear, again = [], [], {}
        for event in due:
            if event.connection.status not in _DOWN or latest.get(event.connection_id) != event.pk:
                clear.append(event.pk)
                continue
            ends = [
                end for _, start, end in covered.get(event.connection_id, ()) if start <= now < end
            ]
            if ends or event.connection_id in parents_down:
                again[event.pk] = min([*ends, now + RECHECK_EVERY])
                continue
            release.append(event.pk)
        Event.objects.filter(pk__in=clear).update(deferred_until=None)
        Event.objects.filter(pk__in=release).update(
            deferred_until=None, routed_at=None, quiet="", after_window=True
        )
        _defer(again)
        stats["released"], stats["still_quiet"] = len(release), len(again)
    return stats


def _defer(until: dict[int, datetime]) -> None:
    """Set ``deferred_until`` per event, a statement per distinct time (a parent's outage
    defers thousands of children's failures to one time, not a statement each)."""
    by_time: dict[datetime, list[int]] = {}
    for pk, when in until.items():
        by_time.setdefault(when, []).append(pk)
    for when, pks in by_time.items():
        Event.objects.filter(pk__in=pks).update(deferred_until=when)


def parents_down_of(events: list[Event]) -> dict[int, Connection]:
    """For the failures among ``events``: connection id → a parent down now (a recovery is
    sent or not by its pairing with a failure message, whatever the parent)."""
    return down_parents({e.connection_id for e in events if e.category in FAILURES})


def maintenance_windows_of(events: list[Event], connections: dict[int, Connection]) -> dict:
    """The windows covering these events' connections at their times: a few queries a batch."""
    from maintenance.scope import windows_between

    kinds = {e.connection_id: connections[e.connection_id].kind for e in events}
    times = [e.created_at for e in events]
    return windows_between(kinds, min(times), max(times))


def _audience(channel: Channel, connection_ids: set[int]) -> set[int]:
    """Of ``connection_ids``, those the channel may hear of: its environment's connections, or
    those its owner may see."""
    if channel.environment_id is not None:
        members = channel.environment.connections.through.objects.filter(
            environment_id=channel.environment_id, connection_id__in=connection_ids
        )
        return set(members.values_list("connection_id", flat=True))
    visible = Connection.all_objects.restrict(channel.owner).filter(pk__in=connection_ids)
    return set(visible.values_list("pk", flat=True))


def _subscribers(
    channel: Channel, events: list[Event], connections: dict[int, Connection]
) -> dict[int, bool]:
    """event id → True for the events of ``events`` a rule of ``channel`` asks for."""
    audience = _audience(channel, {e.connection_id for e in events})
    wanted: dict[int, bool] = {}
    for rule in channel.rules.all():
        scoped_ids = {c.pk for c in rule.connections.all()}
        environments = [e.pk for e in rule.environments.all()]
        if environments:
            through = Connection.environments.through.objects.filter(
                environment_id__in=environments,
                connection_id__in={e.connection_id for e in events},
            )
            scoped_ids |= set(through.values_list("connection_id", flat=True))
        unscoped = not (rule.connections.all() or environments or rule.kinds)
        for event in events:
            if event.connection_id not in audience or event.category not in rule.categories:
                continue
            kind = connections[event.connection_id].kind
            if unscoped or event.connection_id in scoped_ids or kind in rule.kinds:
                wanted[event.pk] = True
    return wanted


def _still_hears(channel: Channel, connection: Connection, category: str) -> bool:
    """Would the channel hear a change of this category of this connection now (its owner or
    environment still sees it, a rule still asks)? A held failure or a reminder is sent only
    then: access or rules lost since the failure end them."""
    probe = SimpleNamespace(pk=0, connection_id=connection.pk, category=category)
    return bool(_subscribers(channel, [probe], {connection.pk: connection}))


def route_events(now: datetime | None = None, limit: int = ROUTE_BATCH) -> Counter:
    """Route up to ``limit`` unrouted events; returns counts (events, messages, quiet, held)."""
    now = now or timezone.now()
    stats: Counter = Counter()
    with transaction.atomic():
        if not _alone():
            stats["busy"] = 1
            return stats
        events = list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(routed_at__isnull=True)
            .order_by("pk")[:limit]
        )
        if not events:
            return stats
        connections = Connection.all_objects.in_bulk({e.connection_id for e in events})
        channels = list(
            Channel.objects.filter(enabled=True)
            .select_related("owner", "environment")
            .prefetch_related("rules__connections", "rules__environments")
        )
        windows = maintenance_windows_of(events, connections)
        parents_down = parents_down_of(events)
        loud, causes = [], {}
        for event in events:
            event.routed_at = now
            causes[event.pk], said = quiet_reason(
                event, connections[event.connection_id], windows, parents_down
            )
            event.quiet, event.quiet_mentions = said.text[:200], said.mentions
            if event.quiet:
                stats["quiet"] += 1
            else:
                loud.append(event)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(routed_at=now)
        # a failure kept quiet by a window or a parent is looked at again (release_deferred)
        deferred = {}
        for event in events:
            end = _window_end(event, causes[event.pk], windows)
            if end is None and event.category in FAILURES and causes[event.pk] == "parent":
                end = now + RECHECK_EVERY
            if end is not None:
                deferred[event.pk] = min(end, now + RECHECK_EVERY)
        _defer(deferred)
        quiet: dict[tuple[str, str], list[Event]] = {}
        for event in events:
            if event.quiet:
                key = (event.quiet, json.dumps(event.quiet_mentions, sort_keys=True))
                quiet.setdefault(key, []).append(event)
        for same in quiet.values():  # a few reasons: a statement each
            first = same[0]
            Event.objects.filter(pk__in=[e.pk for e in same]).update(
                quiet=first.quiet, quiet_mentions=first.quiet_mentions
            )
        stats["events"] = len(events)
        for channel in channels:
            wanted = _subscribers(channel, loud, connections)
            if wanted:
                mine = [e for e in loud if e.pk in wanted]
                _queue_for_channel(channel, mine, connections, now, stats)
    return stats


def _queue_for_channel(
    channel: Channel,
    events: list[Event],
    connections: dict[int, Connection],
    now: datetime,
    stats: Counter,
) -> None:
    states = {
        s.connection_id: s
        for s in AlertState.objects.select_for_update().filter(
            channel=channel, connection_id__in={e.connection_id for e in events}
        )
    }
    events = as_read_by(channel, events)
    cooldown = timedelta(seconds=channel.cooldown)
    queued: list[Message] = []
    touched: dict[int, AlertState] = {}
    for event in sorted(events, key=lambda e: e.pk):
        connection = connections[event.connection_id]
        state = states.get(event.connection_id)
        if state is None:
            state = states[event.connection_id] = AlertState(
                channel=channel, connection_id=event.connection_id
            )
        if event.category in FAILURES:
            if state.last_failure_at and now - state.last_failure_at < cooldown:
                state.held = event  # flapping: reported when the cool-down ends, if still down
                stats["held"] += 1
            else:
                queued.append(event_message(channel, event, connection, MessageKind.FAILURE, now))
                state.open, state.last_failure_at, state.held = True, now, None
                state.remind_at = _next_reminder(channel, now)
        elif event.category == Category.RECOVERY:
            if state.open:
                queued.append(event_message(channel, event, connection, MessageKind.RECOVERY, now))
            state.open, state.held, state.remind_at = False, None, None
        else:
            queued.append(event_message(channel, event, connection, MessageKind.OTHER, now))
        touched[event.connection_id] = state
    _save_states(touched.values())
    _insert(queued, stats)


def channel_readers(channel: Channel) -> list[Any]:
    """Who reads what a channel is told: its owner, or for an environment's channel, everyone
    who may see that environment."""
    from django.contrib.auth import get_user_model

    if channel.environment_id is None:
        return [channel.owner]
    environment = channel.environment
    return list(
        get_user_model()
        .objects.filter(
            Q(pk=environment.owner_id) | Q(environment_memberships__environment=environment)
        )
        .distinct()
    )


def as_read_by(channel: Channel, events: list[Event]) -> list[Event]:
    """Copies of ``events`` whose reasons name only what every reader of the channel may see
    (connections.mentions); the events themselves are left as they are."""
    if not any(e.mentions for e in events):
        return events
    seen = Seen(*channel_readers(channel)).load(e.mentions for e in events)
    shown = []
    for event in events:
        copy = copy_module.copy(event)
        copy.reason = seen.text(event.reason, event.mentions)
        shown.append(copy)
    return shown


def _next_reminder(channel: Channel, now: datetime) -> datetime | None:
    return now + timedelta(hours=channel.remind_every_hours) if channel.remind_every_hours else None


def _save_states(states: Any) -> None:
    """Two statements for any number of states: the new ones inserted, the rest updated."""
    states = list(states)
    new = [s for s in states if s.pk is None]
    known = [s for s in states if s.pk is not None]
    AlertState.objects.bulk_create(new, batch_size=1000)
    AlertState.objects.bulk_update(
        known, ["open", "last_failure_at", "held", "remind_at"], batch_size=1000
    )


def _alone() -> bool:
    """One router at a time (a transaction-level advisory lock on PostgreSQL, released at
    commit or on a crash): events of one connection are then always routed in order."""
    from django.db import connection as db

    if db.vendor != "postgresql":
        return True  # SQLite serialises writers anyway
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROUTE_LOCK_KEY])
        return cursor.fetchone()[0]


def _insert(messages: list[Message], stats: Counter) -> None:
    """Insert messages with their events in two statements. The events are claimed and marked
    routed in this same transaction, so no message is ever queued twice for one event."""
    if not messages:
        return
    Message.objects.bulk_create(messages, batch_size=1000)
    links = [
        Message.events.through(message_id=message.pk, event_id=event.pk)
        for message in messages
        for event in message._events  # type: ignore[attr-defined]
    ]
    Message.events.through.objects.bulk_create(links, batch_size=1000)
    stats["messages"] += len(messages)


def sweep_alerts(now: datetime | None = None) -> Counter:
    """Failures held back by a cool-down that has ended, and reminders that are due: each is
    sent only if the connection is still down."""
    now = now or timezone.now()
    stats: Counter = Counter()
    with transaction.atomic():
        held = (
            AlertState.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(held__isnull=False)
            .select_related("channel", "connection", "held")
        )
        for state in held:
            if state.last_failure_at and now - state.last_failure_at < timedelta(
                seconds=state.channel.cooldown
            ):
                continue
            category = state.held.category if state.held else Category.DISCONNECTED
            if not _still_hears(state.channel, state.connection, category):
                state.delete()
                continue
            if state.connection.status in _DOWN and state.channel.enabled:
                message = still_down_message(state.channel, state.held, state.connection, now)
                _insert([message], stats)
                state.open, state.last_failure_at = True, now
                state.remind_at = _next_reminder(state.channel, now)
            state.held = None
            state.save()
        due = (
            AlertState.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(remind_at__lte=now, open=True)
            .select_related("channel", "connection")
        )
        for state in due:
            if not _still_hears(state.channel, state.connection, Category.DISCONNECTED):
                state.delete()
                continue
            if state.connection.status in _DOWN and state.channel.enabled:
                _insert([reminder_message(state.channel, state.connection, state.remind_at)], stats)
                state.remind_at = _next_reminder(state.channel, now)
            else:
                state.remind_at = None
            state.save()
    return stats
