"""The users page of staff and the invitee's pages, under /accounts/."""

from django.urls import path

import core.ids  # noqa: F401  (registers <id:…>, an id of at most 18 digits)

from . import views

app_name = "users"

urlpatterns = [
    path("users/", views.user_list, name="list"),
    path("users/invite/", views.user_invite, name="invite"),
    path("users/<id:pk>/active/", views.user_active, name="active"),
    path("users/<id:pk>/staff/", views.user_staff, name="staff"),
    path("users/<id:pk>/invite-again/", views.user_invite_again, name="invite-again"),
    path("welcome/", views.welcome, name="welcome"),
    path("welcome/password/", views.welcome_password, name="set-password"),
]
