"""One FilterSet for the table, the bulk actions and (later) the API and exports."""

import django_filters
from django import forms
from django.core.exceptions import EmptyResultSet
from django.db.models import Count, Exists, OuterRef
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from core.ids import IdModelChoiceFilter, IdModelMultipleChoiceFilter
from environments.models import Environment

from .choices import Status
from .kinds import kind_choices
from .models import Connection, Location


def _environments(request):
    user = getattr(request, "user", None)
    return Environment.objects.restrict(user).order_by("name")


SEARCH_IDS_MAX = 5000  # a search's matches read once, as ids, up to this many


def _tags(request):
    from .tagging import visible_tags

    return visible_tags(getattr(request, "user", None))


def _locations(request):
    return Location.objects.order_by("name")


def _connections(request):
    user = getattr(request, "user", None)
    return Connection.all_objects.restrict(user)


class ConnectionFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search", max_length=200)
    # No join behind these two: no DISTINCT (django-filter adds one by default).
    # Checkboxes and radios: the table's filter dropdowns render them one by one.
    status = django_filters.MultipleChoiceFilter(
        choices=Status.choices,
        method="filter_status",
        distinct=False,
        widget=forms.CheckboxSelectMultiple,
    )
    kind = django_filters.MultipleChoiceFilter(
        choices=kind_choices, distinct=False, widget=forms.CheckboxSelectMultiple
    )
    environment = IdModelMultipleChoiceFilter(
        field_name="environments",
        queryset=_environments,
        label="Environment",
        widget=forms.CheckboxSelectMultiple,
    )
    # any of the tags chosen (as the other dropdowns: any of the states, any of the kinds), by
    # name in the URL (?tag=prod); only tags on connections the user may see are choices
    tag = django_filters.ModelMultipleChoiceFilter(
        field_name="tags__name",
        queryset=_tags,
        to_field_name="name",
        method="filter_tags",
        label="Tag",
        widget=forms.CheckboxSelectMultiple,
    )
    # probed from any of the locations chosen, by the rule probing goes by (its own choice, else
    # its environments' defaults, else every location); by name in the URL (?location=eu-west)
    location = django_filters.ModelMultipleChoiceFilter(
        queryset=_locations,
        to_field_name="name",
        method="filter_locations",
        label="Location",
        widget=forms.CheckboxSelectMultiple,
    )
    managed = django_filters.BooleanFilter(
        label="Managed",
        widget=forms.RadioSelect(
            choices=[("", "Any"), ("true", "Managed"), ("false", "Unmanaged")]
        ),
    )

    # a connection the user may see (a hidden one is a 400, as a hidden environment is: the
    # table never tells which ids exist)
    depends_on = IdModelChoiceFilter(
        queryset=_connections,
        method="filter_depends_on",
        label="Depends on",
        widget=forms.HiddenInput,
    )

    class Meta:
        model = Connection
        fields = (
            "q",
            "status",
            "kind",
            "environment",
            "tag",
            "location",
            "managed",
            "depends_on",
        )

    def filter_depends_on(self, queryset, name, value):
        """The connections that depend on connection ``value`` (set by users, or discovered in
        it): the table's link from a parent to its children."""
        from .dependencies import children_of

        if value is None:
            return queryset
        return queryset.filter(pk__in=children_of([value.pk]).values("pk"))

    @extend_schema_field(OpenApiTypes.STR)  # a tag's name, repeated for several
    def filter_tags(self, queryset, name, values):
        if not values:
            return queryset
        tagged = Connection.tags.through.objects.filter(
            connection=OuterRef("pk"), tag__in=[tag.pk for tag in values]
        )
        return queryset.filter(Exists(tagged))

    @extend_schema_field(OpenApiTypes.STR)  # a location's name, repeated for several
    def filter_locations(self, queryset, name, values):
        """The connections probed from any of ``values``, as ``probing.rounds.locations_of``
        decides it, in one statement: their own choice names one; or they chose none and one of
        their environments' defaults names one, or none of their environments has a default
        (every location). Each an EXISTS on an indexed through table, never a read of rows."""
        if not values:
            return queryset
        ids = [location.pk for location in values]
        chosen = Connection.locations.through.objects.filter(connection=OuterRef("pk"))
        memberships = Environment.connections.through.objects.filter(connection=OuterRef("pk"))
        defaults = Environment.probe_locations.through.objects
        inherits_one = memberships.filter(
            environment__in=defaults.filter(location__in=ids).values("environment")
        )
        inherits_any = memberships.filter(environment__in=defaults.values("environment"))
        return queryset.filter(
            Exists(chosen.filter(location__in=ids))
            | (~Exists(chosen) & (Exists(inherits_one) | ~Exists(inherits_any)))
        )

    def search(self, queryset, name, value):
        """Name or URL containing the text (case-insensitive), or a tag that is the text: the
        ids of the three, as a UNION (each an index read on PostgreSQL: the trigram indexes of
        migration 0023 and the tag's name), not an OR that would read every row."""
        value = value.strip()
        if not value:
            return queryset
        # each branch among the rows already allowed (the user's visible ones): its cost is
        # what the user may see, never the whole fleet
        rows = queryset.order_by()
        ids = (
            rows.filter(name__icontains=value)
            .values_list("pk", flat=True)
            .union(
                rows.filter(url__icontains=value).values_list("pk", flat=True),
                rows.filter(
                    Exists(
                        Connection.tags.through.objects.filter(
                            connection=OuterRef("pk"), tag__name=value.lower()
                        )
                    )
                ).values_list("pk", flat=True),
            )
        )
        # read once: the page, its pager and the count of each state each filter by it (a
        # subquery would run the index reads again in each); a search matching very many rows
        # stays a subquery
        try:
            found = list(ids[: SEARCH_IDS_MAX + 1])
        except EmptyResultSet:  # nothing visible at all: a union of nothing
            return queryset.none()
        if len(found) <= SEARCH_IDS_MAX:
            return queryset.filter(pk__in=found)
        return queryset.filter(pk__in=ids)

    def filter_status(self, queryset, name, values):
        # Deleted connections are tombstones: only a status filter that names them shows them.
        return queryset.filter(status__in=values) if values else queryset

    def counts_by_status(self, cap: int | None = None) -> dict[str, int]:
        """Rows per state under every filter but the status one (deleted ones included); with
        ``cap``, each counted up to ``cap + 1`` only (connections/listing.py)."""
        queryset = self.queryset
        for name, value in self.form.cleaned_data.items():
            if name != "status":
                queryset = self.filters[name].filter(queryset, value)
        distinct = bool(self.form.cleaned_data.get("environment"))
        if cap is not None:
            from .listing import capped_counts

            return capped_counts(queryset.distinct() if distinct else queryset, Status.values, cap)
        rows = queryset.order_by().values("status").annotate(n=Count("pk", distinct=distinct))
        return {row["status"]: row["n"] for row in rows}

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if Status.DELETED not in (self.form.cleaned_data.get("status") or ()):
            queryset = queryset.exclude(status=Status.DELETED)
        return queryset
