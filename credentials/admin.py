"""The credentials admin: the same restrict rule and form as the pages; the secret is write-only."""

from django.contrib import admin
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from .forms import CredentialForm
from .models import Credential


class CredentialAdminForm(CredentialForm):
    class Meta(CredentialForm.Meta):
        fields = ("name", "kind", "owner", "allow_insecure_tls")

    def credential_owner(self):
        return self.cleaned_data.get("owner")


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialAdminForm

    def get_queryset(self, request):
        # the admin's autocomplete reads this too: a staff user finds only what they may use
        return super().get_queryset(request).restrict(request.user, "use")

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.is_owned_by(request.user):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.is_owned_by(request.user):
            return False
        return super().has_delete_permission(request, obj)

    @method_decorator(sensitive_post_parameters("secret"))
    def changeform_view(self, request, *args, **kwargs):
        return super().changeform_view(request, *args, **kwargs)

    list_display = ("name", "kind", "owner", "secret_state", "bounds", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    autocomplete_fields = ("owner",)
    readonly_fields = ("secret_state", "bounds")

    @admin.display(description="Secret")
    def secret_state(self, obj: Credential) -> str:
        return "•••••••• (stored encrypted)" if obj.has_secret else "not set"

    @admin.display(description="May be sent to")
    def bounds(self, obj: Credential) -> str:
        return ", ".join(obj.endpoints or []) or "nowhere yet"
