from django.urls import path

import core.ids  # noqa: F401  (registers <id:…>, an id of at most 18 digits)

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_center, name="center"),
    path("read/", views.mark_read, name="mark-read"),
    path("bell/", views.bell, name="bell"),
    path("channels/", views.channel_list, name="channels"),
    path("channels/add/", views.channel_add, name="channel-add"),
    path("channels/<id:pk>/", views.channel_detail, name="channel"),
    path("channels/<id:pk>/edit/", views.channel_edit, name="channel-edit"),
    path("channels/<id:pk>/delete/", views.channel_delete, name="channel-delete"),
    path("channels/<id:pk>/test/", views.channel_test, name="channel-test"),
    path("channels/<id:pk>/rotate/", views.channel_rotate, name="channel-rotate"),
    path("channels/<id:pk>/rules/", views.rule_add, name="rule-add"),
    path("channels/<id:pk>/rules/<id:rule_pk>/delete/", views.rule_delete, name="rule-delete"),
    path("watch/connection/<id:pk>/", views.watch_connection, name="watch-connection"),
    path("watch/environment/<id:pk>/", views.watch_environment, name="watch-environment"),
]
