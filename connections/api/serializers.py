"""API shapes. Secrets are write-only fields: accepted, never returned.

Every id and integer a body may carry is bounded before it reaches a query: a number wider than
a database integer is a 400 naming its field, never an OverflowError."""

import math

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from connections.choices import BULK_ACTIONS, Status
from connections.identity import validate_endpoint_url
from connections.kinds import kind_choices
from connections.models import Connection, ConnectionTransition
from core.ids import MAX_ID
from core.sanitize import clean_text
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership


class BoundedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key, checked to be an integer from 1 to 2**63-1 before it is looked up: DRF's
    field hands any number to the query (OverflowError on SQLite beyond 64 bits, and on every
    database for ``1e999``, which JSON reads as infinity)."""

    default_error_messages = {
        "out_of_range": f"Expected an id from 1 to {MAX_ID}, got {{pk_value}}.",
    }

    def to_internal_value(self, data):
        if isinstance(data, str) and data.strip().isascii() and data.strip().isdigit():
            digits = data.strip().lstrip("0") or "0"
            if len(digits) > len(str(MAX_ID)):
                self.fail("out_of_range", pk_value=f"{digits[:20]}… ({len(digits)} digits)")
            data = int(digits)
        elif isinstance(data, float) and math.isfinite(data) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 1 <= data <= MAX_ID:
            shown = data if data.bit_length() <= 128 else f"a number of {data.bit_length()} bits"
            self.fail("out_of_range", pk_value=shown)
        return super().to_internal_value(data)


def bounded_ids(**kwargs) -> serializers.ListField:
    """A list of ids: each an integer from 1 to 2**63-1."""
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), **kwargs
    )


class EnvironmentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Environment
        fields = ("id", "name")


class ConnectionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True, default=None)
    environments = EnvironmentRefSerializer(many=True, read_only=True)
    credential = BoundedPrimaryKeyRelatedField(
        queryset=Credential.objects.none(), allow_null=True, required=False
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
            "cluster",
            "identity",
            "failure_threshold",
            "probe_interval",
            "retry_interval",
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


class UsernameField(serializers.SlugRelatedField):
    """A user by name; a name no database could hold is "not found", never a query."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or clean_text(data, 150) != data:
            self.fail("does_not_exist", slug_name=self.slug_field, value="(unreadable)")
        return super().to_internal_value(data)


class MemberSerializer(serializers.ModelSerializer):
    username = UsernameField(
        source="user", slug_field="username", queryset=get_user_model().objects.all()
    )

    class Meta:
        model = EnvironmentMembership
        fields = ("id", "username", "role")


class EnvironmentSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    members = MemberSerializer(source="memberships", many=True, read_only=True)
    connection_count = serializers.SerializerMethodField()

    class Meta:
        model = Environment
        fields = ("id", "name", "description", "owner", "members", "connection_count")

    def get_connection_count(self, environment) -> int:
        return environment.connections.count()

    def validate_name(self, value: str) -> str:
        owner = self.instance.owner if self.instance else self.context["request"].user
        twins = Environment.objects.filter(owner=owner, name=value.strip())
        if self.instance is not None:
            twins = twins.exclude(pk=self.instance.pk)
        if twins.exists():
            raise serializers.ValidationError("There is already an environment so named.")
        return value.strip()


class AssignSerializer(serializers.Serializer):
    add = bounded_ids(max_length=10000, required=False)
    remove = bounded_ids(max_length=10000, required=False)


class GroupTransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=BULK_ACTIONS)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


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
