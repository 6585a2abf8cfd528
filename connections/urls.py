from django.urls import path

from . import views

app_name = "connections"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("add/", views.connection_add, name="add"),
    path("import/", views.kubeconfig_import, name="import"),
    path("bulk/", views.connection_bulk, name="bulk"),
    path("<int:pk>/", views.connection_detail, name="detail"),
    path("<int:pk>/transition/", views.connection_transition, name="transition"),
]
