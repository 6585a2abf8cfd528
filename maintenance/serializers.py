"""API shapes for maintenance windows. Types are checked here; what a window may cover and who
may change it is decided by ``maintenance.windows`` alone.

Times are ISO 8601 and answered in UTC; a time without an offset is read as UTC. A recurring
window's ``start_time`` is a wall-clock time in its ``timezone``."""

from __future__ import annotations

from datetime import UTC as _UTC

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from connections.kinds import kind_choices
from connections.models import Connection
from core.api import FlatErrors, IdList, StrictCharField, VisibleId
from environments.models import Environment

from . import schedule, windows
from .models import MAX_DURATION_MINUTES, Window, validate_timezone

NEXT_IN_ANSWER = 3


def _ids(model, visible, **kwargs) -> IdList:
    return IdList(child_relation=VisibleId(model, visible), **kwargs)


def _user(serializer: serializers.Serializer):
    request = serializer.context.get("request")  # absent while the schema is generated
    return getattr(request, "user", None)


class OccurrenceSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="UTC.")
    end = serializers.DateTimeField(help_text="UTC (exclusive).")


class TimezoneField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=64, validators=[validate_timezone], **kwargs)


class WindowSerializer(FlatErrors, serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    name = StrictCharField(max_length=200)
    kind = serializers.ChoiceField(choices=Window.Kind.choices)
    environment = VisibleId(
        Environment,
        lambda user: windows.manageable_environments(user),
        allow_null=True,
        required=False,
        help_text="An environment's window (its owner and editors manage it; it covers only "
        "that environment); absent or null: the caller's own. Set on create only.",
    )
    starts_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="One-off: its start (no offset: UTC)."
    )
    ends_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="One-off: its end, after the start."
    )
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        max_length=7,
        help_text="Recurring: the days an occurrence starts on, 0 = Monday … 6 = Sunday.",
    )
    start_time = serializers.TimeField(
        required=False,
        allow_null=True,
        help_text="Recurring: the wall-clock start time (HH:MM) in the window's timezone.",
    )
    duration_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_DURATION_MINUTES,
        help_text="Recurring: how long each occurrence lasts (elapsed minutes).",
    )
    timezone = TimezoneField(
        required=False, help_text="An IANA timezone, e.g. Europe/Amsterdam (default UTC)."
    )
    connections = _ids(
        Connection,
        lambda user: windows.scope_connections(user),
        required=False,
        help_text="Connections it covers (ones the caller may change).",
    )
    environments = _ids(
        Environment,
        lambda user: windows.scope_environments(user),
        required=False,
        help_text="Environments whose connections (now and later) it covers.",
    )
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=kind_choices()),
        required=False,
        max_length=50,
        help_text="Connections of these kinds, inside the window's environment (without one: "
        "the whole fleet, staff only).",
    )
    enabled = serializers.BooleanField(required=False)
    active = serializers.SerializerMethodField(help_text="An occurrence is under way now.")
    next_occurrences = serializers.SerializerMethodField(
        help_text=f"The next {NEXT_IN_ANSWER} occurrences not over yet (the current one "
        "first), in UTC."
    )

    class Meta:
        model = Window
        fields = (
            "id",
            "name",
            "kind",
            "owner",
            "environment",
            "starts_at",
            "ends_at",
            "weekdays",
            "start_time",
            "duration_minutes",
            "timezone",
            "connections",
            "environments",
            "kinds",
            "enabled",
            "ended_at",
            "created_at",
            "active",
            "next_occurrences",
        )
        read_only_fields = ("ended_at", "created_at")

    def get_active(self, window: Window) -> bool:
        return schedule.active_occurrence(window, self._now()) is not None

    @extend_schema_field(OccurrenceSerializer(many=True))
    def get_next_occurrences(self, window: Window) -> list[dict]:
        return [
            {"start": start.astimezone(_UTC).isoformat(), "end": end.astimezone(_UTC).isoformat()}
            for start, end in schedule.next_occurrences(window, self._now(), NEXT_IN_ANSWER)
        ]

    def _now(self):
        if "now" not in self.context:
            self.context["now"] = timezone.now()
        return self.context["now"]

    def to_representation(self, instance: Window) -> dict:
        data = super().to_representation(instance)
        request = self.context.get("request")
        visible = Connection.all_objects.restrict(getattr(request, "user", None)).values("pk")
        data["connections"] = sorted(
            instance.connections.filter(pk__in=visible).values_list("pk", flat=True)
        )
        data["environments"] = sorted(e.pk for e in instance.environments.all())
        data["environment"] = instance.environment_id
        return data

    def validate_environment(self, value):
        if self.instance is not None and value != self.instance.environment:
            raise serializers.ValidationError("A window's environment cannot be changed.")
        return value
