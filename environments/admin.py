from django.contrib import admin

from .models import Environment, EnvironmentMembership


class MembershipInline(admin.TabularInline):
    model = EnvironmentMembership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "connection_count", "updated_at")
    search_fields = ("name", "description")
    list_filter = ("owner",)
    autocomplete_fields = ("owner", "connections", "credentials")
    inlines = (MembershipInline,)

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(connection_total=Count("connections"))

    @admin.display(description="Connections", ordering="connection_total")
    def connection_count(self, obj: Environment) -> int:
        return obj.connection_total
