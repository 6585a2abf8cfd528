"""The beat schedule, kept in the database (django-celery-beat) and written after migrate."""

from django.conf import settings

PERIODIC_TASKS = {
    # name: (task, every N seconds)
    "Claim and probe due connections": ("connections.tasks.dispatch_due_probes", None),
    "Roll up old probe results": ("connections.tasks.prune_probe_history", 600),
    "Discover connected clusters": ("connections.tasks.discover_clusters", 300),
}


def ensure_periodic_tasks(**kwargs) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, (task, seconds) in PERIODIC_TASKS.items():
        every = seconds or max(1, round(settings.PROBE_TICK))
        schedule, _ = IntervalSchedule.objects.get_or_create(
            every=every, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": schedule, "enabled": True}
        )
