"""Bounded probe history: the newest raw results per connection, older ones rolled up per hour,
and roll-ups kept for a bounded time.

- Raw results beyond the newest ``PROBE_HISTORY_KEEP`` of each connection are folded into their
  connection's hourly ``ProbeRollup`` rows and deleted, in one set-based statement per batch
  (on PostgreSQL: ``DELETE … RETURNING`` feeding ``INSERT … SELECT … GROUP BY connection, hour
  … ON CONFLICT DO UPDATE``, so a batch is folded and deleted atomically, exactly once, however
  many runs overlap). Results that share the timestamp of the ``keep``-th newest are all kept.
- Roll-ups whose hour started more than ``PROBE_ROLLUP_RETENTION`` seconds ago are deleted.

Both walk the connections in id order, a chunk at a time, and each statement touches at most
``PRUNE_BATCH_SIZE`` rows (one short transaction each). A run goes on until the walk is done or
its wall-clock budget (``PRUNE_TIME_BUDGET``) is spent; it then says where the next run resumes
(the task queues that run at once), so every connection is reached however large the backlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from connections.models import ProbeResult, ProbeRollup
from core.db import exclusive

# Connections looked at per statement: their cut-offs are index lookups, cheap next to the rows.
CONNECTIONS_PER_STATEMENT = 1000
# SQLite's fallback passes ids as parameters: stay far below its variable limit.
PORTABLE_BATCH_MAX = 900
# pg_try_advisory_lock key: one pruning run at a time (a second one returns at once).
LOCK_KEY = 0x6D657368_70726E  # "meshprn"

# A step takes the last connection id done and returns (rows, next id, more to do).
Step = Callable[[int], tuple[int, int, bool]]
FOLD, EXPIRE = "fold", "expire"


def prune(
    now: datetime | None = None,
    *,
    keep: int | None = None,
    batch: int | None = None,
    budget: float | None = None,
    resume: list | tuple | None = None,
) -> dict:
    """One pruning run as beat (or the run before it) starts it: fold old raw results, then
    expire old roll-ups, from where ``resume`` says the last run stopped (the start if None).

    Returns the rows folded and expired, and ``resume``: None when the walk is done, else where
    the next run goes on (its time budget ran out first). ``skipped``: another run is at work.
    """
    deadline = time.monotonic() + _budget(budget)
    phase, after = resume or (FOLD, 0)
    folded = expired = 0
    with _exclusive() as alone:
        if not alone:
            return {"folded": 0, "expired": 0, "resume": None, "skipped": True}
        if phase == FOLD:
            folded, after, finished = _fold(keep, batch, deadline, after)
            if not finished:
                return {"folded": folded, "expired": 0, "resume": [FOLD, after]}
            if time.monotonic() >= deadline:
                return {"folded": folded, "expired": 0, "resume": [EXPIRE, 0]}
            after = 0
        expired, after, finished = _expire(now, batch, deadline, after)
    return {"folded": folded, "expired": expired, "resume": None if finished else [EXPIRE, after]}


def prune_probe_history(
    keep: int | None = None, *, batch: int | None = None, budget: float | None = None
) -> int:
    """Fold raw results beyond the newest ``keep`` per connection into hourly roll-ups and
    delete them; returns how many were folded (within the budget)."""
    return _fold(keep, batch, time.monotonic() + _budget(budget), 0)[0]


def prune_rollups(
    now: datetime | None = None, *, batch: int | None = None, budget: float | None = None
) -> int:
    """Delete roll-ups older than PROBE_ROLLUP_RETENTION; returns how many (within the budget)."""
    return _expire(now, batch, time.monotonic() + _budget(budget), 0)[0]


def _budget(budget: float | None) -> float:
    return settings.PRUNE_TIME_BUDGET if budget is None else budget


def _batch(batch: int | None) -> int:
    batch = max(1, settings.PRUNE_BATCH_SIZE if batch is None else batch)
    return batch if _set_based() else min(batch, PORTABLE_BATCH_MAX)


def _set_based() -> bool:
    return db.vendor == "postgresql"


def _fold(keep: int | None, batch: int | None, deadline: float, after: int):
    keep = max(0, settings.PROBE_HISTORY_KEEP if keep is None else keep)
    size = _batch(batch)
    if _set_based():
        return _loop(lambda after: _fold_pg(after, keep, size), deadline, after)
    return _loop(lambda after: _fold_portable(keep, size), deadline, after)


def _expire(now: datetime | None, batch: int | None, deadline: float, after: int):
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.PROBE_ROLLUP_RETENTION)
    size = _batch(batch)
    if _set_based():
        return _loop(lambda after: _expire_pg(after, cutoff, size), deadline, after)
    return _loop(lambda after: _expire_portable(cutoff, size), deadline, after)


def _loop(step: Step, deadline: float, after: int) -> tuple[int, int, bool]:
    """Run ``step`` from connection id ``after`` until it has nothing more to do (finished) or
    the deadline has passed; at least once, so that every run makes progress. Returns the rows,
    where it stopped, and whether it finished."""
    total = 0
    while True:
        rows, after, more = step(after)
        total += rows
        if not more:
            return total, after, True
        if time.monotonic() >= deadline:
            return total, after, False


def _exclusive():
    """Overlapping runs do not queue up on each other's row locks (their result would be right
    anyway): one at a time (core.db.exclusive)."""
    return exclusive(LOCK_KEY)


# ---- PostgreSQL: one statement per batch --------------------------------------------------

_CONNS = """
conns AS (
    SELECT id FROM connections_connection WHERE id > %(after)s ORDER BY id LIMIT %(conns)s
)"""

# The keep-th newest result's time, per connection, from the (connection, -checked_at) index.
_CUT_KEEP = """
cut AS (
    SELECT conns.id AS connection_id, k.checked_at FROM conns CROSS JOIN LATERAL (
        SELECT r.checked_at FROM connections_proberesult r WHERE r.connection_id = conns.id
        ORDER BY r.checked_at DESC OFFSET %(skip)s LIMIT 1
    ) k
)"""
_CUT_NONE = """
cut AS (SELECT conns.id AS connection_id, 'infinity'::timestamptz AS checked_at FROM conns)"""

_FOLD_SQL = """
WITH {conns}, {cut},
picked AS (
    SELECT r.id FROM cut JOIN connections_proberesult r
        ON r.connection_id = cut.connection_id AND r.checked_at < cut.checked_at
    LIMIT %(batch)s
),
gone AS (
    DELETE FROM connections_proberesult r WHERE r.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING r.connection_id, r.checked_at, r.ok, r.latency_ms
),
folded AS (
    INSERT INTO connections_proberollup AS t (
        connection_id, hour, ok_count, failed_count, latency_sum_ms, latency_count, latency_max_ms
    )
    SELECT connection_id, date_trunc('hour', checked_at, 'UTC'),
        count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok),
        coalesce(sum(latency_ms), 0), count(latency_ms), max(latency_ms)
    FROM gone GROUP BY 1, 2
    ON CONFLICT (connection_id, hour) DO UPDATE SET
        ok_count = t.ok_count + excluded.ok_count,
        failed_count = t.failed_count + excluded.failed_count,
        latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms,
        latency_count = t.latency_count + excluded.latency_count,
        latency_max_ms = greatest(t.latency_max_ms, excluded.latency_max_ms)
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM folded),
    (SELECT count(*) FROM conns), (SELECT max(id) FROM conns)
"""

_EXPIRE_SQL = """
WITH {conns},
old AS (
    SELECT r.id FROM conns CROSS JOIN LATERAL (
        SELECT id FROM connections_proberollup
        WHERE connection_id = conns.id AND hour < %(cutoff)s LIMIT %(batch)s
    ) r
    LIMIT %(batch)s
),
gone AS (
    DELETE FROM connections_proberollup t WHERE t.id = ANY(ARRAY(SELECT id FROM old)) RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM conns), (SELECT max(id) FROM conns)
"""


def _next(rows: int, batch: int, seen: int, last: int | None, after: int) -> tuple[int, bool]:
    """Where the walk goes on: the same chunk while a batch came back full, else the next one;
    done after the last chunk (fewer connections than asked for)."""
    if rows >= batch:
        return after, True
    return (last or after), seen >= CONNECTIONS_PER_STATEMENT


def _fold_pg(after: int, keep: int, batch: int) -> tuple[int, int, bool]:
    sql = _FOLD_SQL.format(conns=_CONNS, cut=_CUT_KEEP if keep else _CUT_NONE)
    params = {"after": after, "conns": CONNECTIONS_PER_STATEMENT, "skip": keep - 1, "batch": batch}
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows, _, seen, last = cursor.fetchone()
    return (rows, *_next(rows, batch, seen, last, after))


def _expire_pg(after: int, cutoff: datetime, batch: int) -> tuple[int, int, bool]:
    params = {"after": after, "conns": CONNECTIONS_PER_STATEMENT, "cutoff": cutoff, "batch": batch}
    with db.cursor() as cursor:
        cursor.execute(_EXPIRE_SQL.format(conns=_CONNS), params)
        rows, seen, last = cursor.fetchone()
    return (rows, *_next(rows, batch, seen, last, after))


# ---- Elsewhere (SQLite, the local run): the same rule, in a few statements per batch ---------

_PICK_PORTABLE = """
SELECT r.id FROM connections_proberesult r JOIN (
    SELECT connection_id, checked_at FROM (
        SELECT connection_id, checked_at,
            ROW_NUMBER() OVER (PARTITION BY connection_id ORDER BY checked_at DESC) AS n
        FROM connections_proberesult
    ) ranked WHERE n = %s
) cut ON r.connection_id = cut.connection_id AND r.checked_at < cut.checked_at
LIMIT %s
"""


def _fold_portable(keep: int, batch: int) -> tuple[int, int, bool]:
    with transaction.atomic():
        if keep:
            with db.cursor() as cursor:
                cursor.execute(_PICK_PORTABLE, [keep, batch])
                ids = [row[0] for row in cursor.fetchall()]
        else:
            ids = list(ProbeResult.objects.order_by().values_list("pk", flat=True)[:batch])
        if not ids:
            return 0, 0, False
        hours = (
            ProbeResult.objects.filter(pk__in=ids)
            .order_by()
            .values("connection_id", hour=TruncHour("checked_at"))
            .annotate(
                ok_n=Count("pk", filter=Q(ok=True)),
                failed_n=Count("pk", filter=Q(ok=False)),
                latency_sum=Sum("latency_ms"),
                latency_count=Count("latency_ms"),
                latency_max=Max("latency_ms"),
            )
        )
        _merge_rollups(list(hours))
        ProbeResult.objects.filter(pk__in=ids).delete()
    return len(ids), 0, len(ids) >= batch


def _merge_rollups(hours: list[dict]) -> None:
    keys = {(row["connection_id"], row["hour"]) for row in hours}
    existing = {
        (r.connection_id, r.hour): r
        for r in ProbeRollup.objects.select_for_update().filter(
            connection_id__in={c for c, _ in keys}, hour__in={h for _, h in keys}
        )
        if (r.connection_id, r.hour) in keys
    }
    new, changed = [], []
    for row in hours:
        rollup = existing.get((row["connection_id"], row["hour"]))
        if rollup is None:
            rollup = ProbeRollup(connection_id=row["connection_id"], hour=row["hour"])
            new.append(rollup)
        else:
            changed.append(rollup)
        rollup.ok_count += row["ok_n"]
        rollup.failed_count += row["failed_n"]
        rollup.latency_sum_ms += row["latency_sum"] or 0
        rollup.latency_count += row["latency_count"]
        maxima = [m for m in (rollup.latency_max_ms, row["latency_max"]) if m is not None]
        rollup.latency_max_ms = max(maxima) if maxima else None
    ProbeRollup.objects.bulk_create(new)
    fields = ["ok_count", "failed_count", "latency_sum_ms", "latency_count", "latency_max_ms"]
    ProbeRollup.objects.bulk_update(changed, fields)


def _expire_portable(cutoff: datetime, batch: int) -> tuple[int, int, bool]:
    ids = list(
        ProbeRollup.objects.filter(hour__lt=cutoff).order_by().values_list("pk", flat=True)[:batch]
    )
    if ids:
        ProbeRollup.objects.filter(pk__in=ids).delete()
    return len(ids), 0, len(ids) >= batch
