"""The connections table: filters, per-state counts, the page of rows (also the fragment
the live refresh fetches).

The view stays thin: the data of a page comes from the functions below, each a fixed number
of queries whatever the page size (a page costs the same with 3 rows or 200)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.db import connection as db
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django_tables2 import RequestConfig

from core import access
from environments.models import Environment
from live.conditional import refreshable

from ..choices import BULK_ACTIONS, STATUS_STYLE, Status
from ..filters import ConnectionFilterSet
from ..listing import (
    COUNT_CAP,
    OFFSET_PAGES_MAX_ROWS,
    cursor_of,
    decode_cursor,
    keyset_order,
    keyset_page,
)
from ..mentions import Seen
from ..models import Connection, ProbeResult, entered
from ..tables import ConnectionTable
from .common import actions_for, visible

PAGE_SIZES = (25, 50, 100, 200)
HEARTBEAT_LENGTH = 30  # probe results per row's heartbeat bar
TICK_ERROR_CHARS = 160  # of a result's error, in its tick's tooltip (the row shows the last one)
# States whose row shows why it got there (the reason of the transition into it).
REASON_STATES = (Status.NOT_FOUND, Status.DISCONNECTED)
# Filters shown as chips, in this order, with their labels.
CHIP_FILTERS = (
    ("q", "Search"),
    ("status", "Status"),
    ("kind", "Kind"),
    ("environment", "Environment"),
    ("managed", "Managed"),
    ("depends_on", "Depends on"),
)


def _page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("per_page", 50))
    except ValueError:
        return 50
    return size if size in PAGE_SIZES else 50


def _summary(request: HttpRequest, counts: dict[str, int]) -> list[dict]:
    """The summary strip: a count and a filter link per state."""
    strip = []
    for status, label in Status.choices:
        if status == Status.DELETED:
            continue
        query = _unpaged(request)
        query.setlist("status", [status])
        count = counts.get(status, 0)
        strip.append(
            {
                "status": status,
                "label": label,
                "count": count,  # COUNT_CAP + 1: more than COUNT_CAP
                "count_text": f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}",
                "style": STATUS_STYLE[status],
                "query": query.urlencode(),
            }
        )
    return strip


PAGER_PARAMS = ("page", "after", "before", "last")


def _unpaged(request: HttpRequest) -> QueryDict:
    """This table's query without the pager's parameters (a page number or a cursor)."""
    query = request.GET.copy()
    for name in PAGER_PARAMS:
        query.pop(name, None)
    return query


def _link(request: HttpRequest, **params) -> str:
    """This table's URL with the pager's parameters replaced by ``params``."""
    query = _unpaged(request)
    for name, value in params.items():
        query[name] = str(value)
    return "?" + query.urlencode()


def _page(request, table, queryset, per_page: int, total: int, capped: bool):
    """The rows of the page asked for, and its pager.

    Page numbers cover the first ``OFFSET_PAGES_MAX_ROWS`` rows (an OFFSET that deep is
    cheap); past them, and whenever the URL carries a cursor, a page is read by cursor
    (``connections.listing``): Next, Previous and Last stay an index range at any depth. A
    sort that cannot be read by cursor (state, environments, last probe) stops at the last
    numbered page and says so."""
    ordering = list(table.data.data.query.order_by)
    keyset = keyset_order(ordering)
    total_text = f"{COUNT_CAP:,}+" if capped else f"{total:,}"
    pager = {"total_text": total_text, "first": _link(request), "numbered": False}
    if keyset:
        fields, descending = keyset
        last = request.GET.get("last") == "1"
        cursor = decode_cursor(request.GET.get("after", ""), fields) or decode_cursor(
            request.GET.get("before", ""), fields, before=True
        )
        if cursor or last:
            records, more = keyset_page(queryset, fields, descending, cursor, per_page, last)
            backwards = last or cursor.before
            has_next = (not backwards and more) or (cursor is not None and cursor.before)
            has_previous = (backwards and more) or (cursor is not None and not cursor.before)
            if records and has_next:
                pager["next"] = _link(request, after=cursor_of(records[-1], fields).encode())
            if records and has_previous:
                previous = cursor_of(records[0], fields, before=True).encode()
                pager["previous"] = _link(request, before=previous)
            pager["last"] = None if last else _link(request, last=1)
            pager["position"] = f"{len(records):,} rows of {total_text}"
            return records, pager
    max_page = max(1, OFFSET_PAGES_MAX_ROWS // per_page)
    # past the count's cap the number of pages is not known: any page to max_page may exist
    last_page = max_page if capped else max(1, -(-total // per_page))
    try:
        asked = int(request.GET.get("page", 1))
    except ValueError:
        asked = 1
    number = min(max(1, asked), last_page, max_page)
    if asked > max_page and not keyset:
        pager["note"] = (
            f"Pages by number end at row {OFFSET_PAGES_MAX_ROWS:,}: narrow the filters, or "
            "sort by name, kind, URL, date added or managed to page further."
        )
    start = (number - 1) * per_page
    records = list(table.data.data[start : start + per_page + 1])  # one more: is there more?
    more = len(records) > per_page
    records = records[:per_page]
    pager.update(
        numbered=True,
        number=number,
        pages=None if capped else last_page,
        position=f"{start + 1 if records else 0:,}–{start + len(records):,} of {total_text}",
    )
    if number > 1:
        pager["previous"] = _link(request, page=number - 1)
    if more and number < max_page:
        pager["next"] = _link(request, page=number + 1)
    elif more and keyset and records:
        pager["next"] = _link(request, after=cursor_of(records[-1], keyset[0]).encode())
    if keyset and more:
        pager["last"] = _link(request, last=1)
    elif not capped and last_page <= max_page and number < last_page:
        pager["last"] = _link(request, page=last_page)
    return records, pager


# ---- the data of a page ------------------------------------------------------------------


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


def heartbeat(results: list[Beat], length: int = HEARTBEAT_LENGTH) -> list[dict]:
    """A row's bar: ``length`` ticks, oldest left, newest right; slots before the first result
    are "none yet"."""
    ticks = [{"state": "none"} for _ in range(length - len(results))]
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
    return ticks


def problem(connection: Connection, reason: str = "") -> str:
    """The last failure's reason shown in the row: why it is Not Found / Disconnected, else the
    failing probe's error; empty for a healthy row."""
    if connection.status in REASON_STATES:
        return reason or connection.last_probe_error
    if connection.last_probe_ok is False:
        return connection.last_probe_error
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


def filter_chips(request: HttpRequest, filterset: ConnectionFilterSet) -> list[dict]:
    """One removable chip per active filter value, each with the query that removes it."""
    if not filterset.is_valid():
        return []
    data = filterset.form.cleaned_data
    chips = []

    def without(name: str, raw: str | None = None) -> str:
        query = _unpaged(request)  # another set of rows: from its first page
        if raw is None:
            query.pop(name, None)
        else:
            query.setlist(name, [v for v in query.getlist(name) if v != raw])
        return query.urlencode()

    for name, label in CHIP_FILTERS:
        value = data.get(name)
        if name == "q" and value and value.strip():
            chips.append(
                {"key": name, "label": f"{label}: “{value.strip()}”", "query": without(name)}
            )
        elif name in ("status", "kind") and value:
            names = dict(filterset.filters[name].field.choices)
            for raw in value:
                chips.append(
                    {
                        "key": f"{name}-{raw}",
                        "label": f"{label}: {names.get(raw, raw)}",
                        "query": without(name, raw),
                    }
                )
        elif name == "environment" and value:
            for environment in value:
                chips.append(
                    {
                        "key": f"{name}-{environment.pk}",
                        "label": f"{label}: {environment.name}",
                        "query": without(name, str(environment.pk)),
                    }
                )
        elif name == "managed" and value is not None:
            text = "managed" if value else "unmanaged"
            chips.append({"key": name, "label": f"{label}: {text}", "query": without(name)})
        elif name == "depends_on" and value is not None:
            chips.append({"key": name, "label": f"{label}: {value.name}", "query": without(name)})
    return chips


def _active_filters(request: HttpRequest) -> str:
    """The filter values the table shows, for the script that keeps the filter form in step
    after a chip, a summary link or the history changes them."""
    names = ("q", "status", "kind", "environment", "managed", "per_page", "sort", "depends_on")
    return json.dumps({name: request.GET.getlist(name) for name in names})


def page_rows(request: HttpRequest, records: list[Connection]) -> list[dict]:
    """The rows of a page with what each shows beyond its fields: four queries for any page
    size (who may change which, the heartbeats, the reasons, the environments' names)."""
    ids = [r.pk for r in records]
    may = access.ids_by_action(
        request.user, Connection.all_objects, ids, (access.TRANSITION, access.CHANGE)
    )
    can_transition, can_change = may[access.TRANSITION], may[access.CHANGE]
    results = recent_results(ids)
    reasons = problem_reasons(ids, request.user)
    environments = environment_names(request.user, ids)
    return [
        {
            "connection": record,
            "style": STATUS_STYLE[record.status],
            "can_transition": record.pk in can_transition,
            "can_change": record.pk in can_change,
            "actions": actions_for(record) if record.pk in can_transition else [],
            "environments": environments.get(record.pk, []),
            "heartbeat": heartbeat(results[record.pk]),
            "failed_beats": sum(1 for r in results[record.pk] if not r.ok),
            "beats": len(results[record.pk]),
            "problem": problem(record, reasons.get(record.pk, "")),
            "url": url_parts(record.url),
        }
        for record in records
    ]


def environment_names(user, ids: list[int]) -> dict[int, list[str]]:
    """The names of the environments ``user`` may see of each connection in ``ids``, by name:
    one query of names (a prefetch of Environment rows cost twice as much)."""
    names: dict[int, list[str]] = {}
    if not ids:
        return names
    through = Environment.connections.through
    for connection_id, name in (
        through.objects.filter(
            connection_id__in=ids, environment__in=Environment.objects.restrict(user)
        )
        .order_by("environment__name", "environment_id")
        .values_list("connection_id", "environment__name")
    ):
        names.setdefault(connection_id, []).append(name)
    return names


def table_context(
    request: HttpRequest, *, base=None, table_url: str | None = None, order_by=None
) -> dict:
    """The table component: ``base`` scopes it (an environment's page), ``table_url`` is where
    its fragment refreshes from."""
    base = visible(request) if base is None else base
    filterset = ConnectionFilterSet(request.GET, queryset=base, request=request)
    counts: dict[str, int] = {}
    if filterset.is_valid():
        queryset = filterset.qs
        counts = filterset.counts_by_status(cap=COUNT_CAP)
    else:
        queryset = Connection.objects.none()
    chosen = filterset.form.cleaned_data.get("status") if filterset.is_valid() else None
    shown = chosen or [s for s in Status.values if s != Status.DELETED]
    table = ConnectionTable(queryset, order_by=order_by)
    # sorted by the first environment's name among those the user may see
    table.visible_environments = Environment.objects.restrict(request.user)
    RequestConfig(request, paginate=False).configure(table)  # the order, from ?sort=
    per_page, total = _page_size(request), sum(counts.get(s, 0) for s in shown)
    capped = any(counts.get(s, 0) > COUNT_CAP for s in shown)
    records, pager = _page(request, table, queryset, per_page, total, capped)
    query = _unpaged(request)
    clear = QueryDict(mutable=True)
    for name in ("per_page", "sort"):
        if request.GET.get(name):
            clear[name] = request.GET[name]
    rows = page_rows(request, records)
    return {
        "filterset": filterset,
        "table": table,
        "rows": rows,
        # the bulk bar, when a row of the page is one the user may act on
        "may_act": any(row["can_transition"] for row in rows),
        "total": total,
        "total_capped": capped,
        "pager": pager,
        "summary": _summary(request, counts),
        "chips": filter_chips(request, filterset),
        "clear_query": clear.urlencode(),
        "active_filters": _active_filters(request),
        "query": query.urlencode(),
        "current_query": request.GET.urlencode(),
        "page_sizes": PAGE_SIZES,
        "page_size": _page_size(request),
        "bulk_environments": Environment.objects.restrict(request.user, "change"),
        "bulk_actions": BULK_ACTIONS,
        "table_url": table_url or reverse("connections:list"),
    }


@login_required
@refreshable
def connection_list(request: HttpRequest) -> HttpResponse:
    context = table_context(request)
    status = 200 if context["filterset"].is_valid() else 400
    return render_table_page(request, "connections/list.html", context, status)


def render_table_page(request: HttpRequest, template: str, context: dict, status: int = 200):
    """The whole page, or just the table fragment for htmx (not for a history restore, which
    needs the whole page); caches keep the two apart."""
    fragment = bool(request.htmx and not request.htmx.history_restore_request)
    context["fragment"] = fragment
    response = render(
        request, "connections/_table.html" if fragment else template, context, status=status
    )
    patch_vary_headers(response, ["HX-Request"])
    return response
