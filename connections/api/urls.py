from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("connections", views.ConnectionViewSet, basename="connection")
router.register("credentials", views.CredentialViewSet, basename="credential")
router.register("environments", views.EnvironmentViewSet, basename="environment")

urlpatterns = [
    path("kubeconfig-import/", views.KubeconfigImportView.as_view(), name="kubeconfig-import"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    *router.urls,
]
