"""API shapes. Secrets are write-only fields: accepted, never returned.

Every id and integer a body may carry is bounded before it reaches a query: a number wider than
a database integer is a 400 naming its field, never an OverflowError."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from connections.choices import BULK_ACTIONS, Status, quorum_choices
from connections.identity import validate_endpoint_url
from connections.kinds import kind_choices
from connections.models import Connection, ConnectionTransition, Location
from connections.models.location import LOCATION_NAME, QUORUM_NUMBER_MAX
from connections.tagging import clean_tags
from core.api import BoundedPrimaryKeyRelatedField, bounded_ids
from credentials.models import Credential
from environments.models import Environment


class EnvironmentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Environment
        fields = ("id", "name")


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 20}
)
class TagsField(serializers.Field):
    """A connection's tags as a list of names; written as a list of names (at most 20)."""

    def to_representation(self, value):
        return [tag.name for tag in value.all()]

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("Tags are a list of names.")
        try:
            return clean_tags(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


LOCATIONS_MAX = 100  # names in one list: more than any fleet has locations


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "maxLength": 40},
        "maxItems": LOCATIONS_MAX,
    }
)
class LocationsField(serializers.Field):
    """Locations as a list of their names (a connection's own, an environment's default); an
    empty list: none chosen. Read in one query; an unknown name is a 400 naming it."""

    def to_representation(self, value):
        return [location.name for location in value.all()]

    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
            raise serializers.ValidationError('Locations are a list of names, e.g. ["eu-west"].')
        if len(data) > LOCATIONS_MAX:
            raise serializers.ValidationError(f"At most {LOCATIONS_MAX} locations.")
        names = list(dict.fromkeys(data))
        # a name no location can have is unknown without a query (a NUL never reaches one)
        found = {
            location.name: location
            for location in Location.objects.filter(
                name__in=[n for n in names if LOCATION_NAME.fullmatch(n)]
            )
        }
        unknown = [name for name in names if name not in found]
        if unknown:
            known = ", ".join(Location.objects.order_by("name").values_list("name", flat=True))
            shown = ", ".join(f"'{name[:40]}'" for name in unknown[:5])
            raise serializers.ValidationError(
                f"No location is named {shown}. "
                + (f"The locations are: {known}." if known else "There is no location yet.")
            )
        return [found[name] for name in names]


QUORUM_MESSAGE = (
    f'A quorum is "" (a majority, the default), "any", "all" or a number of locations '
    f"from 1 to {QUORUM_NUMBER_MAX}."
)


class ConnectionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True, default=None)
    environments = EnvironmentRefSerializer(many=True, read_only=True)
    # names; a PATCH with "tags" replaces them all (connections.tagging's rules)
    tags = TagsField(required=False)
    credential = BoundedPrimaryKeyRelatedField(
        queryset=Credential.objects.none(), allow_null=True, required=False
    )
    # where it is probed from: names; [] inherits (its environments' defaults, else every
    # location); docs/locations.md
    locations = LocationsField(required=False)
    quorum = serializers.ChoiceField(
        choices=quorum_choices(QUORUM_NUMBER_MAX),
        required=False,
        allow_blank=True,
        error_messages={"invalid_choice": QUORUM_MESSAGE},
    )

    class Meta:
        model = Connection
        fields = (
            "id",
            "name",
            "kind",
            "url",
            "status",
            "managed",
            "metadata",
            "owner",
            "credential",
            "environments",
            "tags",
            "cluster",
            "identity",
            "failure_threshold",
            "probe_interval",
            "retry_interval",
            "locations",
            "quorum",
            "locations_note",
            "last_probe_at",
            "last_probe_ok",
            "last_probe_error",
            "last_latency_ms",
            "status_changed_at",
            "created_at",
            "updated_at",
        )
        # everything but what a PATCH may change (editing.update_connection, as the edit page)
        read_only_fields = tuple(
            f
            for f in fields
            if f
            not in (
                "name",
                "url",
                "metadata",
                "credential",
                "failure_threshold",
                "probe_interval",
                "retry_interval",
                "tags",
                "locations",
                "quorum",
            )
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["credential"].queryset = Credential.objects.restrict(request.user)

    def validate_url(self, value: str) -> str:
        try:
            validate_endpoint_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value.strip()

    def validate_metadata(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Metadata must be a JSON object.")
        return value


class ConnectionCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=kind_choices())
    url = serializers.CharField(max_length=500)
    credential = BoundedPrimaryKeyRelatedField(
        queryset=Credential.objects.none(), allow_null=True, required=False
    )
    environments = BoundedPrimaryKeyRelatedField(
        queryset=Environment.objects.none(), many=True, required=False
    )
    failure_threshold = serializers.IntegerField(min_value=2, max_value=100, default=3)
    probe_interval = serializers.IntegerField(min_value=5, max_value=86400, required=False)
    retry_interval = serializers.IntegerField(min_value=1, max_value=3600, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")  # absent while the schema is generated
        if request is not None:
            self.fields["credential"].queryset = Credential.objects.restrict(request.user)
            self.fields["environments"].child_relation.queryset = Environment.objects.restrict(
                request.user, "change"
            )

    def validate_url(self, value: str) -> str:
        return ConnectionSerializer.validate_url(self, value)


class TransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=Status.choices)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class BulkTransitionSerializer(serializers.Serializer):
    ids = bounded_ids(max_length=10000, required=False)
    to = serializers.ChoiceField(choices=BULK_ACTIONS)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, data):
        if not data.get("ids"):
            raise serializers.ValidationError({"ids": ["Give at least one connection id."]})
        return data


class BulkReportSerializer(serializers.Serializer):
    changed = serializers.ListField(child=serializers.CharField())
    refused = serializers.ListField(child=serializers.DictField())


class HistorySerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.get_username", read_only=True, default=None)

    class Meta:
        model = ConnectionTransition
        fields = ("from_status", "to_status", "trigger", "user", "reason", "created_at")


class KubeconfigImportSerializer(serializers.Serializer):
    kubeconfig = serializers.CharField(max_length=512 * 1024)
    environments = BoundedPrimaryKeyRelatedField(
        queryset=Environment.objects.none(), many=True, required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["environments"].child_relation.queryset = Environment.objects.restrict(
                request.user, "change"
            )


class ProbeNowSerializer(serializers.Serializer):
    """What probing now found: ``reason`` is "reachable" or the failure said with a hint."""

    ok = serializers.BooleanField()
    reason = serializers.CharField()
    latency_ms = serializers.FloatField(allow_null=True)
    status = serializers.ChoiceField(choices=Status.choices)
    error_class = serializers.CharField(allow_blank=True)
