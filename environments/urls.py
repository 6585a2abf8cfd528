from django.urls import path

from . import views

app_name = "environments"

urlpatterns = [
    path("", views.environment_list, name="list"),
    path("add/", views.environment_edit, name="add"),
    path("<int:pk>/", views.environment_detail, name="detail"),
    path("<int:pk>/edit/", views.environment_edit, name="edit"),
    path("<int:pk>/delete/", views.environment_delete, name="delete"),
    path("<int:pk>/transition/", views.environment_transition, name="transition"),
    path("<int:pk>/connections/", views.environment_connections, name="connections"),
    path("<int:pk>/credentials/", views.environment_credentials, name="credentials"),
    path("<int:pk>/members/", views.environment_members, name="members"),
]
