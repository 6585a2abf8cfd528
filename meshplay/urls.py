from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Meshplay Connections"
admin.site.site_title = "Meshplay Connections"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="connections:list", permanent=False)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("connections/", include("connections.urls")),
    path("credentials/", include("connections.credential_urls")),
    path("environments/", include("environments.urls")),
    path("admin/", admin.site.urls),
]
