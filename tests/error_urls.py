"""The project's URLs and three that fail, for tests/test_error_pages.py."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import include, path


def broken(request):
    secret_in_a_local = "BROKEN-VIEW-SECRET-42"  # noqa: F841  (a debug page would show it)
    raise RuntimeError("the view broke")


def forbidden(request):
    raise PermissionDenied


def gone(request):
    raise Http404("no such thing: GONE-DETAIL")


urlpatterns = [
    path("broken/", broken),
    path("forbidden/", forbidden),
    path("gone/", gone),
    path("", include("meshplay.urls")),
]
handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error_page"
