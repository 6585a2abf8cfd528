from django.contrib import admin

from .models import Window


@admin.register(Window)
class WindowAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "timezone", "environment", "owner", "enabled", "ended_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    raw_id_fields = ("owner", "environment", "connections")
    filter_horizontal = ("environments",)

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "change")
