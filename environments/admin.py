"""The environments admin: the same rules as the pages (``Environment.objects.restrict``); only
an environment's owner (or a superuser) changes it, manages its members or shares a
credential into it, and only their own credentials."""

from django.contrib import admin
from django.db.models import Count

from core import access
from credentials.models import Credential

from .models import Environment, EnvironmentMembership


def _owns(request, obj) -> bool:
    """The owner's (or a superuser's) rights on ``obj``; on the add page (no ``obj`` yet) the
    one who may add it sets its members too (the admin's add permission decides that)."""
    if obj is None:
        return access.active(request.user)
    return access.may(request.user, obj, access.OWN)


class MembershipInline(admin.TabularInline):
    model = EnvironmentMembership
    extra = 0
    autocomplete_fields = ("user",)

    def has_add_permission(self, request, obj=None) -> bool:
        return _owns(request, obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return _owns(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return _owns(request, obj) and super().has_delete_permission(request, obj)


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "connection_count", "updated_at")
    search_fields = ("name", "description")
    list_filter = ("owner",)
    autocomplete_fields = ("owner", "connections", "credentials")
    inlines = (MembershipInline,)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not request.user.is_superuser:
            queryset = queryset.filter(pk__in=Environment.objects.restrict(request.user))
        return queryset.annotate(connection_total=Count("connections"))

    def get_readonly_fields(self, request, obj=None):
        return () if request.user.is_superuser else ("owner",)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not _owns(request, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and not _owns(request, obj):
            return False
        return super().has_delete_permission(request, obj)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "credentials" and not request.user.is_superuser:
            # one shares only one's own credentials
            kwargs["queryset"] = Credential.objects.filter(owner=request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Connections", ordering="connection_total")
    def connection_count(self, obj: Environment) -> int:
        return obj.connection_total
