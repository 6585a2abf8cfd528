"""A connection's health as inline SVG, rendered on the server (no chart library): the latency
over a chosen range, and a bar of daily uptime cells for the last 90 days.

Both read the probe history as it is kept (connections/probing/history.py): the newest raw
results, and hourly roll-ups of the older ones. A range or a day without any probe says "no
data"; nothing is drawn for it and nothing is counted as up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from core.figures import latency_text, percent_text, uptime_level

from .models import Connection, ProbeResult, ProbeRollup

# The range picker: key, words, length. The default is the last day.
RANGES = {
    "1h": ("1 h", timedelta(hours=1)),
    "24h": ("24 h", timedelta(days=1)),
    "7d": ("7 d", timedelta(days=7)),
    "30d": ("30 d", timedelta(days=30)),
    "90d": ("90 d", timedelta(days=90)),
}
DEFAULT_RANGE = "24h"
DAYS = 90
# at most this many points on a line: more than the chart has pixels is only weight
MAX_POINTS = 720


@dataclass
class Point:
    at: datetime
    latency: float | None  # a mean for an hour of roll-ups, one probe's for a raw result
    ok: bool


def range_key(asked: str | None) -> str:
    return asked if asked in RANGES else DEFAULT_RANGE


def points(connection: Connection, since: datetime) -> list[Point]:
    """The probes since ``since``, oldest first: hourly means of the roll-ups (a failed hour,
    one with any failure, is a tick), then the raw results."""
    found = [
        Point(r.hour, r.latency_mean_ms, r.failed_count == 0)
        for r in ProbeRollup.objects.filter(connection=connection, hour__gte=since).order_by("hour")
    ]
    found += [
        Point(at, latency, ok)
        for at, latency, ok in ProbeResult.objects.filter(
            connection=connection, checked_at__gte=since
        )
        .order_by("checked_at", "pk")
        .values_list("checked_at", "latency_ms", "ok")
    ]
    if len(found) > MAX_POINTS:  # keep every failure; thin the successes evenly
        step = len(found) / MAX_POINTS
        kept = {int(i * step) for i in range(MAX_POINTS)}
        found = [p for i, p in enumerate(found) if i in kept or not p.ok]
    return found


def summary(connection: Connection, since: datetime) -> dict:
    """Uptime, probe count and mean latency over the range."""
    raw = ProbeResult.objects.filter(connection=connection, checked_at__gte=since).aggregate(
        n_ok=Count("pk", filter=Q(ok=True)),
        n_all=Count("pk"),
        lat=Sum("latency_ms", filter=Q(ok=True, latency_ms__isnull=False)),
        lat_n=Count("pk", filter=Q(ok=True, latency_ms__isnull=False)),
    )
    folded = ProbeRollup.objects.filter(connection=connection, hour__gte=since).aggregate(
        n_ok=Sum("ok_count"),
        n_failed=Sum("failed_count"),
        lat=Sum("latency_sum_ms"),
        lat_n=Sum("latency_count"),
    )
    ok = raw["n_ok"] + (folded["n_ok"] or 0)
    total = raw["n_all"] + (folded["n_ok"] or 0) + (folded["n_failed"] or 0)
    lat_n = raw["lat_n"] + (folded["lat_n"] or 0)
    latency = ((raw["lat"] or 0) + (folded["lat"] or 0)) / lat_n if lat_n else None
    up = 100 * ok / total if total else None
    return {
        "uptime": up,
        "uptime_text": percent_text(up),
        "level": uptime_level(up),
        "probes": f"{total:,}",
        "failed": f"{total - ok:,}" if total - ok else "",
        "latency_text": latency_text(latency),
    }


def latency_svg(
    found: list[Point], start: datetime, end: datetime, width: int = 1000, height: int = 220
) -> SafeString:
    """The latency line of the successful probes over [start, end], the failed ones as red
    ticks under the axis; five time labels and three latency gridlines, all inside the box."""
    shown = [p for p in found if p.ok and p.latency is not None]
    if not found:
        return mark_safe(
            '<p class="muted chart-empty">No data in this range: nothing was probed.</p>'
        )
    left, right, top_pad, bottom = 56, 12, 12, 40
    span = max((end - start).total_seconds(), 1)
    top = max((p.latency for p in shown), default=1.0) or 1.0
    top = _nice(top)
    plot_h = height - top_pad - bottom

    def x(moment: datetime) -> float:
        return round(left + (width - left - right) * (moment - start).total_seconds() / span, 1)

    def y(latency: float) -> float:
        return round(top_pad + plot_h - plot_h * latency / top, 1)

    grid = format_html_join(
        "",
        '<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" class="chart-grid"/>'
        '<text x="{3}" y="{4}" class="chart-label" text-anchor="end">{5}</text>',
        (
            (left, width - right, y(v), left - 6, y(v) + 4, latency_text(v) if v else "0 ms")
            for v in (0, top / 2, top)
        ),
    )
    fmt = "%H:%M" if span <= 2 * 86400 else "%b %d"
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" class="chart-label" text-anchor="{}">{}</text>',
        (
            (
                x(moment),
                height - 8,
                "start" if i == 0 else "end" if i == 4 else "middle",
                timezone.localtime(moment).strftime(fmt),
            )
            for i, moment in enumerate(start + (end - start) * k / 4 for k in range(5))
        ),
    )
    line = " ".join(f"{x(p.at)},{y(p.latency)}" for p in shown)
    axis = height - bottom
    failures = format_html_join(
        "",
        '<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" class="chart-failure"/>',
        ((x(p.at), axis + 2, axis + 12) for p in found if not p.ok),
    )
    return format_html(
        '<svg class="chart chart-wide" viewBox="0 0 {w} {h}" role="img"'
        ' aria-label="Latency of the successful probes from {first} to {last}, up to {top};'
        ' {n} failed probes marked under the axis">{grid}{labels}'
        '<polyline points="{line}" class="chart-line" vector-effect="non-scaling-stroke"/>'
        "{failures}</svg>",
        w=width,
        h=height,
        first=timezone.localtime(start).strftime("%Y-%m-%d %H:%M"),
        last=timezone.localtime(end).strftime("%Y-%m-%d %H:%M"),
        top=latency_text(top),
        n=sum(1 for p in found if not p.ok),
        grid=grid,
        labels=labels,
        line=line,
        failures=failures,
    )


def _nice(value: float) -> float:
    """The axis top: the next of 1, 2, 5 × a power of ten at or above ``value``."""
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value * 10:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def daily(connection: Connection, today: date | None = None, days: int = DAYS) -> list[dict]:
    """The last ``days`` days, oldest first (in the current time zone): each with its uptime
    and probe count, or no data."""
    now = timezone.localtime()
    today = today or now.date()
    first = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    counts: dict[date, list[int]] = {}
    tz = timezone.get_current_timezone()
    for day, ok, failed in (
        ProbeRollup.objects.filter(connection=connection, hour__gte=since)
        .annotate(day=TruncDate("hour", tzinfo=tz))
        .values("day")
        .annotate(n_ok=Sum("ok_count"), n_failed=Sum("failed_count"))
        .values_list("day", "n_ok", "n_failed")
    ):
        entry = counts.setdefault(day, [0, 0])
        entry[0] += ok or 0
        entry[1] += (ok or 0) + (failed or 0)
    for day, ok, total in (
        ProbeResult.objects.filter(connection=connection, checked_at__gte=since)
        .annotate(day=TruncDate("checked_at", tzinfo=tz))
        .values("day")
        .annotate(n_ok=Count("pk", filter=Q(ok=True)), n_all=Count("pk"))
        .values_list("day", "n_ok", "n_all")
    ):
        entry = counts.setdefault(day, [0, 0])
        entry[0] += ok
        entry[1] += total
    cells = []
    for i in range(days):
        day = first + timedelta(days=i)
        ok, total = counts.get(day, (0, 0))
        up = 100 * ok / total if total else None
        cells.append({"day": day, "uptime": up, "probes": total, "level": uptime_level(up)})
    return cells


def daily_svg(cells: list[dict], width: int = 1000, height: int = 34) -> SafeString:
    """One cell per day, oldest left; a day without probes is a low grey stub that says "no
    data" (never a green day). Each cell's title gives the day, its uptime and probe count."""
    n = len(cells)
    gap = 2
    cell_w = (width - gap * (n - 1)) / n

    def title(cell: dict) -> str:
        day = cell["day"].strftime("%Y-%m-%d")
        if cell["uptime"] is None:
            return f"{day}: no data"
        return f"{day}: {percent_text(cell['uptime'])} up, {cell['probes']:,} probes"

    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" rx="1" class="day day-{}">'
        "<title>{}</title></rect>",
        (
            (
                round(i * (cell_w + gap), 2),
                height - 8 if cell["uptime"] is None else 0,
                round(cell_w, 2),
                8 if cell["uptime"] is None else height,
                cell["level"],
                title(cell),
            )
            for i, cell in enumerate(cells)
        ),
    )
    measured = [c for c in cells if c["uptime"] is not None]
    bad = sum(1 for c in measured if c["level"] != "ok")
    return format_html(
        '<svg class="days" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img"'
        ' aria-label="Daily uptime, last {} days: {} days measured, {} below 99.9 %, {} without'
        ' data">{}</svg>',
        width,
        height,
        n,
        len(measured),
        bad,
        n - len(measured),
        rects,
    )


def health(connection: Connection, asked: str | None) -> dict:
    """Everything the connection page's health card shows for the range asked."""
    key = range_key(asked)
    end = timezone.now()
    start = end - RANGES[key][1]
    found = points(connection, start)
    cells = daily(connection)
    return {
        "range": key,
        "ranges": [(k, words) for k, (words, _) in RANGES.items()],
        "range_words": RANGES[key][0],
        "summary": summary(connection, start),
        "chart": latency_svg(found, start, end),
        "days": daily_svg(cells),
        "days_first": cells[0]["day"],
        "measured": any(cell["uptime"] is not None for cell in cells),
    }


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
