"""The picker's options: ``<option>`` elements of the connections a user may see, found by
name or URL (GET ?q=…&exclude=1,2&may=change&environment=3), for htmx to put in the picker's
list."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.ids import parse_id

from . import choices, excluded


@login_required
@require_GET
def options(request: HttpRequest) -> HttpResponse:
    # the form's environment, when its connections must be that environment's: empty is none
    # (a window or a channel of one's own), anything else that is no id finds nothing
    raw = request.GET.get("environment", "").strip()
    environment = parse_id(raw) if raw else None
    found = []
    if not raw or environment is not None:
        found = list(
            choices(
                request.user,
                request.GET.get("q", ""),
                excluded(request.GET.get("exclude", "")),
                request.GET.get("may", "view"),
                environment,
            )
        )
    return render(request, "connections/_picker_options.html", {"options": found})
