from django.urls import path

import core.ids  # noqa: F401  (registers <id:…>, an id of at most 18 digits)

from . import views

app_name = "environments"

urlpatterns = [
    path("", views.environment_list, name="list"),
    path("add/", views.environment_edit, name="add"),
    path("<id:pk>/", views.environment_detail, name="detail"),
    path("<id:pk>/edit/", views.environment_edit, name="edit"),
    path("<id:pk>/delete/", views.environment_delete, name="delete"),
    path("<id:pk>/transition/", views.environment_transition, name="transition"),
    path("<id:pk>/connections/", views.environment_connections, name="connections"),
    path("<id:pk>/credentials/", views.environment_credentials, name="credentials"),
    path("<id:pk>/members/", views.environment_members, name="members"),
    path("<id:pk>/member-options/", views.environment_member_options, name="member-options"),
]
