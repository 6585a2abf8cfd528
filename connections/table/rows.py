"""What each row of the connections table shows beyond its fields: the heartbeat of its last
probes, the reason for its state, its URL in parts, its environments' names; each for a whole
page in one query."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.db import connection as db
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from connections.choices import Status
from connections.mentions import Seen
from connections.models import Connection, ProbeResult, entered
from connections.probing.reasons import of_summary
from core.templatetags.ui import ago_seconds

HEARTBEAT_LENGTH = 30  # probe results per row's heartbeat bar
TICK_ERROR_CHARS = 160  # of a result's error, in its tick's tooltip (the row shows the last one)
REASON_STATES = (Status.NOT_FOUND, Status.DISCONNECTED)


def problem_reasons(ids: list[int], user: Any) -> dict[int, str]:
    """Why each Not Found / Disconnected connection of ``ids`` got there: the reason of its
    latest transition into that state, as ``user`` may read it. One query over the page's rows
    only (an index read of each one's history), whatever the number of failing connections
    beyond the page; and one per kind of object the reasons name, if any does."""
    if not ids:
        return {}
    rows = dict(
        Connection.all_objects.filter(pk__in=ids, status__in=REASON_STATES)
        .annotate(entered=entered("reason", "mentions"))
        .values_list("pk", "entered")
    )
    rows = {pk: row or {} for pk, row in rows.items()}
    seen = Seen(user).load(row.get("mentions") for row in rows.values())
    return {pk: seen.text(row.get("reason", ""), row.get("mentions")) for pk, row in rows.items()}


# The time comes as seconds: parsing 1,500 timestamps into aware datetimes cost more than the
# query (5.7 of 8.3 ms). The local text is Python's, as every other time on the page (PostgreSQL
# reads some zone names its own way, CET as a fixed offset, and refuses others).
_RECENT_RESULTS_SQL = """
SELECT r.id, r.connection_id, extract(epoch FROM r.checked_at)::float8, r.ok, r.latency_ms,
       r.status_code, r.error_class, left(r.error, %(chars)s) AS error
FROM unnest(%(ids)s::bigint[]) AS conns(id) CROSS JOIN LATERAL (
    SELECT p.* FROM {table} p WHERE p.connection_id = conns.id
    ORDER BY p.checked_at DESC LIMIT %(limit)s
) r
"""


class Beat(NamedTuple):
    """One probe result as a tick needs it (no model instance, and a tuple: a page reads 1,500
    of them). ``checked_at`` is in seconds since the epoch; ``local`` is that time in the
    current time zone, as a tick's title shows it."""

    pk: int
    connection_id: int
    checked_at: float
    ok: bool
    latency_ms: float | None
    status_code: int | None
    error_class: str
    error: str
    local: str


class LocalTimes:
    """Seconds since the epoch as "YYYY-MM-DD HH:MM:SS" in ``zone``, for 1,500 ticks a page.

    A page's ticks fall in a few quarter hours; each quarter hour's UTC offset is looked up
    once. A quarter hour whose two ends differ holds a change of offset (no time zone changes
    twice within a quarter hour): its seconds are looked up one by one."""

    def __init__(self, zone) -> None:
        self.zone = zone
        self.offsets: dict[int, int | None] = {}

    def _offset(self, seconds: float) -> int:
        return int(datetime.fromtimestamp(seconds, self.zone).utcoffset().total_seconds())

    def __call__(self, seconds: float) -> str:
        quarter = int(seconds // 900)
        offset = self.offsets.get(quarter, -1)
        if offset == -1:
            start, end = self._offset(quarter * 900), self._offset(quarter * 900 + 899)
            offset = self.offsets[quarter] = start if start == end else None
        if offset is None:
            offset = self._offset(seconds)
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(seconds // 1) + offset))


def recent_results(ids: list[int], limit: int = HEARTBEAT_LENGTH) -> dict[int, list[Beat]]:
    """The newest ``limit`` probe results of each connection in ``ids``, oldest first: one
    query (an index scan of probe_conn_time_idx per connection on PostgreSQL, a window
    function elsewhere), however many results each connection keeps."""
    found: dict[int, list[Beat]] = {pk: [] for pk in ids}
    if not ids:
        return found
    local = LocalTimes(timezone.get_current_timezone())
    if db.vendor == "postgresql":
        sql = _RECENT_RESULTS_SQL.format(table=db.ops.quote_name(ProbeResult._meta.db_table))
        params = {
            "ids": list(ids),
            "limit": limit,
            "chars": TICK_ERROR_CHARS,
        }
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            rows = [(*row, local(row[2])) for row in cursor.fetchall()]
    else:
        rank = Window(
            RowNumber(),
            partition_by=[F("connection_id")],
            order_by=[F("checked_at").desc(), F("pk").desc()],
        )
        rows = [
            (pk, conn, at.timestamp(), *rest, local(at.timestamp()))
            for pk, conn, at, *rest in ProbeResult.objects.filter(connection_id__in=ids)
            .annotate(rank=rank)
            .filter(rank__lte=limit)
            .values_list(*Beat._fields[:-1])
        ]
    for row in rows:
        found[row[1]].append(Beat._make(row))
    for results in found.values():
        results.sort(key=lambda r: (r.checked_at, r.pk))
    return found


def tick_title(tick: dict, now: float) -> str:
    """A tick's tooltip; ``now`` and the tick's ``at``: seconds since the epoch (``Beat``)."""
    if tick["state"] == "none":
        return "no probe yet"
    parts = ["ok" if tick["state"] == "ok" else "failed"]
    if tick.get("latency") is not None:
        parts.append(f"{tick['latency']:.0f} ms")
    if tick.get("error"):
        parts.append(tick["error"])
    parts.append(ago_seconds(int(now - tick["at"])))
    parts.append(tick["local"])
    return " · ".join(parts)


TICK_PITCH = 4  # px per tick in the bar's SVG: a 3 px stroke and a 1 px gap
TICK_SHAPES = {  # each tick's stroke, readable without colour: a full bar, a broken one, a stub
    "ok": "M{x} 1v18",
    "failed": "M{x} 1v7m0 4v7",
    "none": "M{x} 14v5",
}


def heartbeat(
    results: list[Beat], length: int = HEARTBEAT_LENGTH, now: float | None = None
) -> dict:
    """A row's bar: ``length`` ticks, oldest left, newest right; slots before the first result
    are "none yet". Drawn as one SVG with one path per kind of tick (``paths``), each tick's
    tooltip (told as of ``now``) in ``titles``, in order: the page reads them from there."""
    now = time.time() if now is None else now
    ticks = [{"state": "none"} for _ in range(length - len(results[-length:]))]
    for result in results[-length:]:
        error = result.error.strip()
        if result.error_class and not error.startswith(result.error_class):
            error = f"{result.error_class}: {error}" if error else result.error_class
        ticks.append(
            {
                "state": "ok" if result.ok else "failed",
                "at": result.checked_at,
                "local": result.local,
                "latency": result.latency_ms,
                "error": error[:TICK_ERROR_CHARS],
            }
        )
    paths: dict[str, list[str]] = {state: [] for state in TICK_SHAPES}
    for i, tick in enumerate(ticks):
        x = i * TICK_PITCH + 1.5
        paths[tick["state"]].append(TICK_SHAPES[tick["state"]].format(x=f"{x:g}"))
    return {
        "titles": [tick_title(tick, now) for tick in ticks],
        "paths": {state: "".join(d) for state, d in paths.items() if d},
        "width": length * TICK_PITCH,
    }


def problem(connection: Connection, reason: str = "") -> str:
    """The last failure's reason shown in the row: why it is Not Found / Disconnected, else the
    failing probe's, as a sentence with a hint (connections/probing/reasons.py); empty for a
    healthy row."""
    if connection.status in REASON_STATES and reason:
        return reason
    if connection.last_probe_ok is False or connection.status in REASON_STATES:
        if not connection.last_probe_error:
            return ""
        return of_summary(
            connection.last_probe_class, connection.last_probe_error, connection.url
        ).sentence
    return ""


def url_parts(url: str) -> dict[str, str]:
    """A URL split where it may be clipped: the host stays whole, the port is never cut, the
    path takes the ellipsis (8191, 8192 and 8199 must not look alike)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return {"host": url, "port": "", "rest": ""}
    if not parts.scheme or not parts.netloc:
        return {"host": url, "port": "", "rest": ""}
    netloc = parts.netloc
    port_text = f":{port}" if port is not None and netloc.endswith(f":{port}") else ""
    host = f"{parts.scheme}://{netloc[: len(netloc) - len(port_text)]}"
    rest = url[len(host) + len(port_text) :]
    return {"host": host, "port": port_text, "rest": rest}
