"""The connections table: columns and their sort orders (rendered by connections/_table.html)."""

import django_tables2 as tables
from django.db.models import Min

from .models import Connection


class ConnectionTable(tables.Table):
    name = tables.Column(order_by=("name", "pk"))
    kind = tables.Column()
    url = tables.Column(verbose_name="URL / server")
    environments = tables.Column(
        verbose_name="Environments", empty_values=(), order_by=("first_environment",)
    )
    status = tables.Column()
    last_probe_at = tables.Column(verbose_name="Last probe")
    created_at = tables.Column(verbose_name="Added")
    managed = tables.Column(verbose_name="Managed")

    class Meta:
        model = Connection
        fields = (
            "name",
            "kind",
            "url",
            "environments",
            "status",
            "last_probe_at",
            "created_at",
            "managed",
        )
        order_by = ("name",)

    def order_environments(self, queryset, is_descending):
        queryset = queryset.annotate(first_environment=Min("environments__name")).order_by(
            ("-" if is_descending else "") + "first_environment", "pk"
        )
        return queryset, True
