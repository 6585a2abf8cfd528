"""The locations page, under /locations/."""

from django.urls import path

import core.ids  # noqa: F401  (registers <id:…>, an id of at most 18 digits)

from . import views

app_name = "locations"

urlpatterns = [
    path("", views.location_list, name="list"),
    path("add/", views.location_add, name="add"),
    path("<id:pk>/remove/", views.location_remove, name="remove"),
]
