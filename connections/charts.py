"""Uptime and a latency chart as inline SVG, rendered on the server (no chart library)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from .models import ProbeResult, ProbeRollup


def uptime(results: list[ProbeResult], rollups: list[ProbeRollup]) -> dict:
    ok = sum(r.ok for r in results) + sum(r.ok_count for r in rollups)
    total = len(results) + sum(r.ok_count + r.failed_count for r in rollups)
    times = [r.checked_at for r in results] + [r.hour for r in rollups]
    return {
        "percent": round(100 * ok / total, 2) if total else None,
        "checks": total,
        "since": min(times) if times else None,
    }


def latency_svg(
    results: list[ProbeResult], rollups: list[ProbeRollup], width: int = 720, height: int = 140
) -> SafeString:
    """Hourly means from the roll-ups, then the raw results; failed checks as red ticks."""
    points = [(r.hour, r.latency_mean_ms, True) for r in rollups if r.latency_count]
    points += [(r.checked_at, r.latency_ms, r.ok) for r in results]
    points.sort(key=lambda p: p[0])
    if len(points) < 2:
        return mark_safe('<p class="muted">Not enough probe results for a chart yet.</p>')
    pad = 28
    start, end = points[0][0], points[-1][0]
    span = max((end - start).total_seconds(), 1)
    latencies = [p[1] for p in points if p[1] is not None and p[2]]
    top = max(latencies) if latencies else 1.0
    top = top if top > 0 else 1.0

    def x(moment) -> float:
        return round(pad + (width - 2 * pad) * (moment - start).total_seconds() / span, 1)

    def y(latency: float) -> float:
        return round(height - pad - (height - 2 * pad) * latency / top, 1)

    line = " ".join(f"{x(t)},{y(v)}" for t, v, ok in points if ok and v is not None)
    failures = format_html_join(
        "",
        '<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" class="chart-failure"/>',
        ((x(t), height - pad, height - pad + 8) for t, _, ok in points if not ok),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="Probe latency over time">'
        '<line x1="{p}" x2="{r}" y1="{b}" y2="{b}" class="chart-axis"/>'
        '<text x="2" y="{p}" class="chart-label">{top} ms</text>'
        '<text x="2" y="{b}" class="chart-label">0</text>'
        '<text x="{p}" y="{h}" class="chart-label">{first}</text>'
        '<text x="{r}" y="{h}" class="chart-label" text-anchor="end">{last}</text>'
        '<polyline points="{line}" class="chart-line"/>{failures}</svg>',
        w=width,
        h=height - 2,
        p=pad,
        r=width - pad,
        b=height - pad,
        top=f"{top:.0f}",
        first=start.strftime("%Y-%m-%d %H:%M"),
        last=end.strftime("%Y-%m-%d %H:%M"),
        line=line,
        failures=failures,
    )


def line_svg(points: list[tuple], width: int = 360, height: int = 60) -> SafeString:
    """A small line of (time, value) points, for a scraped value's last day."""
    if len(points) < 2:
        return mark_safe("")
    start, end = points[0][0], points[-1][0]
    span = max((end - start).total_seconds(), 1)
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    rise = (high - low) or 1.0
    coords = " ".join(
        f"{round(4 + (width - 8) * (t - start).total_seconds() / span, 1)},"
        f"{round(height - 4 - (height - 8) * (v - low) / rise, 1)}"
        for t, v in points
    )
    return format_html(
        '<svg class="chart spark" viewBox="0 0 {} {}" role="img" aria-label="last day">'
        '<polyline points="{}" class="chart-line"/></svg>',
        width,
        height,
        coords,
    )
