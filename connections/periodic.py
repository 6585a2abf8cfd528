"""The beat schedule, kept in the database (django-celery-beat) and written after migrate."""

from django.conf import settings

# name: (task, the setting that holds its interval in seconds)
PERIODIC_TASKS = {
    "Claim and probe due connections": ("connections.tasks.dispatch_due_probes", "PROBE_TICK"),
    "Roll up old probe results": ("connections.tasks.prune_probe_history", "PRUNE_INTERVAL"),
    "Discover connected clusters": ("connections.tasks.discover_clusters", "DISCOVERY_INTERVAL"),
    "Scrape connected Prometheus and Grafana": (
        "connections.tasks.scrape_connected",
        "SCRAPE_INTERVAL",
    ),
}


def ensure_periodic_tasks(**kwargs) -> None:
    write_schedule(PERIODIC_TASKS)


def write_schedule(tasks: dict[str, tuple[str, str]]) -> None:
    """Create or update each named beat entry (other apps call this with their own)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, (task, setting) in tasks.items():
        every = max(1, round(getattr(settings, setting)))
        schedule, _ = IntervalSchedule.objects.get_or_create(
            every=every, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": schedule, "enabled": True}
        )
