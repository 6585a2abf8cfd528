from django.urls import path

import core.ids  # noqa: F401  (registers <id:…>, an id of at most 18 digits)

from . import views

app_name = "credentials"

urlpatterns = [
    path("", views.credential_list, name="list"),
    path("add/", views.credential_edit, name="add"),
    path("<id:pk>/edit/", views.credential_edit, name="edit"),
    path("<id:pk>/delete/", views.credential_delete, name="delete"),
]
