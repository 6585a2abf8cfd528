"""The connections table: columns and their sort orders (rendered by connections/_table.html)."""

import django_tables2 as tables
from django.db.models import Case, IntegerField, Min, Q, Value, When

from connections.choices import Status
from connections.models import Connection


class ConnectionTable(tables.Table):
    # Every order ends with the id: rows that tie keep one order from page to page, and the
    # pages read by cursor (connections/listing.py) continue exactly where a numbered one ended.
    name = tables.Column(order_by=("name", "pk"))
    kind = tables.Column(order_by=("kind", "pk"))
    url = tables.Column(verbose_name="URL / server", order_by=("url", "pk"))
    environments = tables.Column(
        verbose_name="Environments", empty_values=(), order_by=("first_environment",)
    )
    status = tables.Column(verbose_name="State")
    heartbeat = tables.Column(verbose_name="Last 30 probes", empty_values=(), orderable=False)
    last_probe_at = tables.Column(verbose_name="Last probe", order_by=("last_probe_at", "pk"))
    problem = tables.Column(verbose_name="Problem", empty_values=(), orderable=False)
    created_at = tables.Column(verbose_name="Added", order_by=("created_at", "pk"))
    managed = tables.Column(verbose_name="Managed", order_by=("managed", "pk"))

    class Meta:
        model = Connection
        fields = (
            "name",
            "kind",
            "url",
            "environments",
            "status",
            "heartbeat",
            "last_probe_at",
            "problem",
            "created_at",
            "managed",
        )
        order_by = ("name",)

    def order_status(self, queryset, is_descending):
        """States in lifecycle order (the order of the spec's table), not alphabetical."""
        rank = Case(
            *(When(status=status, then=Value(i)) for i, status in enumerate(Status.values)),
            output_field=IntegerField(),
        )
        queryset = queryset.annotate(status_rank=rank).order_by(
            ("-" if is_descending else "") + "status_rank", "name", "pk"
        )
        return queryset, True

    def order_environments(self, queryset, is_descending):
        visible = getattr(self, "visible_environments", None)
        condition = {"filter": Q(environments__in=visible)} if visible is not None else {}
        first = Min("environments__name", **condition)
        queryset = queryset.annotate(first_environment=first).order_by(
            ("-" if is_descending else "") + "first_environment", "pk"
        )
        return queryset, True
