"""Table page cost at 1,000, 100,000 and 1,000,000 connections.

    python bench/table.py [--sizes 1000 100000 1000000] [--repeat 7]

Fills the PostgreSQL database ``bench_table`` with connections spread over states, kinds and
environments (each with its history and 30 probe results for the heartbeat bars), then times
the connections table through the Django test client as a signed-in (non-staff) user: the first
page, a filtered page (status + kind), a deep page (the one after the middle row, reached as
a user reaches it, by the pager's cursor: keyset pagination, connections/listing.py), the page
sorted by the 24 h uptime (worst first), and a search (a name fragment matching a few rows,
which also looks for a tag of that name). Every connection has uptime figures (some none) and
every tenth a tag. On a checkout without uptime columns or tags those steps of the fill are
skipped (the "before" of a comparison) and the uptime sort is the default order.
Prints the median time and the query count of each, and the ratio of each size to the smallest.
Target: the same query count at every size and page, and a ratio of at most 2.
"""

from __future__ import annotations

import argparse
import time

from _harness import median_get
from _setup import django_on_postgres

DB_NAME = "bench_table"
PER_PAGE = 50


def prepare() -> None:
    django_on_postgres(DB_NAME, ALLOWED_HOSTS="testserver", LOG_LEVEL="WARNING")


def fill(size: int):
    """``size`` connections owned by 'bench', in 20 environments, each with a history row."""
    from django.contrib.auth import get_user_model
    from django.db import connection as db

    from connections.choices import Status
    from connections.models import Connection, ConnectionTransition
    from environments.models import Environment

    with db.cursor() as cursor:
        cursor.execute(
            "TRUNCATE connections_connectiontransition, connections_proberesult, "
            "connections_proberollup, environments_environment_connections, "
            "environments_environmentmembership, environments_environment, "
            "connections_connection CASCADE"
        )
    users = get_user_model().objects
    user = users.filter(username="bench").first() or users.create_user("bench", password="x")
    environments = Environment.objects.bulk_create(
        Environment(name=f"env-{i:02d}", owner=user) for i in range(20)
    )
    states = [s for s in Status.values if s != Status.DELETED] * 3 + [Status.DELETED]
    kinds = ["kubernetes", "prometheus", "grafana", "http", "remote_provider"]
    batch = 5000
    for start in range(0, size, batch):
        created = Connection.objects.bulk_create(
            Connection(
                name=f"conn-{i:06d}",
                kind=kinds[i % len(kinds)],
                url=f"http://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:9090",
                identity=f"bench|{i}",
                status=states[i % len(states)],
                managed=i % 2 == 0,
                owner=user,
            )
            for i in range(start, min(start + batch, size))
        )
        ConnectionTransition.objects.bulk_create(
            ConnectionTransition(connection=c, from_status="", to_status=c.status, trigger="user")
            for c in created
        )
        Environment.connections.through.objects.bulk_create(
            Environment.connections.through(
                environment=environments[c.pk % len(environments)], connection=c
            )
            for c in created
        )
    with db.cursor() as cursor:
        # the heartbeat bars' history: 30 results for every connection, except at sizes above
        # 100,000, where the rows the pages measured can show (the first 20,000 and the 20,000
        # around the middle, by name) have 30 and the others 3 (the index still holds them all)
        cursor.execute(
            "INSERT INTO connections_proberesult"
            " (connection_id, checked_at, ok, latency_ms, status_code, error_class, error)"
            " SELECT c.id, now() - n * interval '30 seconds', (c.id + n) %% 7 <> 0,"
            "  5 + (n %% 11), 200, '', ''"
            " FROM (SELECT id, row_number() OVER (ORDER BY name, id) AS rank"
            "       FROM connections_connection) c, generate_series(1, 30) n"
            " WHERE %s <= 100000 OR n <= 3 OR c.rank < 20000"
            "  OR abs(c.rank - %s / 2) < 10000",
            [size, size],
        )
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'connections_connection'"
            " AND column_name = 'uptime_24h'"
        )
        if cursor.fetchone():  # the figures the uptime refresh keeps, spread, a few without
            cursor.execute(
                "UPDATE connections_connection SET"
                " uptime_24h = CASE WHEN id %% 50 = 0 THEN NULL ELSE 100 - (id %% 97) / 10.0 END,"
                " uptime_7d = CASE WHEN id %% 50 = 0 THEN NULL ELSE 100 - (id %% 89) / 20.0 END,"
                " uptime_30d = CASE WHEN id %% 50 = 0 THEN NULL ELSE 100 - (id %% 83) / 30.0 END,"
                " latency_mean_ms = CASE WHEN id %% 50 = 0 THEN NULL ELSE 5 + id %% 40 END",
                [],  # no parameters, but formatted: %% is %
            )
        cursor.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'connections_tag'"
        )
        if cursor.fetchone():  # every tenth connection tagged team=web, every hundredth prod
            cursor.execute("TRUNCATE connections_tag CASCADE")
            cursor.execute("INSERT INTO connections_tag (name) VALUES ('team=web'), ('prod')")
            cursor.execute(
                "INSERT INTO connections_connection_tags (connection_id, tag_id)"
                " SELECT c.id, t.id FROM connections_connection c JOIN connections_tag t"
                " ON (t.name = 'team=web' AND c.id %% 10 = 0)"
                " OR (t.name = 'prod' AND c.id %% 100 = 0)",
                [],
            )
        cursor.execute("ANALYZE")
    return user


def middle_cursor(live: int) -> str:
    """The pager's cursor for the page after the middle row (what Next leads to)."""
    from connections.listing import cursor_of
    from connections.models import Connection

    middle = Connection.objects.order_by("name", "pk")[live // 2]
    return cursor_of(middle, ["name"]).encode()


def measure(user, size: int, repeat: int) -> dict[str, tuple[float, int]]:
    from django.test import Client

    client = Client()
    client.force_login(user)
    live = size - size // 22  # deleted ones are hidden
    pages = {
        "first page": {},
        "filtered page": {"status": "connected", "kind": "prometheus"},
        "deep page": {"after": middle_cursor(live)},
        "uptime sort": {"sort": "uptime_24h"},
        "search": {"q": f"conn-{size // 2:06d}"[:-1]},  # ten names (and no tag) match
    }
    results = {}
    for label, params in pages.items():
        params = {**params, "per_page": PER_PAGE}
        results[label] = median_get(client, "/connections/", repeat, params)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    prepare()
    from django.conf import settings

    settings.DEBUG = False
    measured = {}
    for size in args.sizes:
        started = time.perf_counter()
        user = fill(size)
        print(f"filled {size} connections in {time.perf_counter() - started:.1f}s")
        measured[size] = measure(user, size, args.repeat)
        for label, (ms, queries) in measured[size].items():
            print(f"  {size:>7} {label:<14} median {ms:7.1f} ms  {queries:2d} queries")
    small = min(args.sizes)
    for large in sorted(args.sizes)[1:]:
        for label in measured[small]:
            (a, qa), (b, qb) = measured[small][label], measured[large][label]
            verdict = "met" if qa == qb and b / a <= 2 else "MISSED"
            print(
                f"{label:<14} {large}/{small}: time ratio {b / a:.2f}, queries {qa} -> {qb} "
                f"(target: same queries, ratio <= 2: {verdict})"
            )


if __name__ == "__main__":
    main()
