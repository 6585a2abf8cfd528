from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from connections import ops, token_views

admin.site.site_header = "Meshplay Connections"
admin.site.site_title = "Meshplay Connections"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="connections:list", permanent=False)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/tokens/", token_views.token_list, name="tokens"),
    path("accounts/tokens/<int:pk>/revoke/", token_views.token_revoke, name="token-revoke"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("connections/", include("connections.urls")),
    path("credentials/", include("connections.credential_urls")),
    path("environments/", include("environments.urls")),
    path("api/", include("connections.api.urls")),
    path("admin/", admin.site.urls),
]
