from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path

import core.ids  # noqa: F401  (registers <id:…>, an id of at most 18 digits)
from accounts import views as account_views
from accounts.forms import SignInForm
from overview import search as overview_search
from overview import views as overview_views

admin.site.site_header = "Meshplay Connections"
admin.site.site_title = "Meshplay Connections"

urlpatterns = [
    path("", overview_views.overview, name="overview"),
    path("search/", overview_search.search, name="search"),
    path("accounts/login/", LoginView.as_view(form_class=SignInForm), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/tokens/", account_views.token_list, name="tokens"),
    path("accounts/tokens/<id:pk>/revoke/", account_views.token_revoke, name="token-revoke"),
    path("accounts/", include("accounts.urls")),  # the users page, invitations
    path("", include("operations.urls")),
    path("connections/", include("connections.urls")),
    path("credentials/", include("credentials.urls")),
    path("environments/", include("environments.urls")),
    path("notifications/", include("notifications.urls")),
    path("maintenance/", include("maintenance.urls")),
    path("locations/", include("connections.locations.urls")),  # where probes run from
    path("api/", include("meshplay.api")),
    path("admin/", admin.site.urls),
]

# a server error's page is drawn without the request's context (whatever broke may be in it)
handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error_page"
