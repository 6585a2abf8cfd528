"""The REST API: the same querysets, FilterSet and lifecycle functions as the pages."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from connections import creating, editing, lifecycle
from connections.choices import Status
from connections.filters import ConnectionFilterSet
from connections.imports import import_kubeconfig
from connections.models import Connection
from connections.tagging import set_tags
from core import access
from core.api import Pages, error
from core.ids import ID_PATTERN
from credentials.kubeconfig import parse_kubeconfig
from environments.models import Environment

from ..mentions import read_as
from . import serializers as s


class HistoryPages(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ConnectionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Connections the caller may see (owned, shared through environments; staff: all)."""

    serializer_class = s.ConnectionSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = Pages
    lookup_value_regex = ID_PATTERN  # at most 18 digits: a longer id is a 404, not an overflow
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = ConnectionFilterSet
    ordering_fields = [
        "name",
        "kind",
        "url",
        "status",
        "last_probe_at",
        "created_at",
        "managed",
        "id",
    ]
    ordering = ["name", "id"]

    def get_queryset(self):
        user = self.request.user
        environments = Environment.objects.restrict(user)
        return (
            Connection.all_objects.restrict(user)
            .select_related("owner")
            .prefetch_related(Prefetch("environments", queryset=environments), "tags", "locations")
        )

    def list(self, request, *args, **kwargs):
        filterset = ConnectionFilterSet(
            request.query_params, queryset=self.get_queryset(), request=request
        )
        if filterset.is_valid():
            counts = filterset.counts_by_status()
            self.paginator.summary = {
                state: counts.get(state, 0) for state in Status.values if state != Status.DELETED
            }
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.ConnectionCreateSerializer, responses={201: s.ConnectionSerializer})
    def create(self, request):
        """Add a connection: the reachability check decides registered or not_found."""
        data = s.ConnectionCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            candidate = creating.prepare_manual_connection(
                name=values["name"],
                kind=values["kind"],
                url=values["url"],
                user=request.user,
                credential=values.get("credential"),
                failure_threshold=values["failure_threshold"],
                probe_interval=values.get("probe_interval"),
                retry_interval=values.get("retry_interval"),
            )
        except creating.DuplicateConnection as exc:
            visible = self.get_queryset().filter(pk=exc.existing.pk).exists()
            extra = {"existing": exc.existing.pk} if visible else {}
            message = (
                exc.message if visible else "This endpoint is already tracked by another user."
            )
            return error(409, "duplicate", message, **extra)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        outcome = lifecycle.check_reachability(candidate)
        connection = creating.insert_manual_connection(
            candidate, outcome, user=request.user, environments=values.get("environments", [])
        )
        body = s.ConnectionSerializer(
            self.get_queryset().get(pk=connection.pk), context={"request": request}
        )
        return Response(body.data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        """Change name, URL, credential, metadata, threshold, interval, tags, locations or
        quorum: the same rules as creation (``editing.validate_connection``)."""
        connection = self.get_object()
        if connection.status == Status.DELETED:
            return error(409, "deleted", "A deleted connection cannot be changed.")
        if not access.may(request.user, connection, access.CHANGE):
            raise lifecycle.PermissionDenied("You may view this connection but not change it.")
        body = self.get_serializer(connection, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        tags = changes.pop("tags", None)
        try:
            with transaction.atomic():
                editing.update_connection(connection, user=request.user, **changes)
                if tags is not None:
                    set_tags(connection, tags)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        fresh = self.get_queryset().get(pk=connection.pk)  # environments as the reader sees them
        return Response(self.get_serializer(fresh).data)

    @extend_schema(request=s.TransitionSerializer, responses={200: s.ConnectionSerializer})
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Move the connection to a state; 409 names the current state and the allowed ones."""
        connection = self.get_object()
        body = s.TransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lifecycle.perform_user_action(
            connection,
            body.validated_data["to"],
            user=request.user,
            reason=body.validated_data["reason"].replace("\x00", ""),
        )
        return Response(s.ConnectionSerializer(self.get_queryset().get(pk=pk)).data)

    @extend_schema(request=None, responses={200: s.ProbeNowSerializer})
    @action(detail=True, methods=["post"])
    def probe(self, request, pk=None):
        """Probe now, as a scheduled probe would (a failure below the threshold changes no
        state); 429 when it was probed moments ago, 409 when its state is not probed."""
        from connections.probing.now import probe_now

        probed = probe_now(request.user, self.get_object())
        return Response(
            {
                "ok": probed.ok,
                "reason": probed.said,
                "latency_ms": probed.latency_ms,
                "status": probed.connection.status,
                "error_class": probed.connection.last_probe_class,
            }
        )

    @extend_schema(responses={200: s.HistorySerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=HistoryPages)
    def history(self, request, pk=None):
        """The state changes, oldest first, a page at a time (``page``, ``page_size``)."""
        connection = self.get_object()
        rows = connection.history.select_related("user").order_by("created_at", "pk")
        page = read_as(request.user, self.paginate_queryset(rows))  # as the caller may read it
        return self.get_paginated_response(s.HistorySerializer(page, many=True).data)

    @extend_schema(request=s.BulkTransitionSerializer, responses={200: s.BulkReportSerializer})
    @action(detail=False, methods=["post"], url_path="bulk-transition")
    def bulk_transition(self, request):
        body = s.BulkTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ids = set(body.validated_data["ids"])
        connections = list(self.get_queryset().filter(pk__in=ids))
        if len(connections) != len(ids):
            return error(
                404, "not_found", "Some of these connections do not exist or are not yours."
            )
        report = lifecycle.perform_bulk_action(
            connections,
            body.validated_data["to"],
            user=request.user,
            reason=body.validated_data["reason"].replace("\x00", ""),
        )
        return Response(report.as_dict())


class KubeconfigImportView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=s.KubeconfigImportSerializer,
        responses={
            200: inline_serializer(
                "KubeconfigImportReport",
                {
                    "created": s.ConnectionSerializer(many=True),
                    "present": serializers.ListField(child=serializers.DictField()),
                    "errors": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def post(self, request):
        """Every context becomes a Kubernetes connection with its own credential."""
        body = s.KubeconfigImportSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        insecure = request.data.get("allow_insecure_tls") is True
        try:
            document = parse_kubeconfig(
                body.validated_data["kubeconfig"], allow_insecure_tls=insecure
            )
        except DjangoValidationError as exc:
            return error(400, "invalid", exc.messages[0], fields={"kubeconfig": exc.messages})
        report = import_kubeconfig(
            document,
            user=request.user,
            environments=body.validated_data.get("environments", []),
            visible=Connection.objects.restrict(request.user),
            allow_insecure_tls=insecure,
        )
        return Response(
            {
                "created": s.ConnectionSerializer([c for c, _ in report.created], many=True).data,
                "present": [
                    {"context": name, "connection": c.pk if c else None}
                    for name, c in report.present
                ],
                "errors": [{"context": name, "message": m} for name, m in report.errors],
            }
        )
