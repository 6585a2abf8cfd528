"""Times at the edge of their type, and time zones that may no longer load: one rule each.

A moment is kept only if every time zone can show it: ``datetime`` ends at the years 1 and
9999, and a zone 14 hours (or an old local mean time, nearly 16) away from UTC carries a time
near either end past it, an OverflowError in every page that shows it. So stored and compared
moments stay two days inside the type's range. A zone name stored by an earlier host may be
missing after a tzdata update: it is shown as UTC, and said so, never a 500.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=2)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)
BOUNDS_MESSAGE = "Give a time between 0001-01-03 and 9999-12-29 (UTC)."


def time_problem(moment: datetime) -> str | None:
    """Why ``moment`` (aware) cannot be kept and shown in every zone, or None."""
    try:
        if EARLIEST <= moment.astimezone(UTC) <= LATEST:
            return None
    except (OverflowError, ValueError):
        pass
    return BOUNDS_MESSAGE


def zone(name: str) -> ZoneInfo:
    """The zone of a stored name, or UTC when this host cannot load it any more."""
    loaded = load_zone(name)
    return loaded if loaded is not None else ZoneInfo("UTC")


def load_zone(name: str) -> ZoneInfo | None:
    """The zone, or None (logged) when the name does not load here."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        log.warning("time zone %r does not load on this host; shown as UTC", str(name)[:64])
        return None
