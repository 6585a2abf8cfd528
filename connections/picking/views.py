"""The picker's options: ``<option>`` elements of the connections a user may see, found by
name or URL (GET ?q=…&exclude=1,2), for htmx to put in the picker's list."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import choices, excluded


@login_required
@require_GET
def options(request: HttpRequest) -> HttpResponse:
    found = list(
        choices(
            request.user,
            request.GET.get("q", ""),
            excluded(request.GET.get("exclude", "")),
            request.GET.get("may", "view"),
        )
    )
    return render(request, "connections/_picker_options.html", {"options": found})
