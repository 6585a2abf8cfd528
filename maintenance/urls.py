from django.urls import path

import core.ids  # noqa: F401  (registers <id:…>, an id of at most 18 digits)

from . import views

app_name = "maintenance"

urlpatterns = [
    path("", views.window_list, name="list"),
    path("add/", views.window_add, name="add"),
    path("<id:pk>/", views.window_detail, name="detail"),
    path("<id:pk>/edit/", views.window_edit, name="edit"),
    path("<id:pk>/end-now/", views.window_end_now, name="end-now"),
    path("<id:pk>/enable/", views.window_enable, name="enable"),
    path("<id:pk>/delete/", views.window_delete, name="delete"),
]
