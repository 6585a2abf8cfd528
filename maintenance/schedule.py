"""When a window is active: pure functions of its stored fields and a time (no stored slots).

Recurring windows are computed in the window's own IANA timezone with ``zoneinfo``: each
occurrence starts on a listed weekday (0 = Monday … 6 = Sunday) at the wall-clock start time
and lasts ``duration_minutes`` of elapsed time, so it may cross midnight (its weekday is the
day it starts). Daylight-saving rules:

- a start time that does not exist that day (02:30 on a spring-forward day in Europe/Amsterdam)
  starts at the next valid instant, the moment the clocks jump (03:00 local);
- a start time that happens twice (02:30 on a fall-back day) starts at the first of the two.

"End now" (``ended_at``) cuts short the occurrence it falls in; later occurrences of a
recurring window still happen (disable the window to stop them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from core import times

log = logging.getLogger(__name__)

ONE_OFF = "one_off"
RECURRING = "recurring"


class WindowLike(Protocol):
    kind: str
    enabled: bool
    timezone: str
    starts_at: datetime | None
    ends_at: datetime | None
    weekdays: list[int]
    start_time: time | None
    duration_minutes: int | None
    ended_at: datetime | None


def local_start(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) of wall-clock ``at`` on ``day`` in ``tz``, by the rules above."""
    naive = datetime.combine(day, at.replace(tzinfo=None))
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first  # it exists; fold=0 is the first of an ambiguous pair
    # In a gap: the two readings bracket the jump; find the first instant at or after ``naive``.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    lo, hi = min(lo, hi), max(lo, hi)
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def _cut(window: WindowLike, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    if window.ended_at is not None and start <= window.ended_at < end:
        end = window.ended_at
    return (start, end) if start < end else None


def occurrences(
    window: WindowLike, since: datetime, until: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """The occurrences (start, end) that overlap [since, until), in order of start."""
    if window.kind == ONE_OFF:
        if window.starts_at and window.ends_at:
            occ = _cut(window, window.starts_at, window.ends_at)
            if occ and occ[0] < until and occ[1] > since:
                yield occ
        return
    if not window.weekdays or window.start_time is None or not window.duration_minutes:
        return
    tz = times.load_zone(window.timezone)
    if tz is None:
        # a zone this host can no longer load (dropped by a tzdata update): this window has no
        # occurrences (its page says why); it never stops the others (or the routing)
        return
    duration = timedelta(minutes=window.duration_minutes)
    day = (since - duration).astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date() + timedelta(days=1)
    weekdays = set(window.weekdays)
    while day <= last:
        if day.weekday() in weekdays:
            start = local_start(day, window.start_time, tz)
            occ = _cut(window, start, start + duration)
            if occ and occ[0] < until and occ[1] > since:
                yield occ
        day += timedelta(days=1)


def active_occurrence(window: WindowLike, t: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence ``t`` falls in (start inclusive, end exclusive), or None; of two that
    overlap, the one that started last."""
    if not window.enabled:
        return None
    found = None
    for occ in occurrences(window, t, t + timedelta(microseconds=1)):
        found = occ
    return found


def next_occurrences(
    window: WindowLike, after: datetime, n: int
) -> list[tuple[datetime, datetime]]:
    """The next ``n`` occurrences not over at ``after`` (the active one first, if any)."""
    if not window.enabled or n <= 0:
        return []
    if window.kind == ONE_OFF:
        return list(occurrences(window, after, datetime.max.replace(tzinfo=UTC)))[:n]
    found: list[tuple[datetime, datetime]] = []
    since = after
    for _ in range(60):  # a year per step at most; a window always fires at least weekly
        until = since + timedelta(days=7 * max(n, 1) + 1)
        for occ in occurrences(window, since, until):
            if occ[1] > after and (not found or occ[0] > found[-1][0]):
                found.append(occ)
                if len(found) == n:
                    return found
        since = until
    return found


def last_end(window: WindowLike, t: datetime) -> datetime | None:
    """The end of the latest occurrence over by ``t`` (looking back a week and a duration)."""
    lookback = timedelta(days=8, minutes=window.duration_minutes or 0)
    ends = [end for _, end in occurrences(window, t - lookback, t) if end <= t]
    return max(ends, default=None)
