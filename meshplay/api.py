"""The project's API at /api/: each app's viewsets (its ``routes``) on one router, whose root
lists them, and the OpenAPI schema with its two readers."""

from django.shortcuts import render
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import APIRootView, DefaultRouter

from connections.api import urls as connections
from credentials import api as credentials
from environments import api as environments
from maintenance import api as maintenance
from notifications import api as notifications


class Root(APIRootView):
    """The API's root: JSON for a client, and for a browser (it asks for HTML first) a page that
    lists the same endpoints and links the reference (Swagger UI, ReDoc) and the tokens page."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        accept = request.headers.get("Accept", "")
        if "format" in request.query_params or not accept.startswith("text/html"):
            return response
        return render(request, "api_root.html", {"endpoints": sorted(response.data.items())})


# The reference pages may load only what the server serves (the sidecar's vendored bundles):
# ReDoc's bundle would fetch Redocly's logo from its CDN, which this policy refuses.
SAME_ORIGIN_ONLY = (
    "default-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; connect-src 'self'"
)


def same_origin_only(view):
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = SAME_ORIGIN_ONLY
        return response

    return wrapped


class Router(DefaultRouter):
    APIRootView = Root


router = Router()
for app in (connections, credentials, environments, notifications, maintenance):
    for prefix, viewset, basename in app.routes:
        router.register(prefix, viewset, basename=basename)

urlpatterns = [
    *connections.urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        same_origin_only(SpectacularSwaggerView.as_view(url_name="schema")),
        name="docs",
    ),
    path(
        "redoc/",
        same_origin_only(SpectacularRedocView.as_view(url_name="schema")),
        name="redoc",
    ),
    *router.urls,
]
