"""How figures are written: an uptime, a latency (the table, the connection page, the API's
readers agree on one wording)."""

from __future__ import annotations

import math


def percent_text(value: float | None) -> str:
    """An uptime as people read it: "100 %" only when nothing failed, else at most two decimals
    rounded down (one failure in 10,000 is "99.99 %", never "100 %"); None: "no data"."""
    if value is None:
        return "no data"
    if value >= 100:
        return "100 %"
    floored = math.floor(value * 100) / 100
    return f"{floored:.2f}".rstrip("0").rstrip(".") + " %"


def uptime_level(value: float | None) -> str:
    """How an uptime looks: "none" (no data), "ok" (at least 99.9), "warn" (95), "bad"."""
    if value is None:
        return "none"
    return "ok" if value >= 99.9 else "warn" if value >= 95 else "bad"


def latency_text(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:,.0f} ms" if value >= 1 else "<1 ms"
