"""Friendly error pages, also in the default run (``make run`` has DEBUG on): Django's debug
404 lists every URL pattern and its debug 500 shows a traceback with the request's locals, and
a person trying the product should meet neither.

``FriendlyErrors`` (a middleware, outermost but for security and static files) answers, while
DEBUG and ``FRIENDLY_ERRORS`` (default on) are: a URL nothing matches (no ``resolver_match``)
and an ``Http404`` a view raised with ``404.html``; any other exception a view raised with
``500.html`` (the traceback goes to the log). A 404 a view answers itself is left as it is.
With DEBUG off Django's own handlers draw the same templates (``handler404``/``handler500``).
The API answers JSON instead, in its one error shape (``core/api.py``). Set
``FRIENDLY_ERRORS=false`` to see Django's debug pages while developing.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

log = logging.getLogger("django.request")


def _ours(request: HttpRequest) -> bool:
    return settings.DEBUG and getattr(settings, "FRIENDLY_ERRORS", True)


def _api(request: HttpRequest | None) -> bool:
    return request is not None and request.path.startswith("/api/")


def _api_error(status: int, code: str, message: str) -> JsonResponse:
    """The API's error shape (core.api.error), for answers made before any API view ran."""
    body = {"error": {"status": status, "code": code, "message": message}}
    return JsonResponse(body, status=status)


def server_error_page(request: HttpRequest | None = None) -> HttpResponse:
    """``500.html``, drawn without the request's context (whatever broke may be in it)."""
    if _api(request):
        return _api_error(500, "server_error", "Server error.")
    return HttpResponse(render_to_string("500.html"), status=500)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: the page, or for the API the JSON its clients read."""
    if _api(request):
        return _api_error(404, "not_found", "Not found.")
    return HttpResponse(render_to_string("404.html", request=request), status=404)


class FriendlyErrors:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 404 and request.resolver_match is None and _ours(request):
            return not_found(request)  # no URL matched: Django's debug page lists them all
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
        from django.http import Http404

        if not _ours(request):
            return None
        if isinstance(exception, Http404):
            return not_found(request)
        if isinstance(exception, PermissionDenied | BadRequest | SuspiciousOperation):
            return None  # Django answers these with 403 / 400 pages, DEBUG or not
        log.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=exception,
            extra={"request": request},
        )
        return server_error_page(request)
