"""Overview page cost at 1,000 and at 100,000 connections.

    python bench/overview.py [--sizes 1000 100000] [--repeat 7]

Fills the PostgreSQL database ``bench_overview`` with connections spread over states and 10
environments, each with its creation in the audit log three days ago, one in ten with a state
change in the last 24 hours, and 24 hourly probe roll-ups each. Times "/" through the Django
test client for the owner of everything (non-staff), staff and a viewer of one environment, and
the htmx fragment the page polls; prints the median time and the query count of each, and the
ratio of the largest size to the smallest. For comparison it also times the query a probe-based
uptime would need (the 24 h of roll-ups per environment, before adding any raw result).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta

from _harness import median_get
from _setup import ROOT, django_on_postgres

DB_NAME = "bench_overview"
ENVIRONMENTS = 10


def prepare() -> None:
    # Celery's Django fix-up puts the working directory first on sys.path: from bench/, this
    # file would then be imported as the overview app.
    os.chdir(ROOT)
    django_on_postgres(DB_NAME, ALLOWED_HOSTS="testserver", LOG_LEVEL="WARNING")


def fill(size: int) -> dict:
    """``size`` connections owned by 'bench' in 10 environments, with history and roll-ups."""
    from django.contrib.auth import get_user_model
    from django.db import connection as db

    from connections.choices import Status
    from connections.models import Connection
    from environments.models import Environment, EnvironmentMembership

    with db.cursor() as cursor:
        cursor.execute(
            "TRUNCATE connections_connectiontransition, connections_proberesult, "
            "connections_proberollup, environments_environment_connections, "
            "environments_environmentmembership, environments_environment, "
            "connections_connection CASCADE"
        )
    users = get_user_model().objects

    def user(name: str, **extra):
        return users.filter(username=name).first() or users.create_user(name, "x", **extra)

    owner, staff, viewer = user("bench"), user("bench-staff", is_staff=True), user("bench-viewer")
    environments = Environment.objects.bulk_create(
        Environment(name=f"env-{i:02d}", owner=owner) for i in range(ENVIRONMENTS)
    )
    EnvironmentMembership.objects.create(environment=environments[0], user=viewer)
    # mostly healthy, as a fleet is: 1 in 20 disconnected, 1 in 50 not found, a few others
    states = (
        [Status.CONNECTED] * 80
        + [Status.REGISTERED] * 5
        + [Status.DISCONNECTED] * 5
        + [Status.NOT_FOUND] * 2
        + [Status.MAINTENANCE] * 3
        + [Status.IGNORED] * 2
        + [Status.DISCOVERED] * 2
        + [Status.DELETED]
    )
    kinds = ["kubernetes", "prometheus", "grafana", "http", "remote_provider"]
    batch = 5000
    for start in range(0, size, batch):
        Connection.objects.bulk_create(
            Connection(
                name=f"conn-{i:06d}",
                kind=kinds[i % len(kinds)],
                url=f"http://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:9090",
                identity=f"bench|{i}",
                status=states[i % len(states)],
                managed=i % 2 == 0,
                owner=owner,
                last_probe_ok=i % 97 != 0,
                last_probe_error="" if i % 97 else "auth: HTTP 401",
                last_probe_class="" if i % 97 else "auth",
            )
            for i in range(start, min(start + batch, size))
        )
    statements = [
        "UPDATE connections_connection SET created_at = now() - interval '72 hours', "
        "status_changed_at = now() - interval '72 hours'",
        """INSERT INTO environments_environment_connections (environment_id, connection_id)
        SELECT (%s::bigint[])[1 + c.id %% %s], c.id FROM connections_connection c""",
        """INSERT INTO connections_connectiontransition
            (connection_id, from_status, to_status, trigger, reason, mentions, cause, created_at)
        SELECT c.id, '', c.status, 'user', '', '[]', '', now() - interval '72 hours'
        FROM connections_connection c""",
        # one in ten changed state within the day: lost, or back, h hours ago
        """INSERT INTO connections_connectiontransition
            (connection_id, from_status, to_status, trigger, reason, mentions, cause, created_at)
        SELECT c.id, CASE WHEN c.status = 'disconnected' THEN 'connected' ELSE 'disconnected'
            END, c.status, 'probe', 'unreachable after 3 consecutive failed probes', '[]',
            'connect', now() - make_interval(hours => (c.id %% 23)::int + 1)
        FROM connections_connection c WHERE c.id %% 10 = 0""",
        """UPDATE connections_connection
        SET status_changed_at = now() - make_interval(hours => (id %% 23)::int + 1)
        WHERE id %% 10 = 0""",
        """INSERT INTO connections_proberollup (connection_id, hour, ok_count, failed_count,
            latency_sum_ms, latency_count, latency_max_ms)
        SELECT c.id, date_trunc('hour', now()) - make_interval(hours => h), 118, 2,
               1200.0, 120, 40.0
        FROM connections_connection c CROSS JOIN generate_series(0, 23) AS h""",
        "ANALYZE",
    ]
    with db.cursor() as cursor:
        for sql in statements:
            params = [[e.pk for e in environments], ENVIRONMENTS] if "%s" in sql else []
            cursor.execute(sql, params)
    return {"owner": owner, "staff": staff, "viewer": viewer}


def probe_uptime_ms(user, repeat: int) -> float:
    """What the alternative costs: 24 h of roll-ups of the visible connections per environment."""
    from django.db import connection as db
    from django.utils import timezone

    from connections.models import Connection

    visible, params = Connection.objects.restrict(user).values("id").query.sql_with_params()
    sql = f"""
        SELECT m.environment_id, SUM(r.ok_count), SUM(r.failed_count)
        FROM connections_proberollup r
        JOIN environments_environment_connections m ON m.connection_id = r.connection_id
        WHERE r.hour >= %s AND r.connection_id IN ({visible})
        GROUP BY m.environment_id
    """
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with db.cursor() as cursor:
            cursor.execute(sql, [timezone.now() - timedelta(hours=24), *params])
            cursor.fetchall()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(users: dict, repeat: int) -> dict[str, tuple[float, int]]:
    from django.test import Client

    results = {}
    cases = [(persona, persona, {}) for persona in users]
    cases.append(("owner, htmx poll", "owner", {"HTTP_HX_REQUEST": "true"}))
    for label, persona, headers in cases:
        client = Client()
        client.force_login(users[persona])
        results[label] = median_get(client, "/", repeat, **headers)
    ms = probe_uptime_ms(users["owner"], repeat)
    results["(probe-based uptime query alone)"] = (ms, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    prepare()
    from django.conf import settings

    settings.DEBUG = False
    measured = {}
    for size in args.sizes:
        started = time.perf_counter()
        users = fill(size)
        print(f"filled {size} connections in {time.perf_counter() - started:.1f}s")
        measured[size] = measure(users, args.repeat)
        for label, (ms, queries) in measured[size].items():
            print(f"  {size:>7} {label:<32} median {ms:8.1f} ms  {queries:2d} queries")
    small, large = min(args.sizes), max(args.sizes)
    for label in measured[small]:
        (a, qa), (b, qb) = measured[small][label], measured[large][label]
        print(f"{label:<32} {large}/{small}: time ratio {b / a:6.2f}, queries {qa} -> {qb}")


if __name__ == "__main__":
    main()
