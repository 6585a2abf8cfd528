from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from credentials.api import CredentialViewSet
from maintenance import api as maintenance
from notifications import api as notifications

from . import views

router = DefaultRouter()
router.register("connections", views.ConnectionViewSet, basename="connection")
router.register("credentials", CredentialViewSet, basename="credential")
router.register("environments", views.EnvironmentViewSet, basename="environment")
router.register(
    "notifications/channels", notifications.ChannelViewSet, basename="notification-channel"
)
router.register("notifications/rules", notifications.RuleViewSet, basename="notification-rule")
router.register("notifications/events", notifications.EventViewSet, basename="notification-event")
router.register(
    "notifications/deliveries", notifications.DeliveryViewSet, basename="notification-delivery"
)
router.register("maintenance/windows", maintenance.WindowViewSet, basename="maintenance-window")

urlpatterns = [
    path("kubeconfig-import/", views.KubeconfigImportView.as_view(), name="kubeconfig-import"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    *router.urls,
]
