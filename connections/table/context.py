"""The connections table as a component: filters, per-state counts, a page of rows (also the
fragment the live refresh fetches), for the table page and an environment's page.

A page's data comes from the functions below, each a fixed number of queries whatever the page
size (a page costs the same with 3 rows or 200)."""

from __future__ import annotations

import json
import time

from django.http import HttpRequest, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django_tables2 import RequestConfig

from connections.choices import BULK_ACTIONS, STATUS_STYLE, Status
from connections.filters import ConnectionFilterSet
from connections.listing import (
    COUNT_CAP,
    OFFSET_PAGES_MAX_ROWS,
    cursor_of,
    decode_cursor,
    keyset_order,
    keyset_page,
)
from connections.models import Connection
from connections.probing.outcomes import is_partial
from connections.table.columns import (
    FIGURE_COLUMNS,
    OPTIONAL_COLUMNS,
    ConnectionTable,
    hidden_columns,
)
from connections.tagging import tags_of
from connections.ui import actions_for, visible
from core import access
from environments.models import Environment

from .rows import heartbeat, problem, problem_reasons, recent_results, url_parts

PAGE_SIZES = (25, 50, 100, 200)
# States whose row shows why it got there (the reason of the transition into it).
# Filters shown as chips, in this order, with their labels.
CHIP_FILTERS = (
    ("q", "Search"),
    ("status", "Status"),
    ("kind", "Kind"),
    ("environment", "Environment"),
    ("tag", "Tag"),
    ("location", "Location"),
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
        elif name in ("tag", "location") and value:
            for chosen in value:  # by name in the URL
                chips.append(
                    {
                        "key": f"{name}-{chosen.name}",
                        "label": f"{label}: {chosen.name}",
                        "query": without(name, chosen.name),
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
    names = (
        "q",
        "status",
        "kind",
        "environment",
        "tag",
        "location",
        "managed",
        "per_page",
        "sort",
        "depends_on",
    )
    return json.dumps({name: request.GET.getlist(name) for name in names})


def page_rows(request: HttpRequest, records: list[Connection]) -> list[dict]:
    """The rows of a page with what each shows beyond its fields: four queries for any page
    size (who may change which, the heartbeats, the reasons, the environments' names), five
    with the tags column."""
    ids = [r.pk for r in records]
    may = access.ids_by_action(
        request.user, Connection.all_objects, ids, (access.TRANSITION, access.CHANGE)
    )
    can_transition, can_change = may[access.TRANSITION], may[access.CHANGE]
    results = recent_results(ids)
    reasons = problem_reasons(ids, request.user)
    environments = environment_names(request.user, ids)
    # the tags only when their column shows (hidden by default: no query then)
    tags = tags_of(ids) if "tags" not in hidden_columns(request.user) else {}
    now = time.time()
    return [
        {
            "connection": record,
            "style": STATUS_STYLE[record.status],
            "can_transition": record.pk in can_transition,
            "can_change": record.pk in can_change,
            "actions": actions_for(record) if record.pk in can_transition else [],
            "environments": environments.get(record.pk, []),
            "tags": tags.get(record.pk, []),
            "heartbeat": heartbeat(results[record.pk], now=now),
            "detail": reverse("connections:detail", args=[record.pk]),
            "failed_beats": sum(1 for r in results[record.pk] if not r.ok),
            "beats": len(results[record.pk]),
            "problem": problem(record, reasons.get(record.pk, "")),
            # what the last round saw beyond the state (probed from several locations)
            "partial": is_partial(record.locations_note),
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
    table = ConnectionTable(queryset, order_by=order_by, user=request.user)
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
        # the column chooser: every optional column, and the ones this user hides
        "optional_columns": OPTIONAL_COLUMNS.items(),
        "hidden_columns": hidden_columns(request.user),
        "figure_columns": FIGURE_COLUMNS,
    }


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
