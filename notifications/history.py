"""What notifications keep, and for how long: events (the notification center's list),
messages and their delivery attempts for ``NOTIFY_EVENT_RETENTION`` (30 days), deleted in
batches of ``PRUNE_BATCH_SIZE`` (each its own statement and transaction). Messages still
queued or sending are never pruned; an event is kept while a pending message holds it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .choices import MessageStatus
from .models import AlertState, Delivery, Event, Message

_PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)


def _delete_in_batches(queryset, batch: int) -> int:
    total = 0
    while True:
        pks = list(queryset.order_by().values_list("pk", flat=True)[:batch])
        if not pks:
            return total
        deleted, _ = queryset.model.objects.filter(pk__in=pks).delete()
        total += len(pks)
        if len(pks) < batch:
            return total


def prune_notifications(now: datetime | None = None) -> Counter:
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.NOTIFY_EVENT_RETENTION)
    batch = max(1, min(settings.PRUNE_BATCH_SIZE, 10_000))
    stats: Counter = Counter()
    stats["deliveries"] = _delete_in_batches(
        Delivery.objects.filter(attempted_at__lt=cutoff), batch
    )
    old_messages = Message.objects.filter(created_at__lt=cutoff).exclude(status__in=_PENDING)
    stats["messages"] = _delete_in_batches(old_messages, batch)
    held = Message.events.through.objects.filter(message__status__in=_PENDING).values("event_id")
    kept_by_alerts = AlertState.objects.filter(held__isnull=False).values("held_id")
    old_events = (
        Event.objects.filter(created_at__lt=cutoff, routed_at__isnull=False)
        .exclude(pk__in=held)
        .exclude(pk__in=kept_by_alerts)
    )
    stats["events"] = _delete_in_batches(old_events, batch)
    return stats
