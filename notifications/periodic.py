"""The notifications' beat entry, written after migrate like the connections' own."""

from core.periodic import write_schedule

PERIODIC_TASKS = {
    "Route and deliver notifications": ("notifications.tasks.notify", "NOTIFY_TICK"),
    "Prune old notifications": ("notifications.tasks.prune_notifications", "PRUNE_INTERVAL"),
}


def ensure_periodic_tasks(**kwargs) -> None:
    write_schedule(PERIODIC_TASKS)
