"""The beat schedule, kept in the database (django-celery-beat): each app writes its own
entries after migrate (its ``periodic.py``, connected in its ``apps.py``)."""

from django.conf import settings


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
