"""Celery entry points: thin, they call ``apply.apply_windows``."""

from celery import shared_task

from . import apply


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=330)
def apply_maintenance_windows() -> dict:
    """Bring every connection's maintenance in line with the windows active now. Safe to run
    twice or late: it compares state with time, it does not count ticks."""
    return dict(apply.apply_windows())
