"""API shapes. Secrets are write-only fields: accepted, never returned."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from connections.choices import BULK_ACTIONS, Status
from connections.identity import validate_endpoint_url
from connections.kinds import kind_choices
from connections.models import Connection, ConnectionTransition, Credential
from connections.secrets import secret_values
from environments.models import Environment, EnvironmentMembership


class EnvironmentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Environment
        fields = ("id", "name")


class ConnectionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True, default=None)
    environments = EnvironmentRefSerializer(many=True, read_only=True)
    credential = serializers.PrimaryKeyRelatedField(
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
            "last_probe_at",
            "last_probe_ok",
            "last_probe_error",
            "last_latency_ms",
            "status_changed_at",
            "created_at",
            "updated_at",
        )
        # everything but what a PATCH may change
        read_only_fields = tuple(
            f
            for f in fields
            if f
            not in ("name", "url", "metadata", "credential", "failure_threshold", "probe_interval")
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
    credential = serializers.PrimaryKeyRelatedField(
        queryset=Credential.objects.none(), allow_null=True, required=False
    )
    environments = serializers.PrimaryKeyRelatedField(
        queryset=Environment.objects.none(), many=True, required=False
    )
    failure_threshold = serializers.IntegerField(min_value=2, max_value=100, default=3)
    probe_interval = serializers.IntegerField(min_value=5, max_value=86400, required=False)

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
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=10000, required=False
    )
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


class CredentialSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    secret = serializers.CharField(write_only=True, required=False, allow_blank=True)
    username = serializers.CharField(write_only=True, required=False, allow_blank=True)
    used_by = serializers.SerializerMethodField()
    environments = EnvironmentRefSerializer(many=True, read_only=True)

    class Meta:
        model = Credential
        fields = ("id", "name", "kind", "owner", "secret", "username", "used_by", "environments")

    def get_used_by(self, credential) -> int:
        return credential.connections.exclude(status=Status.DELETED).count()

    def validate(self, data):
        kind = data.get("kind") or getattr(self.instance, "kind", None)
        secret = data.pop("secret", "")
        username = data.pop("username", "")
        owner = self.instance.owner if self.instance else self.context["request"].user
        name = data.get("name") or getattr(self.instance, "name", "")
        twins = Credential.objects.filter(owner=owner, name=name)
        if self.instance is not None:
            twins = twins.exclude(pk=self.instance.pk)
        if twins.exists():
            raise serializers.ValidationError({"name": ["There is already a credential so named."]})
        kind_changed = self.instance is not None and kind != self.instance.kind
        if not secret and (self.instance is None or kind_changed):
            raise serializers.ValidationError(
                {"secret": ["This kind of credential needs a secret."]}
            )
        if secret:
            probe = Credential(kind=kind)
            try:
                probe.set_secret(secret_values(kind, secret=secret, username=username))
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"secret": exc.messages}) from None
            data["secret_ciphertext"] = probe.secret_ciphertext
        return data


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.SlugRelatedField(
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
    add = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    remove = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)


class GroupTransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=BULK_ACTIONS)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class KubeconfigImportSerializer(serializers.Serializer):
    kubeconfig = serializers.CharField(max_length=512 * 1024)
    environments = serializers.PrimaryKeyRelatedField(
        queryset=Environment.objects.none(), many=True, required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["environments"].child_relation.queryset = Environment.objects.restrict(
                request.user, "change"
            )
