"""The credentials API: names, kinds and bounds; the secret is write-only and never returned."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import ProtectedError
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.ids import ID_PATTERN

from .bounds import parse_endpoints
from .models import Credential
from .secrets import secret_values
from .views import DELETED, credentials_for


class SharedIntoSerializer(serializers.Serializer):
    """An environment a credential is shared into; the queryset (``credentials_for``) prefetches
    only those the reader may see."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class EndpointField(serializers.CharField):
    """An endpoint as typed: ``parse_endpoints`` names what is wrong with it, NUL included."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]


class CredentialSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False
    )
    username = serializers.CharField(write_only=True, required=False, allow_blank=True)
    endpoints = serializers.ListField(
        child=EndpointField(max_length=300),
        max_length=100,
        required=False,
        help_text="Origins (scheme://host[:port]) the secret may be sent to; for a kubeconfig, "
        "its clusters' servers (read-only).",
    )
    used_by = serializers.IntegerField(read_only=True)
    environments = SharedIntoSerializer(many=True, read_only=True)

    class Meta:
        model = Credential
        fields = (
            "id",
            "name",
            "kind",
            "owner",
            "secret",
            "username",
            "endpoints",
            "allow_insecure_tls",
            "tls_unverified",
            "used_by",
            "environments",
        )
        read_only_fields = ("tls_unverified",)

    def validate_endpoints(self, value: list[str]) -> list[str]:
        try:
            return parse_endpoints("\n".join(value))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

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
        insecure_changed = (
            self.instance is not None
            and data.get("allow_insecure_tls", self.instance.allow_insecure_tls)
            != self.instance.allow_insecure_tls
        )
        if not secret and (self.instance is None or kind_changed):
            raise serializers.ValidationError(
                {"secret": ["This kind of credential needs a secret."]}
            )
        if kind == Credential.Kind.KUBECONFIG:
            if "endpoints" in data:
                raise serializers.ValidationError(
                    {"endpoints": ["A kubeconfig is bound to its clusters' servers."]}
                )
            if insecure_changed and not secret:
                raise serializers.ValidationError(
                    {"secret": ["Send the kubeconfig again to change its TLS opt-in."]}
                )
        if secret:
            checked = Credential(
                kind=kind,
                allow_insecure_tls=data.get(
                    "allow_insecure_tls", getattr(self.instance, "allow_insecure_tls", False)
                ),
            )
            try:
                checked.set_secret(secret_values(kind, secret=secret, username=username))
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"secret": exc.messages}) from None
            data["secret_ciphertext"] = checked.secret_ciphertext
            data["tls_unverified"] = checked.tls_unverified
            if kind == Credential.Kind.KUBECONFIG:
                data["endpoints"] = checked.endpoints
        return data


class CredentialPages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CredentialInUse(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "in_use"

    def __init__(self, credential: Credential, users: list[str]) -> None:
        super().__init__(f"'{credential.name}' is in use by: {', '.join(users)}.")
        self.extra = {"used_by": users}


class CredentialViewSet(viewsets.ModelViewSet):
    """Credentials: names, kinds and endpoint bounds; the secret is write-only."""

    serializer_class = CredentialSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = CredentialPages
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = ID_PATTERN  # at most 18 digits: a longer id is a 404, not an overflow

    def get_queryset(self):
        return credentials_for(self.request.user)

    def _own(self, credential: Credential) -> None:
        if not credential.is_owned_by(self.request.user):
            raise exceptions.PermissionDenied("Only the owner changes or deletes a credential.")

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)

    def perform_update(self, serializer):
        self._own(serializer.instance)
        serializer.save()

    def update(self, request, *args, **kwargs):
        self._own(self.get_object())  # before any validation: a non-owner learns nothing
        super().update(request, *args, **kwargs)
        # answer with the row as the reader sees it (visible environments, counts)
        return Response(self.get_serializer(self.get_queryset().get(pk=kwargs["pk"])).data)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        fresh = self.get_queryset().get(pk=serializer.instance.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        credential = self.get_object()
        self._own(credential)
        users = list(credential.connections.exclude(status=DELETED).values_list("name", flat=True))
        if users:
            raise CredentialInUse(credential, users)
        try:
            credential.delete()
        except ProtectedError:  # a connection attached meanwhile
            raise CredentialInUse(credential, ["(a connection added meanwhile)"]) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


routes = [("credentials", CredentialViewSet, "credential")]
