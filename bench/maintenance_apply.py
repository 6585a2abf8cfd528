"""Maintenance windows: what one apply_windows run costs at fleet scale.

    python bench/maintenance_apply.py [--connections 10000] [--windows 1000] [--runs 7]

In the PostgreSQL database ``bench_maintenance``: ``--connections`` connected connections in
environments of 100, and ``--windows`` windows (recurring weekly in three timezones, and
one-off), each scoped to 10 connections, one environment, or (one in fifty) a kind inside
an environment. Prints the time (median of ``--runs``) and the queries of one run:

- steady state: the windows active now have already been applied (the beat tick's usual case);
- at a start instant: a window over 10 connections starts, then one over 1,000 (10 environments);
- at their end instant.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from _setup import django_on_postgres

DB_NAME = "bench_maintenance"
TIMEZONES = ["Europe/Amsterdam", "Australia/Perth", "America/Los_Angeles"]


def build(args) -> None:
    from django.contrib.auth import get_user_model

    from connections.models import Connection
    from environments.models import Environment
    from maintenance.models import Window

    rng = random.Random(14)
    owner = get_user_model().objects.create_user("bench", password="bench-pw-123")
    made = Connection.objects.bulk_create(
        (
            Connection(
                name=f"conn-{i:06d}",
                kind=("http", "prometheus", "grafana")[i % 3],
                url=f"http://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:8080/",
                identity=f"bench|{i}",
                status="connected",
                owner=owner,
            )
            for i in range(args.connections)
        ),
        batch_size=5000,
    )
    environments = Environment.objects.bulk_create(
        Environment(name=f"env-{i}", owner=owner) for i in range(len(made) // 100 or 1)
    )
    Environment.connections.through.objects.bulk_create(
        (
            Environment.connections.through(
                environment_id=environments[i // 100 % len(environments)].pk, connection_id=c.pk
            )
            for i, c in enumerate(made)
        ),
        batch_size=5000,
    )
    now = datetime.now(UTC)
    windows = []
    for i in range(args.windows):
        if i % 5 == 0:  # one-off, some of them active now
            start = now + timedelta(hours=rng.uniform(-48, 48))
            fields = {"kind": "one_off", "starts_at": start, "ends_at": start + timedelta(hours=2)}
        else:
            fields = {
                "kind": "recurring",
                "weekdays": sorted(rng.sample(range(7), rng.randint(1, 3))),
                "start_time": f"{rng.randrange(24):02d}:{rng.choice((0, 15, 30, 45)):02d}",
                "duration_minutes": rng.choice((30, 60, 120, 240)),
            }
        windows.append(
            Window(
                name=f"window-{i}",
                owner=owner,
                timezone=TIMEZONES[i % 3],
                environment=environments[i % len(environments)] if i % 50 == 7 else None,
                kinds=["prometheus"] if i % 50 == 7 else [],
                created_at=now - timedelta(days=30),
                probed_end_at=now - timedelta(days=30),
                **fields,
            )
        )
    windows = Window.objects.bulk_create(windows)
    direct, scoped = [], []
    for i, w in enumerate(windows):
        if w.kinds:
            continue
        if i % 3 == 0:
            scoped.append(
                Window.environments.through(
                    window_id=w.pk, environment_id=environments[i % len(environments)].pk
                )
            )
        else:
            direct += [
                Window.connections.through(window_id=w.pk, connection_id=c.pk)
                for c in rng.sample(made, 10)
            ]
    Window.connections.through.objects.bulk_create(direct, batch_size=5000)
    Window.environments.through.objects.bulk_create(scoped, batch_size=5000)
    print(f"{len(made)} connections, {len(environments)} environments, {len(windows)} windows")


def measure(label: str, now: datetime, runs: int = 1) -> dict:
    from django.db import connection as db

    from maintenance.apply import apply_windows

    times, stats, queries = [], {}, 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    for _ in range(runs):
        queries = 0
        with db.execute_wrapper(count):
            started = time.perf_counter()
            stats = apply_windows(now)
            times.append(time.perf_counter() - started)
    moved = stats.get("entered", 0) + stats.get("left", 0)
    print(
        f"{label:<38} {statistics.median(times) * 1000:8.1f} ms  {queries:5d} queries  "
        f"{moved:5d} moved  ({stats.get('active_windows', 0)} windows active)"
    )
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--windows", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    django_on_postgres(DB_NAME, LOG_LEVEL="WARNING")
    build(args)

    from connections.models import Connection
    from environments.models import Environment
    from maintenance.apply import apply_windows
    from maintenance.models import Window

    now = datetime.now(UTC)
    measure("first run (the active windows enter)", now)
    measure("steady state", now, args.runs)
    in_maintenance = Connection.objects.filter(status="maintenance").count()
    print(f"  ({in_maintenance} connections in scheduled maintenance)")

    owner = Window.objects.first().owner
    start, end = now + timedelta(minutes=10), now + timedelta(minutes=70)
    free = list(
        Connection.objects.filter(status="connected")
        .order_by("-pk")
        .values_list("pk", flat=True)[:10]
    )
    small = Window.objects.create(
        name="small", owner=owner, kind="one_off", starts_at=start, ends_at=end
    )
    small.connections.set(free)
    apply_windows(start - timedelta(seconds=1))  # the other windows' changes until then
    measure("start instant, a window over 10", start)
    measure("steady state after it", start, args.runs)
    big_start, big_end = start + timedelta(minutes=1), end + timedelta(minutes=1)
    big = Window.objects.create(
        name="big", owner=owner, kind="one_off", starts_at=big_start, ends_at=big_end
    )
    big.environments.set(Environment.objects.order_by("pk")[:10])
    apply_windows(big_start - timedelta(seconds=1))
    measure("start instant, a window over 1,000", big_start)
    measure("steady state after it", big_start, args.runs)
    apply_windows(end - timedelta(seconds=1))
    measure("end instant of the small one", end)
    apply_windows(big_end - timedelta(seconds=1))
    measure("end instant of the big one", big_end)


if __name__ == "__main__":
    main()
