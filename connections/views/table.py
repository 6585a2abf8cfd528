"""The connections table: filters, per-state counts, the page of rows (also the fragment
the live refresh fetches)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django_tables2 import RequestConfig

from environments.models import Environment

from ..choices import BULK_ACTIONS, STATUS_STYLE, Status
from ..filters import ConnectionFilterSet
from ..lifecycle import editable_ids
from ..models import Connection
from ..tables import ConnectionTable
from .common import actions_for, visible

PAGE_SIZES = (25, 50, 100, 200)


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
        query = request.GET.copy()
        query.setlist("status", [status])
        query.pop("page", None)
        strip.append(
            {
                "status": status,
                "label": label,
                "count": counts.get(status, 0),
                "style": STATUS_STYLE[status],
                "query": query.urlencode(),
            }
        )
    return strip


class CountedPaginator(Paginator):
    """A paginator told its count: the per-state counts already hold it, no COUNT(*) again."""

    def __init__(self, object_list, per_page, *, known_count: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.known_count = known_count

    @property
    def count(self) -> int:
        return self.known_count


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
        counts = filterset.counts_by_status()
    else:
        queryset = Connection.objects.none()
    chosen = filterset.form.cleaned_data.get("status") if filterset.is_valid() else None
    shown = chosen or [s for s in Status.values if s != Status.DELETED]
    # environment names only from environments the user may see
    environments = Environment.objects.restrict(request.user).order_by("name")
    table = ConnectionTable(
        queryset.prefetch_related(Prefetch("environments", queryset=environments)),
        order_by=order_by,
    )
    table.visible_environments = environments
    RequestConfig(request, paginate=False).configure(table)  # the order, from ?sort=
    per_page, total = _page_size(request), sum(counts.get(s, 0) for s in shown)
    last_page = max(1, -(-total // per_page))
    try:
        number = min(max(1, int(request.GET.get("page", 1))), last_page)
    except ValueError:
        number = 1
    table.paginate(CountedPaginator, per_page=per_page, page=number, known_count=total)
    records = list(table.page.object_list.data) if table.page else []
    can_change = editable_ids(request.user, [r.pk for r in records])
    rows = [
        {
            "connection": record,
            "style": STATUS_STYLE[record.status],
            "actions": actions_for(record) if record.pk in can_change else [],
            "environments": [e.name for e in record.environments.all()],
        }
        for record in records
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "filterset": filterset,
        "table": table,
        "rows": rows,
        "summary": _summary(request, counts),
        "query": query.urlencode(),
        "current_query": request.GET.urlencode(),
        "page_sizes": PAGE_SIZES,
        "page_size": _page_size(request),
        "bulk_environments": Environment.objects.restrict(request.user, "change"),
        "bulk_actions": BULK_ACTIONS,
        "table_url": table_url or reverse("connections:list"),
    }


@login_required
def connection_list(request: HttpRequest) -> HttpResponse:
    context = table_context(request)
    status = 200 if context["filterset"].is_valid() else 400
    return render_table_page(request, "connections/list.html", context, status)


def render_table_page(request: HttpRequest, template: str, context: dict, status: int = 200):
    """The whole page, or just the table fragment for htmx (not for a history restore, which
    needs the whole page); caches keep the two apart."""
    fragment = request.htmx and not request.htmx.history_restore_request
    response = render(
        request, "connections/_table.html" if fragment else template, context, status=status
    )
    patch_vary_headers(response, ["HX-Request"])
    return response
