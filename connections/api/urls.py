"""The connections' part of the API: its viewsets (``routes``, registered by the project's
router in ``meshplay/api.py``) and its one plain view."""

from django.urls import path

from . import views

routes = [("connections", views.ConnectionViewSet, "connection")]

urlpatterns = [
    path("kubeconfig-import/", views.KubeconfigImportView.as_view(), name="kubeconfig-import"),
]
