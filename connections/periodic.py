"""The connections app's beat entries (core.periodic writes them after migrate)."""

from core.periodic import write_schedule

# name: (task, the setting that holds its interval in seconds)
PERIODIC_TASKS = {
    "Claim and probe due connections": ("connections.tasks.dispatch_due_probes", "PROBE_TICK"),
    "Roll up old probe results": ("connections.tasks.prune_probe_history", "PRUNE_INTERVAL"),
    "Refresh uptime and latency": ("connections.tasks.refresh_uptime", "UPTIME_INTERVAL"),
    "Discover connected clusters": ("connections.tasks.discover_clusters", "DISCOVERY_INTERVAL"),
    "Scrape connected Prometheus and Grafana": (
        "connections.tasks.scrape_connected",
        "SCRAPE_INTERVAL",
    ),
}


def ensure_periodic_tasks(**kwargs) -> None:
    write_schedule(PERIODIC_TASKS)
