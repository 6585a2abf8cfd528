"""The project's API at /api/: each app's viewsets (its ``routes``) on one router, whose root
lists them, and the OpenAPI schema with its two readers."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from connections.api import urls as connections
from credentials import api as credentials
from environments import api as environments
from maintenance import api as maintenance
from notifications import api as notifications

router = DefaultRouter()
for app in (connections, credentials, environments, notifications, maintenance):
    for prefix, viewset, basename in app.routes:
        router.register(prefix, viewset, basename=basename)

urlpatterns = [
    *connections.urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    *router.urls,
]
