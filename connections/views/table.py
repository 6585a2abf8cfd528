"""The connections table page (its component: ``connections.table``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from live.conditional import refreshable

from .. import exporting
from ..table import render_table_page, table_context
from ..table.columns import choose_columns, shown_columns
from ..ui import back


@login_required
@refreshable(also=shown_columns)
def connection_list(request: HttpRequest) -> HttpResponse:
    context = table_context(request)
    status = 200 if context["filterset"].is_valid() else 400
    return render_table_page(request, "connections/list.html", context, status)


@login_required
@require_POST
def table_columns(request: HttpRequest) -> HttpResponse:
    """Save the columns this user shows (the chooser's checkboxes: ``show``, any number). An
    unknown name is ignored; the answer is 204 to the chooser's script, else back to the table."""
    choose_columns(request.user, set(request.POST.getlist("show")))
    if request.htmx:
        return HttpResponse(status=204)
    return back(request, "connections:list")


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@login_required
@require_GET
def connection_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The rows the table's filters (in the query) select, in the table's order, as a file:
    every one of them, not a page. Filters that are not valid: 400, nothing written."""
    try:
        found = exporting.matching(request, request.GET)
    except exporting.NotMatching as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    # bounded: a web worker writes ~4,000 rows a second and is stopped at its timeout, which
    # would cut the file without a word; past the cap the filters must narrow it
    if found.order_by()[exporting.EXPORT_MAX : exporting.EXPORT_MAX + 1].exists():
        return HttpResponse(
            f"More than {exporting.EXPORT_MAX:,} connections match: narrow the filters to "
            f"export at most {exporting.EXPORT_MAX:,} at once (or use the API's pages).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    rows = exporting.ordered(request, found, request.GET.get("sort", ""))
    write = exporting.as_csv if fmt == "csv" else exporting.as_json
    response = StreamingHttpResponse(
        write(exporting.rows(request, rows)), content_type=EXPORT_TYPES[fmt]
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="connections-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
