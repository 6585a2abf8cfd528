"""The connections table: columns and their sort orders (rendered by connections/_table.html)."""

import django_tables2 as tables
from django.core.cache import cache
from django.db.models import Case, F, IntegerField, Min, Q, Value, When

from connections.choices import Status
from connections.models import Connection, TableColumns
from environments.models import Environment

# The columns a user may hide (the column chooser), with the chooser's words; the name and the
# state always show. Hidden unless chosen: the ones a 1,440 px window has no room for beside
# the reason (docs/guides/dashboard.md).
OPTIONAL_COLUMNS = {
    "kind": "Kind",
    "url": "URL / server",
    "environments": "Environments",
    "tags": "Tags",
    "heartbeat": "Last 30 probes",
    "uptime_24h": "Uptime 24 h",
    "uptime_7d": "Uptime 7 d",
    "uptime_30d": "Uptime 30 d",
    "latency_mean_ms": "Latency 24 h (mean)",
    "last_probe_at": "Last probe",
    "problem": "Problem",
    "created_at": "Added",
    "managed": "Managed",
}
FIGURE_COLUMNS = ("uptime_24h", "uptime_7d", "uptime_30d", "latency_mean_ms")
COLUMNS_CACHE_SECONDS = 24 * 3600
DEFAULT_HIDDEN = ("tags", "uptime_7d", "uptime_30d", "latency_mean_ms", "created_at", "managed")


def _cache_key(user) -> str:
    return f"table-columns:{user.pk}"


def hidden_columns(user) -> list[str]:
    """The optional columns ``user`` hides: their choice, or the defaults. Read through the
    cache (no query on a page once read; the chooser writes both)."""
    if not getattr(user, "is_authenticated", False):
        return list(DEFAULT_HIDDEN)
    held = getattr(user, "_hidden_columns", None)  # read once a request (the user is per request)
    if held is not None:
        return held
    chosen = cache.get(_cache_key(user))
    if not isinstance(chosen, list):
        row = TableColumns.objects.filter(user=user).values_list("hidden", flat=True).first()
        chosen = row if isinstance(row, list) else list(DEFAULT_HIDDEN)
        cache.set(_cache_key(user), chosen, COLUMNS_CACHE_SECONDS)
    user._hidden_columns = [name for name in chosen if name in OPTIONAL_COLUMNS]
    return user._hidden_columns


def shown_columns(request) -> str:
    """What else a table's fragment shows beyond its data (``live.conditional.refreshable``'s
    ``also``): the columns its user hides, so that a change of them is a change of the
    fragment for every open tab of theirs, never a 304."""
    return "columns:" + ",".join(hidden_columns(request.user))


def choose_columns(user, shown: set[str]) -> list[str]:
    """Keep the columns ``user`` shows (the others of OPTIONAL_COLUMNS hide); unknown names are
    ignored. Returns the hidden ones."""
    hidden = [name for name in OPTIONAL_COLUMNS if name not in shown]
    TableColumns.objects.update_or_create(user=user, defaults={"hidden": hidden})
    cache.set(_cache_key(user), hidden, COLUMNS_CACHE_SECONDS)
    user._hidden_columns = hidden
    return hidden


class ConnectionTable(tables.Table):
    # Every order ends with the id: rows that tie keep one order from page to page, and the
    # pages read by cursor (connections/listing.py) continue exactly where a numbered one ended.
    name = tables.Column(order_by=("name", "pk"))
    kind = tables.Column(order_by=("kind", "pk"))
    url = tables.Column(verbose_name="URL / server", order_by=("url", "pk"))
    environments = tables.Column(
        verbose_name="Environments", empty_values=(), order_by=("first_environment",)
    )
    tags = tables.Column(verbose_name="Tags", empty_values=(), orderable=False)
    status = tables.Column(verbose_name="State")
    heartbeat = tables.Column(verbose_name="Last 30 probes", empty_values=(), orderable=False)
    uptime_24h = tables.Column(verbose_name="Uptime 24 h")
    uptime_7d = tables.Column(verbose_name="Uptime 7 d")
    uptime_30d = tables.Column(verbose_name="Uptime 30 d")
    latency_mean_ms = tables.Column(verbose_name="Latency 24 h")
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
            "tags",
            "status",
            "heartbeat",
            "uptime_24h",
            "uptime_7d",
            "uptime_30d",
            "latency_mean_ms",
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

    def __init__(self, data, *, user, **kwargs):
        super().__init__(data, **kwargs)
        # sorted by the first environment's name among those ``user`` may see: never by one
        # they may not (an order is a way to learn a name)
        self.visible_environments = Environment.objects.restrict(user)

    def order_environments(self, queryset, is_descending):
        first = Min("environments__name", filter=Q(environments__in=self.visible_environments))
        queryset = queryset.annotate(first_environment=first).order_by(
            ("-" if is_descending else "") + "first_environment", "pk"
        )
        return queryset, True

    # A connection without a figure ("no data": nothing probed in the window) sorts last both
    # ways: the worst first, or the best first, then the ones nobody can say anything about.
    def _figures_last(self, field, queryset, is_descending):
        order = F(field).desc(nulls_last=True) if is_descending else F(field).asc(nulls_last=True)
        tie = F("pk").desc() if is_descending else F("pk").asc()
        return queryset.order_by(order, tie), True

    def order_uptime_24h(self, queryset, is_descending):
        return self._figures_last("uptime_24h", queryset, is_descending)

    def order_uptime_7d(self, queryset, is_descending):
        return self._figures_last("uptime_7d", queryset, is_descending)

    def order_uptime_30d(self, queryset, is_descending):
        return self._figures_last("uptime_30d", queryset, is_descending)

    def order_latency_mean_ms(self, queryset, is_descending):
        return self._figures_last("latency_mean_ms", queryset, is_descending)
