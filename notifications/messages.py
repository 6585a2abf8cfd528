"""What a message says: its title, its text and the webhook's JSON body (the schema is
``serializers.WebhookPayloadSerializer``, published in the OpenAPI document)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.utils import timezone

from connections.choices import Status
from connections.models import Connection
from connections.probing.reasons import of_summary

from .choices import Category, MessageKind
from .models import Channel, Event, Message

SCHEMA_VERSION = 1
_PAYLOAD_AT_MOST = 1000  # events in a group's webhook body (total_events says how many)
_LIST_AT_MOST = 50  # a group message names this many connections, then says how many more


def _status(value: str) -> str:
    return Status(value).label if value in Status.values else value or "(new)"


def event_line(event: Event, name: str) -> str:
    if event.category == Category.PARTIAL:
        return f"{name}: partial outage: {event.reason}" if event.reason else name
    line = f"{name}: {_status(event.from_status)} → {_status(event.to_status)}"
    return f"{line} ({event.reason})" if event.reason else line


def event_data(event: Event, connection: Connection) -> dict:
    return {
        "id": event.pk,
        "connection": {"id": connection.pk, "name": connection.name, "kind": connection.kind},
        "from": event.from_status,
        "to": event.to_status,
        "trigger": event.trigger,
        "category": event.category,
        "reason": event.reason,
        "at": event.created_at.isoformat(),
    }


def _message(
    channel: Channel,
    key: str,
    kind: str,
    title: str,
    body: str,
    events: list[tuple[Event, Connection]],
    now: datetime,
    connection: Connection | None = None,
    wait: int = 0,
) -> Message:
    message = Message(
        channel=channel,
        key=key,
        kind=kind,
        connection=connection,
        title=title[:300],
        body=body,
        payload={"events": [event_data(e, c) for e, c in events]},
        created_at=now,
        next_attempt_at=now + timezone.timedelta(seconds=wait),
    )
    message._events = [e for e, _ in events]  # type: ignore[attr-defined]
    return message


def event_message(
    channel: Channel, event: Event, connection: Connection, kind: str, now: datetime
) -> Message:
    if kind == MessageKind.RECOVERY:
        title = f"{connection.name} recovered: {_status(event.to_status)}"
    elif event.category == Category.AUTH:
        title = f"{connection.name}: authentication failure"
    elif event.category == Category.PARTIAL:
        over = event.reason.startswith("up again")
        title = f"{connection.name}: partial outage{' over' if over else ''}"
    else:
        title = f"{connection.name} is {_status(event.to_status)}"
    return _message(
        channel,
        f"event-{event.pk}-channel-{channel.pk}",
        kind,
        title,
        event_line(event, connection.name),
        [(event, connection)],
        now,
        connection,
        wait=channel.group_window,
    )


def still_down_message(
    channel: Channel, event: Event | None, connection: Connection, now: datetime
) -> Message:
    """A failure held back by the cool-down, sent when it ended with the connection still down."""
    said = (
        of_summary(connection.last_probe_class, connection.last_probe_error, connection.url)
        if connection.last_probe_error
        else None
    )
    reason = f" ({said.sentence})" if said else ""
    key = f"held-{event.pk if event else 0}-channel-{channel.pk}-{int(now.timestamp())}"
    return _message(
        channel,
        key,
        MessageKind.FAILURE,
        f"{connection.name} is still {_status(connection.status)}",
        f"{connection.name} is {_status(connection.status)}{reason}",
        [(event, connection)] if event else [],
        now,
        connection,
    )


def reminder_message(channel: Channel, connection: Connection, due: datetime) -> Message:
    since = connection.status_changed_at
    down_for = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
    return _message(
        channel,
        f"remind-{connection.pk}-channel-{channel.pk}-{int(due.timestamp())}",
        MessageKind.REMINDER,
        f"Reminder: {connection.name} is still {_status(connection.status)}",
        f"{connection.name} has been {_status(connection.status)}{down_for}.",
        [],
        due,
        connection,
    )


def group_message(channel: Channel, members: list[Message], now: datetime) -> Message:
    """One message for a burst: "12 connections disconnected: a, b, …" and every event."""
    events = [item for m in members for item in m.payload.get("events", [])]
    counts = Counter(e["to"] for e in events)
    scope = f" in {channel.environment.name}" if channel.environment_id else ""
    parts = [f"{n} {_status(to).lower()}" for to, n in counts.most_common()]
    title = f"{len(events)} changes{scope}: {', '.join(parts)}"
    if len(counts) == 1:
        (to,) = counts
        title = f"{len(events)} connections{scope} {_status(to).lower()}"
    lines = [m.body for m in members[:_LIST_AT_MOST]]
    if len(members) > _LIST_AT_MOST:
        lines.append(f"… and {len(members) - _LIST_AT_MOST} more")
    message = Message(
        channel=channel,
        key=f"group-{members[0].pk}-{members[-1].pk}-channel-{channel.pk}",
        kind=MessageKind.GROUP,
        title=title[:300],
        body="\n".join(lines),
        payload={"events": events[:_PAYLOAD_AT_MOST], "total_events": len(events)},
        created_at=now,
        next_attempt_at=now,
    )
    message._events = []  # type: ignore[attr-defined]
    return message


def webhook_body(message: Message, sent_at: datetime) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "id": message.key,
        "kind": message.kind,
        "title": message.title,
        "text": message.body,
        "sent_at": sent_at.isoformat(),
        "attempt": message.attempts,
        "channel": {"id": message.channel_id, "name": message.channel.name},
        "events": message.payload.get("events", []),
        "total_events": message.payload.get("total_events", len(message.payload.get("events", []))),
        "dependents": message.payload.get("dependents", []),
    }
