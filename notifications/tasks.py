"""Celery entry points: thin, they call the routing and the delivery."""

from celery import shared_task
from django.conf import settings

from . import delivery, history, routing


@shared_task(
    ignore_result=True,
    soft_time_limit=settings.NOTIFY_TASK_TIME_LIMIT,
    time_limit=settings.NOTIFY_TASK_TIME_LIMIT + 30,
)
def notify() -> dict:
    """Route new events (until none are left), sweep held failures and reminders, then send
    what is due. Overlapping runs are safe: every claim skips what another run holds."""
    stats = dict(routing.release_deferred())
    while True:
        routed = routing.route_events()
        for key, n in routed.items():
            stats[key] = stats.get(key, 0) + n
        if routed.get("events", 0) < routing.ROUTE_BATCH:
            break
    stats.update(routing.sweep_alerts())
    stats.update(delivery.deliver_due())
    return stats


@shared_task(ignore_result=True, soft_time_limit=540, time_limit=600)
def prune_notifications() -> dict:
    """Events, messages and delivery attempts older than NOTIFY_EVENT_RETENTION."""
    return dict(history.prune_notifications())
