"""Growth: do the tables stay bounded over weeks of probing, and is /metrics cheap at the end?

    python bench/growth.py [--connections 10000] [--interval 30] [--days 30]
                           [--rollup-retention-days 7] [--scraped 100] [--step 600]

Simulates ``--connections`` connections probed every ``--interval`` seconds for ``--days``
days in the PostgreSQL database ``bench_growth``. Bulk inserts stand in for time: every
``--step`` simulated seconds (beat's PRUNE_INTERVAL) the step's probe results are inserted in
one statement, and then the real pruning runs as beat would run it
(connections.probing.history.prune with the simulated time, resumed at once while it has not
finished, as the task does). Alongside:

- ``--scraped`` connected Prometheus/Grafana connections get their samples every 60 s
  (4 per scrape) and the real connections.probing.scrape.scrape_connected runs once per
  simulated day (its targets refuse: it only prunes; beat runs it every minute, with the same
  result at the day's end);
- every simulated day, ``--flaps`` connections go down and up again (two transitions each) and
  ``--deletes`` connections are deleted through the lifecycle (their tombstones keep their
  history, their data is purged) and as many new ones added;
- after every step, each churned table whose dead rows pass autovacuum's own threshold
  (autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor × rows) is vacuumed, standing in
  for the autovacuum that a compressed month gives no time to run.

Prints, per simulated day, the rows and bytes (pg_total_relation_size: table, indexes, TOAST)
of each table, the rows folded and expired that day and the longest pruning run; at the end
the time of GET /metrics (median of 7, with a bearer token) and its query count. Target: every
table flat once its retention is reached, and /metrics under 100 ms.

The defaults are the issue's fleet: 10,000 connections, every 30 s, for 30 days: 864 million
probe results inserted and folded. That takes hours on a small machine; ``--connections`` or
``--interval`` scale the intake down (the steady-state sizes of the roll-ups and of the raw
results per connection do not depend on the interval).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from _setup import django_on_postgres

DB_NAME = "bench_growth"
TOKEN = "bench-growth-metrics-token"
TABLES = [
    ("raw results", "connections_proberesult"),
    ("roll-ups", "connections_proberollup"),
    ("samples", "connections_metricsample"),
    ("transitions", "connections_connectiontransition"),
    ("connections", "connections_connection"),
]
KINDS = ["kubernetes", "http", "remote_provider"]
SAMPLE_NAMES = {
    "prometheus": ["targets_up", "targets_down", "active_targets", "head_series"],
    "grafana": ["version_major", "dashboards", "datasources", "health"],
}


def prepare(args) -> None:
    django_on_postgres(
        DB_NAME,
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="WARNING",
        METRICS_TOKEN=TOKEN,
        PROBE_ROLLUP_RETENTION=str(round(args.rollup_retention_days * 86400)),
    )


def add_connections(owner, count: int, scraped: int, first: int, dead_url: str) -> None:
    """``scraped`` connected Prometheus/Grafana (their scrapes refused), then the rest connected
    of the other kinds; each with the transition that made it."""
    from connections.models import Connection, ConnectionTransition

    batch = 5000
    for start in range(first, first + count, batch):
        made = Connection.objects.bulk_create(
            Connection(
                name=f"conn-{i:06d}",
                kind=("prometheus", "grafana")[i % 2] if i < scraped else KINDS[i % len(KINDS)],
                url=f"{dead_url}/{i}"
                if i < scraped
                else f"http://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:8080/",
                identity=f"bench|{i}",
                status="connected",
                owner=owner,
            )
            for i in range(start, min(start + batch, first + count))
        )
        ConnectionTransition.objects.bulk_create(
            ConnectionTransition(connection=c, to_status="connected", trigger="user") for c in made
        )


# One step of probe results: every live connection, every `interval` seconds from its own
# offset; 1% failed (no latency), latencies skewed towards the fast end.
INTAKE_SQL = """
INSERT INTO connections_proberesult
    (connection_id, checked_at, ok, latency_ms, status_code, error_class, error)
SELECT c.id, %(t0)s + make_interval(secs => g * %(interval)s + c.id %% %(interval)s),
    NOT failed, CASE WHEN failed THEN NULL ELSE 2 + 1500 * power(random(), 4) END,
    CASE WHEN failed THEN NULL ELSE 200 END,
    CASE WHEN failed THEN 'timeout' ELSE '' END, ''
FROM connections_connection c
CROSS JOIN generate_series(0, %(n)s - 1) g
CROSS JOIN LATERAL (SELECT random() < 0.01 AS failed) f
WHERE c.status = 'connected'
"""

SAMPLES_SQL = """
INSERT INTO connections_metricsample (connection_id, name, value, scraped_at)
SELECT c.id, n.name, round((random() * 100)::numeric, 1)::float, %(t0)s + make_interval(mins => g)
FROM connections_connection c
CROSS JOIN generate_series(0, %(n)s - 1) g
JOIN (SELECT unnest(%(prom)s::text[]) AS name, 'prometheus' AS kind
      UNION ALL SELECT unnest(%(graf)s::text[]), 'grafana') n ON n.kind = c.kind
WHERE c.status = 'connected' AND c.kind IN ('prometheus', 'grafana')
"""


VACUUM_DUE_SQL = """
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.relname = ANY(%s) AND s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::int
    + current_setting('autovacuum_vacuum_scale_factor')::float * greatest(c.reltuples, 0)
"""


def autovacuum(tables: list[str]) -> int:
    """VACUUM (ANALYZE) the tables autovacuum would have vacuumed by now; how many."""
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(VACUUM_DUE_SQL, [tables])
        due = [row[0] for row in cursor.fetchall()]
        for table in due:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    return len(due)


def sizes() -> dict[str, tuple[int, int]]:
    from django.db import connection as db

    found = {}
    with db.cursor() as cursor:
        for label, table in TABLES:
            cursor.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")
            found[label] = cursor.fetchone()
    return found


def human(n: float) -> str:
    for unit in ("", "k", "M", "G"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}T"


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} kB"


def churn(day: int, args, owner, dead_url: str, now) -> None:
    """A day's flaps (two transitions each), deletes (through the lifecycle) and additions."""
    from connections import lifecycle
    from connections.models import Connection, ConnectionTransition

    live = list(
        Connection.objects.filter(status="connected")
        .order_by("id")
        .values_list("id", flat=True)[args.scraped :]
    )
    flapping = live[(day * args.flaps) % max(1, len(live)) :][: args.flaps]
    ConnectionTransition.objects.bulk_create(
        ConnectionTransition(
            connection_id=pk, from_status=a, to_status=b, trigger="probe", created_at=now
        )
        for pk in flapping
        for a, b in (("connected", "disconnected"), ("disconnected", "connected"))
    )
    for conn in Connection.objects.filter(pk__in=live[-args.deletes :]) if args.deletes else []:
        lifecycle.transition(conn, "deleted", trigger="user", user=owner, reason="bench")
    total = Connection.all_objects.count()
    add_connections(owner, args.deletes, 0, total, dead_url)


def measure_metrics(repeat: int = 7) -> tuple[float, float, int, list[tuple[float, str]]]:
    from django.db import connection as db
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    header = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert client.get("/metrics", **header).status_code == 200  # warm up (and a cold cache)
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(db) as queries:
            started = time.perf_counter()
            response = client.get("/metrics", **header)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
    per_query = [(float(q["time"]) * 1000, q["sql"][:90]) for q in queries.captured_queries]
    return statistics.median(times) * 1000, min(times) * 1000, len(queries), per_query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--interval", type=int, default=30, help="seconds between probes")
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--rollup-retention-days", type=float, default=7)
    parser.add_argument("--scraped", type=int, default=100)
    parser.add_argument("--flaps", type=int, default=100, help="connections flapping per day")
    parser.add_argument("--deletes", type=int, default=10, help="connections deleted per day")
    parser.add_argument("--step", type=int, default=600, help="seconds between pruning runs")
    args = parser.parse_args()
    assert args.step % args.interval == 0 and 86400 % args.step == 0
    prepare(args)

    import socket

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection as db
    from django.utils import timezone

    from connections.probing import history
    from connections.probing.scrape import scrape_connected

    settings.DEBUG = False
    with socket.socket() as sock:  # a loopback port nothing listens on: scrapes are refused
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    owner = get_user_model().objects.create_user("bench", password="x")
    add_connections(owner, args.connections, args.scraped, 0, dead_url)
    # The probe counters /metrics reads are added to as results are recorded (one row per kind
    # and outcome, whatever the history); the bulk intake below bypasses that path, so they are
    # filled once here, with a result of every kind and outcome.
    from connections.models import ProbeCounter

    ProbeCounter.add(
        [(k, ok, 12.5 if ok else None) for k in KINDS + list(SAMPLE_NAMES) for ok in (True, False)]
    )

    steps_per_day = 86400 // args.step
    total_steps = round(args.days * steps_per_day)
    end = timezone.now().replace(microsecond=0)
    start = end - timedelta(seconds=total_steps * args.step)
    print(
        f"{args.connections} connections every {args.interval}s for {args.days:g} days "
        f"({args.connections * 86400 // args.interval:,} results a day), pruned every "
        f"{args.step}s; keep {settings.PROBE_HISTORY_KEEP} raw per connection, roll-ups "
        f"{settings.PROBE_ROLLUP_RETENTION / 86400:g} days, samples "
        f"{settings.SCRAPE_RETENTION / 86400:g} days; batches of {settings.PRUNE_BATCH_SIZE}"
    )
    header = "day  " + "".join(f"{label:>24}" for label, _ in TABLES)
    print(header + "    folded   expired  longest run  vacuums  /metrics   wall")
    with db.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
    day_folded = day_expired = vacuums = 0
    longest = 0.0
    day_started = bench_started = time.perf_counter()
    for step in range(total_steps):
        t0 = start + timedelta(seconds=step * args.step)
        t1 = t0 + timedelta(seconds=args.step)
        with db.cursor() as cursor:
            # the intake stands in for the probe engine: no FK check per row (bench speed)
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(
                INTAKE_SQL, {"t0": t0, "interval": args.interval, "n": args.step // args.interval}
            )
            cursor.execute(
                SAMPLES_SQL,
                {
                    "t0": t0,
                    "n": args.step // 60,
                    "prom": SAMPLE_NAMES["prometheus"],
                    "graf": SAMPLE_NAMES["grafana"],
                },
            )
            cursor.execute("SET session_replication_role = DEFAULT")
        resume, run = None, 0
        while run == 0 or resume is not None:  # a run, then its continuations (as the task)
            started = time.perf_counter()
            report = history.prune(now=t1, resume=resume)
            longest = max(longest, time.perf_counter() - started)
            day_folded += report["folded"]
            day_expired += report["expired"]
            resume, run = report["resume"], run + 1
        if (step + 1) % steps_per_day == 0:
            day = (step + 1) // steps_per_day
            churn(day, args, owner, dead_url, t1)
            scrape_connected(now=t1)
        vacuums += autovacuum([table for _, table in TABLES[:4]])
        if (step + 1) % steps_per_day == 0:
            scrape_ms = measure_metrics(repeat=1)[0]
            found = sizes()
            cells = "".join(f"{human(n):>9} rows {mb(b):>9}" for n, b in found.values())
            wall = time.perf_counter() - day_started
            print(
                f"{day:>3}  {cells}  {human(day_folded):>8}  {human(day_expired):>8}"
                f"  {longest:9.2f} s  {vacuums:7d}  {scrape_ms:5.0f} ms  {wall:4.0f} s",
                flush=True,
            )
            day_folded = day_expired = vacuums = 0
            longest = 0.0
            day_started = time.perf_counter()
    print(f"simulated in {time.perf_counter() - bench_started:.0f} s")

    median, best, queries, per_query = measure_metrics()
    verdict = "met" if median < 100 else "MISSED"
    print(
        f"GET /metrics: median {median:.1f} ms, best {best:.1f} ms, {queries} queries "
        f"(target under 100 ms: {verdict})"
    )
    for ms, sql in per_query:
        print(f"  {ms:8.1f} ms  {sql}")


if __name__ == "__main__":
    main()
