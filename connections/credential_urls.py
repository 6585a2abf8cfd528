from django.urls import path

from . import credential_views as views

app_name = "credentials"

urlpatterns = [
    path("", views.credential_list, name="list"),
    path("add/", views.credential_edit, name="add"),
    path("<int:pk>/edit/", views.credential_edit, name="edit"),
    path("<int:pk>/delete/", views.credential_delete, name="delete"),
]
