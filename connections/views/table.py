"""The connections table page (its component: ``connections.table``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from live.conditional import refreshable

from ..table import render_table_page, table_context
from ..table.columns import choose_columns
from ..ui import back


@login_required
@refreshable
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
