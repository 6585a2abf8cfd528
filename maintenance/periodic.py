"""The maintenance windows' beat entry, written after migrate like the connections' own."""

from core.periodic import write_schedule

PERIODIC_TASKS = {
    "Apply maintenance windows": (
        "maintenance.tasks.apply_maintenance_windows",
        "MAINTENANCE_TICK",
    ),
}


def ensure_periodic_tasks(**kwargs) -> None:
    write_schedule(PERIODIC_TASKS)
