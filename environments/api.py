"""The environments' API: environments, their members, and acting on their connections as a
group (editors change and act; the owner manages members and deletes)."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from connections import lifecycle
from connections.api.serializers import BulkReportSerializer, LocationsField
from connections.choices import BULK_ACTIONS
from connections.grouping import change_membership, group_transition
from connections.models import Connection
from core import access
from core.api import Pages, UsernameField, bounded_ids, error
from core.ids import ID_PATTERN

from .models import Environment, EnvironmentMembership


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
    # where its connections are probed from unless one chooses its own: names; [] none
    probe_locations = LocationsField(required=False)

    class Meta:
        model = Environment
        fields = (
            "id",
            "name",
            "description",
            "owner",
            "members",
            "connection_count",
            "probe_locations",
        )

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


class EnvironmentViewSet(viewsets.ModelViewSet):
    """Environments: editors change and act on the group; the owner manages members."""

    serializer_class = EnvironmentSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = Pages
    lookup_value_regex = ID_PATTERN  # at most 18 digits: a longer id is a 404, not an overflow
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return (
            Environment.objects.restrict(self.request.user)
            .select_related("owner")
            .prefetch_related("memberships__user", "probe_locations")
            .order_by("name", "pk")
        )

    def _require(self, environment, action: str):
        allowed = access.may(self.request.user, environment, action)
        if not allowed:
            raise lifecycle.PermissionDenied(
                f"You may view '{environment.name}' but not {action} it."
            )

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)

    def perform_update(self, serializer):
        self._require(serializer.instance, "change")
        serializer.save()

    def perform_destroy(self, instance):
        self._require(instance, "own")
        instance.delete()  # its connections and credentials stay

    @extend_schema(request=MemberSerializer, responses={200: MemberSerializer(many=True)})
    @action(detail=True, methods=["get", "post"])
    def members(self, request, pk=None):
        environment = self.get_object()
        if request.method == "POST":
            self._require(environment, "own")
            body = MemberSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            user = body.validated_data["user"]
            if user.pk == environment.owner_id:
                return error(400, "invalid", "The owner is always a member.")
            EnvironmentMembership.objects.update_or_create(
                environment=environment, user=user, defaults={"role": body.validated_data["role"]}
            )
        rows = environment.memberships.select_related("user").order_by("user__username")
        return Response(MemberSerializer(rows, many=True).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=rf"members/(?P<member_id>{ID_PATTERN})")
    def remove_member(self, request, pk=None, member_id=None):
        environment = self.get_object()
        self._require(environment, "own")
        get_object_or_404(EnvironmentMembership, environment=environment, pk=member_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=AssignSerializer, responses={200: BulkReportSerializer})
    @action(detail=True, methods=["post"])
    def connections(self, request, pk=None):
        environment = self.get_object()
        self._require(environment, "change")
        body = AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        add, remove = body.validated_data.get("add", []), body.validated_data.get("remove", [])
        ids = set(add) | set(remove)
        found = {c.pk: c for c in Connection.objects.restrict(request.user).filter(pk__in=ids)}
        if len(found) != len(ids):
            return error(
                404, "not_found", "Some of these connections do not exist or are not yours."
            )
        with transaction.atomic():
            added = change_membership(
                environment, request.user, [found[i] for i in add], assign=True
            )
            removed = change_membership(
                environment, request.user, [found[i] for i in remove], assign=False
            )
        return Response(
            {
                "changed": added.changed + removed.changed,
                "refused": added.as_dict()["refused"] + removed.as_dict()["refused"],
            }
        )

    @extend_schema(request=GroupTransitionSerializer, responses={200: BulkReportSerializer})
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Act on the group: the transition on every connection of the environment it fits."""
        environment = self.get_object()
        self._require(environment, "change")
        body = GroupTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        report = group_transition(
            environment,
            request.user,
            body.validated_data["to"],
            body.validated_data["reason"].replace("\x00", ""),
        )
        return Response(report.as_dict())


routes = [("environments", EnvironmentViewSet, "environment")]
