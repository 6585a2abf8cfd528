from django.urls import path, re_path

import core.ids  # noqa: F401  (registers <id:…>, an id of at most 18 digits)

from . import views
from .dependencies import views as dependency_views
from .picking import views as picking_views

app_name = "connections"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("add/", views.connection_add, name="add"),
    path("import/", views.kubeconfig_import, name="import"),
    path("bulk/", views.connection_bulk, name="bulk"),
    path("columns/", views.table_columns, name="columns"),
    re_path(r"^export\.(?P<fmt>csv|json)$", views.connection_export, name="export"),
    path("options/", picking_views.options, name="options"),
    path("<id:pk>/", views.connection_detail, name="detail"),
    path("<id:pk>/edit/", views.connection_edit, name="edit"),
    path("<id:pk>/transition/", views.connection_transition, name="transition"),
    path("<id:pk>/probe/", views.connection_probe, name="probe"),
    path("<id:pk>/parents/", dependency_views.connection_parents, name="parents"),
]
