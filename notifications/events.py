"""The outbox: an ``Event`` per transition, written in the transition's own transaction."""

from __future__ import annotations

from typing import Any

from connections.choices import Status, Trigger

from .choices import Category

_DOWN = (Status.DISCONNECTED, Status.NOT_FOUND)
_UP = (Status.CONNECTED, Status.REGISTERED)


def categorize(from_status: str, to_status: str, trigger: str, cause: str = "") -> str:
    """What a change means to the people who own the connection (``cause``: the stored class
    of what caused it, "auth" for refused credentials)."""
    if trigger == Trigger.USER:
        return Category.ADMINISTRATIVE
    if to_status == Status.DISCONNECTED:
        return Category.AUTH if cause == "auth" else Category.DISCONNECTED
    if to_status == Status.NOT_FOUND:
        return Category.NOT_FOUND
    if to_status in _UP and from_status in _DOWN:
        return Category.RECOVERY
    return Category.LIFECYCLE


def record_event(instance: Any) -> None:
    """A transition's hook (``connections.hooks.on_transition``): inside the transaction that
    recorded it, so the event exists exactly when the transition does."""
    from .models import Event

    Event.objects.create(
        transition=instance,
        connection_id=instance.connection_id,
        from_status=instance.from_status,
        to_status=instance.to_status,
        trigger=instance.trigger,
        category=categorize(
            instance.from_status, instance.to_status, instance.trigger, instance.cause
        ),
        reason=instance.reason,
        mentions=instance.mentions,
        user_id=instance.user_id,
        created_at=instance.created_at,
    )


PARTIAL_OVER = "up again in every location that answered"


def record_partial(connection: Any, began: bool, note: str) -> None:
    """A partial outage's hook (``connections.hooks.on_partial``): its beginning or end is an
    event of its own, in the transaction that records the round (no state changes). Told once
    each: a partial outage that grows into a failed round and back is still the one begun."""
    from django.utils import timezone

    from .models import Event

    last = (
        Event.objects.filter(connection_id=connection.pk, category=Category.PARTIAL)
        .order_by("-pk")
        .values_list("reason", flat=True)
        .first()
    )
    told_open = last is not None and last != PARTIAL_OVER
    if began == told_open:  # begun while one is told open, or ended while none is: nothing new
        return
    Event.objects.create(
        transition=None,
        connection_id=connection.pk,
        from_status=connection.status,
        to_status=connection.status,
        trigger=Trigger.PROBE,
        category=Category.PARTIAL,
        reason=note if began else PARTIAL_OVER,
        created_at=timezone.now(),
    )
