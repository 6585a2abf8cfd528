"""The overview page, and the fragment its live refresh fetches."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from connections.probing.state import probing_state
from live.conditional import refreshable

from . import summary

REFRESH_SECONDS = 15


def _probing(request: HttpRequest) -> str:
    state = probing_state()
    request.probing = state
    return str(state) if state.state == "stalled" else state.state


@login_required
@require_GET
@refreshable(also=_probing)
def overview(request: HttpRequest) -> HttpResponse:
    """The whole page, or only its content for an htmx poll (a history restore needs the page);
    caches keep the two apart."""
    fragment = request.htmx and not request.htmx.history_restore_request
    context = {
        "overview": summary.build(request.user),
        "refresh_seconds": REFRESH_SECONDS,
        "probing": getattr(request, "probing", None) or probing_state(),
    }
    template = "overview/_content.html" if fragment else "overview/page.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
