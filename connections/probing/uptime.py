"""Uptime and mean latency per connection, as the table shows and sorts them.

Each connection row keeps its uptime over the last 24 h, 7 d and 30 d (the share of probes that
succeeded, 0–100) and the mean latency of its successful probes over the last 24 h. They are
read from the probe history (the raw results and the hourly roll-ups they are folded into) by
``refresh``: a beat task that walks the connections in id order, ``UPTIME_CHUNK`` at a time (one
grouped query per chunk over each of the two tables, then one UPDATE of the rows whose figures
changed), until done or out of its time budget; the next run starts where it stopped. So the
columns are at most ``UPTIME_INTERVAL`` (plus a walk) behind the probes, and a table page reads
four columns instead of a month of history per row.

No probe in a window means no figure (NULL, shown as "no data"), never a made-up 100 %.
A roll-up counts in a window when its hour starts inside it (the window's edge is exact to the
hour for folded results, to the second for raw ones).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection as db
from django.db.models import Case, Count, FloatField, Q, Sum, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from connections.models import Connection, ProbeResult, ProbeRollup
from core.db import exclusive
from live.stamp import touch

# field: the window it covers
WINDOWS = {
    "uptime_24h": timedelta(days=1),
    "uptime_7d": timedelta(days=7),
    "uptime_30d": timedelta(days=30),
}
LATENCY_WINDOW = timedelta(days=1)
FIELDS = (*WINDOWS, "latency_mean_ms")
UPTIME_CHUNK = 1000
# pg_try_advisory_lock key: one refresh at a time; where the last run stopped (the cache)
LOCK_KEY = 0x6D657368_757074  # "meshupt"
RESUME_KEY = "uptime:resume"


def figures(ids: list[int], now: datetime | None = None) -> dict[int, dict]:
    """``{id: {field: value or None}}`` for the connections ``ids``: two grouped queries."""
    now = now or timezone.now()
    sums: dict[int, dict[str, float]] = {pk: {} for pk in ids}
    if not ids:
        return {}
    oldest = now - max(WINDOWS.values())
    latency_since = now - LATENCY_WINDOW

    def add(pk: int, key: str, value) -> None:
        sums[pk][key] = sums[pk].get(key, 0) + (value or 0)

    raw = {}
    for name, window in WINDOWS.items():
        since = now - window
        raw[f"{name}_ok"] = Count("pk", filter=Q(checked_at__gte=since, ok=True))
        raw[f"{name}_all"] = Count("pk", filter=Q(checked_at__gte=since))
    recent_ok = Q(checked_at__gte=latency_since, ok=True, latency_ms__isnull=False)
    raw["latency_sum"] = Sum("latency_ms", filter=recent_ok)
    raw["latency_n"] = Count("pk", filter=recent_ok)
    for row in (
        ProbeResult.objects.filter(connection_id__in=ids, checked_at__gte=oldest)
        .order_by()
        .values("connection_id")
        .annotate(**raw)
    ):
        pk = row.pop("connection_id")
        for key, value in row.items():
            add(pk, key, value)
    for row in (
        ProbeRollup.objects.filter(connection_id__in=ids, hour__gte=oldest)
        .order_by()
        .values("connection_id")
        .annotate(
            **{f"{n}_ok": Sum("ok_count", filter=Q(hour__gte=now - w)) for n, w in WINDOWS.items()},
            **{
                f"{n}_failed": Sum("failed_count", filter=Q(hour__gte=now - w))
                for n, w in WINDOWS.items()
            },
            latency_sum=Sum("latency_sum_ms", filter=Q(hour__gte=latency_since)),
            latency_n=Sum("latency_count", filter=Q(hour__gte=latency_since)),
        )
    ):
        pk = row.pop("connection_id")
        for name in WINDOWS:
            add(pk, f"{name}_ok", row[f"{name}_ok"])
            add(pk, f"{name}_all", (row[f"{name}_ok"] or 0) + (row[f"{name}_failed"] or 0))
        add(pk, "latency_sum", row["latency_sum"])
        add(pk, "latency_n", row["latency_n"])
    result = {}
    for pk, s in sums.items():
        values: dict[str, float | None] = {}
        for name in WINDOWS:
            total = s.get(f"{name}_all", 0)
            # never rounded here: one failure in a million is not 100 (core.figures writes it)
            values[name] = 100 * s.get(f"{name}_ok", 0) / total if total else None
        n = s.get("latency_n", 0)
        values["latency_mean_ms"] = round(s["latency_sum"] / n, 1) if n else None
        result[pk] = values
    return result


def _shown(values: dict[str, float | None]) -> dict[str, float | None]:
    """The figures as kept: an uptime to a hundredth of a percent rounded down (what the table
    writes), a latency to the millisecond, so that a refresh writes a row only when what it
    shows changed, not at every probe's hundredth of a millisecond."""
    kept = {}
    for name, value in values.items():
        if value is None:
            kept[name] = None
        elif name == "latency_mean_ms":
            kept[name] = float(round(value))
        else:
            kept[name] = math.floor(value * 100) / 100
    return kept


def refresh(after: int | None = None, budget: float = 60.0, now: datetime | None = None) -> dict:
    """Refresh the figures of every live connection with an id above ``after`` (None: where
    the last run stopped), a chunk at a time, until done or ``budget`` seconds are spent; one
    run at a time (a second returns at once, ``skipped``). Returns the rows written and where
    the next run resumes (None: done, the next starts over)."""
    with exclusive(LOCK_KEY) as alone:
        if not alone:
            return {"written": 0, "seen": 0, "resume": None, "skipped": True}
        if after is None:
            after = _resume_point()
        report = _walk(after, budget, now or timezone.now())
        cache.set(RESUME_KEY, report["resume"] or 0, None)
        return report


def _resume_point() -> int:
    point = cache.get(RESUME_KEY)
    return point if isinstance(point, int) and point >= 0 else 0


def _walk(after: int, budget: float, now: datetime) -> dict:
    deadline = time.monotonic() + budget
    written = seen = 0
    while True:
        chunk = list(
            Connection.objects.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", *FIELDS)[:UPTIME_CHUNK]
        )
        if not chunk:
            return {"written": written, "seen": seen, "resume": None}
        fresh = figures([row[0] for row in chunk], now)
        changed = {}
        for row in chunk:
            kept = _shown(fresh[row[0]])
            if tuple(kept[f] for f in FIELDS) != tuple(row[1:]):
                changed[row[0]] = kept
        if changed:
            written += _write(changed)
        seen += len(chunk)
        after = chunk[-1][0]
        if len(chunk) < UPTIME_CHUNK:
            return {"written": written, "seen": seen, "resume": None}
        if time.monotonic() >= deadline:
            return {"written": written, "seen": seen, "resume": after}


def _write(changed: dict[int, dict]) -> int:
    """One UPDATE for the changed rows; it touches nothing else of them, so a probe or a
    transition written meanwhile is not undone. On PostgreSQL an UPDATE … FROM (VALUES …) (a
    join, not a CASE of a thousand arms read for every row); elsewhere the CASE."""
    if db.vendor == "postgresql":
        rows = [(pk, *(values[f] for f in FIELDS)) for pk, values in changed.items()]
        placeholders = ", ".join(["(%s::bigint" + ", %s::float8" * len(FIELDS) + ")"] * len(rows))
        assignments = ", ".join(f"{f} = v.{f}" for f in FIELDS)
        with db.cursor() as cursor:
            cursor.execute(
                f"UPDATE connections_connection AS c SET {assignments}"
                f" FROM (VALUES {placeholders}) AS v (id, {', '.join(FIELDS)})"
                " WHERE c.id = v.id",
                [value for row in rows for value in row],
            )
            count = cursor.rowcount
    else:
        updates = {
            # cast: a CASE of NULLs alone would be text to PostgreSQL
            field: Cast(
                Case(
                    *(
                        When(pk=pk, then=Value(values[field], output_field=FloatField()))
                        for pk, values in changed.items()
                    ),
                    output_field=FloatField(),
                ),
                FloatField(),
            )
            for field in FIELDS
        }
        count = Connection.all_objects.filter(pk__in=list(changed)).update(**updates)
    touch(list(changed))  # open tables show the new figures at their next poll
    return count
