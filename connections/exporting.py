"""The rows a table's filters select, as the table page and the bulk bar agree on them, and
their export as CSV or JSON.

``matching`` is the one rule for "the rows of these filters": the connections the user may see,
inside an environment when the filters come from its page (``within_environment``), through the
table's FilterSet. An export writes exactly those rows, in the table's order, streamed in
chunks (a million rows never sit in memory), each chunk with the environments' names, tags and
reasons as that user may read them. A text cell that a spreadsheet would run as a formula
(``= + - @``, a tab or CR first) is written with a leading apostrophe (OWASP's advice)."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from itertools import islice
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from django.utils import timezone

from connections.filters import ConnectionFilterSet
from connections.table.columns import ConnectionTable
from connections.table.context import environment_names
from connections.table.rows import problem, problem_reasons
from connections.tagging import tags_of
from connections.ui import visible
from core.ids import parse_id
from environments.models import Environment

CHUNK = 2000
# at most this many rows a file (~12 s of a web worker; its timeout is 30 s)
EXPORT_MAX = 50_000
FIELDS = (
    "id",
    "name",
    "kind",
    "url",
    "state",
    "environments",
    "tags",
    "uptime_24h",
    "uptime_7d",
    "uptime_30d",
    "latency_mean_ms",
    "last_probe_at",
    "last_probe_ok",
    "problem",
    "managed",
    "created_at",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class NotMatching(ValueError):
    """The filters are not valid (the message says so): no rows, a 400."""


def matching(request: HttpRequest, filters: QueryDict) -> QuerySet:
    """The connections the table shows for ``filters`` (all of them, not a page)."""
    base = visible(request)
    within = filters.get("within_environment", "")
    if within:  # an environment's page: its rows, then the page's own filters
        environment_id = parse_id(within)
        seen = Environment.objects.restrict(request.user).filter(pk=environment_id)
        if environment_id is None or not seen.exists():
            # an environment one may not see is no filter (its members are not told)
            raise NotMatching("The table's filters are not valid.")
        base = base.filter(environments=environment_id)
    filterset = ConnectionFilterSet(filters, queryset=base, request=request)
    if not filterset.is_valid():
        raise NotMatching("The table's filters are not valid.")
    return filterset.qs


def ordered(request: HttpRequest, queryset: QuerySet, sort: str) -> QuerySet:
    """``queryset`` in the table's order for ``sort`` (its default for none or a bad one)."""
    table = ConnectionTable(queryset, user=request.user)
    if sort:
        with contextlib.suppress(ValueError, KeyError):
            table.order_by = sort
    return table.data.data


def rows(request: HttpRequest, queryset: QuerySet) -> Iterator[dict[str, Any]]:
    """Each connection as a flat dict of FIELDS, a chunk of queries per CHUNK rows."""
    zone = timezone.get_current_timezone()
    stream = queryset.iterator(chunk_size=CHUNK)
    while chunk := list(islice(stream, CHUNK)):
        ids = [c.pk for c in chunk]
        names = environment_names(request.user, ids)
        tags = tags_of(ids)
        reasons = problem_reasons(ids, request.user)
        for c in chunk:
            yield {
                "id": c.pk,
                "name": c.name,
                "kind": c.kind,
                "url": c.url,
                "state": c.status,
                "environments": names.get(c.pk, []),
                "tags": tags.get(c.pk, []),
                "uptime_24h": c.uptime_24h,
                "uptime_7d": c.uptime_7d,
                "uptime_30d": c.uptime_30d,
                "latency_mean_ms": c.latency_mean_ms,
                "last_probe_at": c.last_probe_at.astimezone(zone).isoformat()
                if c.last_probe_at
                else None,
                "last_probe_ok": c.last_probe_ok,
                "problem": problem(c, reasons.get(c.pk, "")) or "",
                "managed": c.managed,
                "created_at": c.created_at.astimezone(zone).isoformat(),
            }


class _Line:
    """A file-like object whose write returns the text (csv.writer into a stream)."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        value = "; ".join(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def as_csv(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield "\ufeff"  # a byte-order mark: spreadsheets read the names as UTF-8
    yield writer.writerow(FIELDS)
    for record in records:
        yield writer.writerow([_cell(record[name]) for name in FIELDS])


def as_json(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    first = True
    for record in records:
        yield ("\n" if first else ",\n") + json.dumps(record, ensure_ascii=False)
        first = False
    yield "\n]\n"
