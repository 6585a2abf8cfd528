"""The notifications API: channels, rules, events and the delivery log.

The same visibility rule as everything else: a caller sees the channels of
``Channel.objects.restrict(user)`` and changes those of ``restrict(user, "change")``; a channel
they cannot see is a 404 (its existence is not revealed), one they see but may not change a 403.
Making and changing channels and rules goes through ``notifications.channels`` (the one rule the
pages and the admin use too); a destination is write-only, a webhook's signing secret is shown
once."""

from __future__ import annotations

import datetime as dt
import inspect

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiCallback, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from connections.mentions import read_as
from connections.models import Connection
from core.api import error
from core.api import invalid as core_invalid
from core.ids import ID_PATTERN, IdFilter
from core.times import time_problem

from . import channels, delivery
from . import serializers as s
from .choices import Category, ChannelKind
from .models import Channel, Delivery, Event, Rule
from .senders import KEY_HEADER, SIGNATURE_HEADER


class NotificationPages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


_RULE_FIELDS = ("environments", "connections", "kinds", "categories")


def invalid(exc: DjangoValidationError, under_rule: bool = False) -> serializers.ValidationError:
    """A ValidationError of ``channels`` as the API's 400 (with ``under_rule``, a channel's
    first rule's fields are reported on ``rule``)."""
    return core_invalid(exc, dict.fromkeys(_RULE_FIELDS, "rule") if under_rule else None)


def _manage(user, channel: Channel) -> None:
    if not channels.can_manage(user, channel):
        raise PermissionDenied(f"You may view the channel '{channel.name}' but not change it.")


# --- the webhook's body, as the OpenAPI document shows it -------------------------------------

WEBHOOK_HEADERS = [
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "description": "sha256=<hex>: the HMAC-SHA256 of the raw request body keyed with the "
        "channel's signing secret. Verify it (in constant time) before trusting the body.",
        "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
    },
    {
        "name": KEY_HEADER,
        "in": "header",
        "required": True,
        "description": "The message's idempotency key, equal to the body's `id`: a retry "
        "carries the same key, so a key seen before is a message already received.",
        "schema": {"type": "string"},
    },
]

WEBHOOK_MESSAGE = OpenApiCallback(
    name="webhookMessage",
    path="{$request.body#/destination}",
    decorator=extend_schema(
        summary="A message POSTed to a webhook channel",
        description=inspect.cleandoc(s.WebhookPayloadSerializer.__doc__ or ""),
        request=s.WebhookPayloadSerializer,
        responses={
            200: OpenApiResponse(
                description="Any 2xx acknowledges the message. A 5xx or a timeout is retried "
                "with backoff (same idempotency key); any other status is a final failure."
            )
        },
    ),
)


class ChannelSchema(AutoSchema):
    """Adds the signature and idempotency headers to the webhook callback (drf-spectacular's
    callbacks carry a body and responses only)."""

    def _get_callbacks(self):
        callbacks = super()._get_callbacks()
        for expressions in callbacks.values():
            for path_item in expressions.values():
                for operation in path_item.values():
                    operation["parameters"] = [dict(h) for h in WEBHOOK_HEADERS]
        return callbacks


# --- channels -----------------------------------------------------------------------------------


class ChannelViewSet(viewsets.ModelViewSet):
    """Notification channels: the caller's own and those of environments they may see.
    The destination is write-only (``destination_hint`` is shown); a webhook's signing secret
    is returned once, when the channel is created or the secret rotated."""

    serializer_class = s.ChannelSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = NotificationPages
    lookup_value_regex = ID_PATTERN
    schema = ChannelSchema()

    def get_queryset(self):
        return (
            Channel.objects.restrict(self.request.user)
            .select_related("owner", "environment")
            .order_by("name", "pk")
        )

    def _answer(self, channel: Channel, code: int = 200, **extra) -> Response:
        fresh = self.get_queryset().get(pk=channel.pk)
        return Response({**self.get_serializer(fresh).data, **extra}, status=code)

    @extend_schema(
        request=s.ChannelSerializer,
        responses={201: s.ChannelCreatedSerializer},
        callbacks=[WEBHOOK_MESSAGE],
    )
    def create(self, request, *args, **kwargs):
        """Make a channel and its first rule. For a webhook the answer holds `signing_secret`,
        shown this once; every message is then POSTed to the URL as the callback describes."""
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        options = {k: values[k] for k in ("enabled", *s._KNOBS) if k in values}
        try:
            channel, secret = channels.create_channel(
                request.user,
                name=values["name"],
                kind=values["kind"],
                destination=values["destination"],
                environment=values.get("environment"),
                rule=values.get("rule"),
                **options,
            )
        except DjangoValidationError as exc:
            raise invalid(exc, under_rule=True) from None
        return self._answer(channel, status.HTTP_201_CREATED, signing_secret=secret)

    def update(self, request, *args, **kwargs):
        """Change a channel (owner, or an editor of its environment). The kind cannot change;
        a new `destination` replaces the stored one, an absent or blank one keeps it."""
        channel = self.get_object()
        _manage(request.user, channel)  # before any validation: a viewer learns nothing more
        body = self.get_serializer(channel, data=request.data, partial=kwargs.get("partial"))
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        values.pop("kind", None)
        destination = values.pop("destination", None) or None
        try:
            channels.update_channel(request.user, channel, destination=destination, **values)
        except DjangoValidationError as exc:
            raise invalid(exc) from None
        return self._answer(channel)

    def destroy(self, request, *args, **kwargs):
        channel = self.get_object()
        _manage(request.user, channel)
        channel.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: s.DeliveryResultSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a test message now and answer with the attempt (never retried; logged)."""
        channel = self.get_object()
        _manage(request.user, channel)
        attempt = delivery.send_test(channel)
        return Response(s.DeliveryResultSerializer(attempt).data)

    @extend_schema(request=None, responses={200: s.SigningSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A webhook's new signing secret, shown this once; the old one stops at once."""
        channel = self.get_object()
        _manage(request.user, channel)
        if channel.kind != ChannelKind.WEBHOOK:
            return error(
                400,
                "invalid",
                "Only a webhook channel has a signing secret.",
                fields={"kind": ["Only a webhook channel has a signing secret."]},
            )
        return Response({"signing_secret": channels.rotate_secret(request.user, channel)})


# --- rules --------------------------------------------------------------------------------------


class RuleFilter(django_filters.FilterSet):
    channel = IdFilter(field_name="channel_id")

    class Meta:
        model = Rule
        fields = ("channel",)


class RuleViewSet(viewsets.ModelViewSet):
    """What channels hear: the rules of the channels the caller may see; made and changed
    only on a channel the caller may manage."""

    serializer_class = s.RuleSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = NotificationPages
    lookup_value_regex = ID_PATTERN
    filter_backends = [DjangoFilterBackend]
    filterset_class = RuleFilter

    def get_queryset(self):
        return (
            Rule.objects.filter(channel__in=Channel.objects.restrict(self.request.user))
            .select_related("channel")
            .prefetch_related("environments", "connections")
            .order_by("pk")
        )

    def _save(self, rule: Rule, channel: Channel, values: dict) -> Rule:
        _manage(self.request.user, channel)
        try:
            with transaction.atomic():
                return channels.save_rule(self.request.user, channel, rule, **values)
        except DjangoValidationError as exc:
            raise invalid(exc) from None

    def _answer(self, rule: Rule, code: int = 200) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data, status=code)

    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        channel = values.pop("channel")
        rule = self._save(Rule(channel=channel), channel, values)
        return self._answer(rule, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        rule = self.get_object()
        _manage(request.user, rule.channel)
        body = self.get_serializer(rule, data=request.data, partial=kwargs.get("partial"))
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        channel = values.pop("channel", rule.channel)
        current = {
            "environments": list(rule.environments.all()),
            "connections": list(rule.connections.all()),
            "kinds": list(rule.kinds),
            "categories": list(rule.categories),
        }
        rule = self._save(rule, channel, {**current, **values})
        return self._answer(rule)

    def destroy(self, request, *args, **kwargs):
        rule = self.get_object()
        _manage(request.user, rule.channel)
        rule.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- events and deliveries ----------------------------------------------------------------------


def visible_events(user):
    """The notification center's rule when it is there, else: events of visible connections."""
    try:
        from .center import visible_events as center_rule
    except ImportError:
        return Event.objects.filter(connection__in=Connection.all_objects.restrict(user))
    return center_rule(user)


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time, turned into UTC here: PostgreSQL refuses some offsets Python takes
    (e.g. -16:25), and a time at the edge of the calendar may not convert at all."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        problem = time_problem(moment)
        if problem:
            raise forms.ValidationError(problem)
        return moment.astimezone(dt.UTC)


class SinceFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class EventFilter(django_filters.FilterSet):
    connection = IdFilter(field_name="connection_id")
    category = django_filters.ChoiceFilter(choices=Category.choices)
    since = SinceFilter(
        field_name="created_at", lookup_expr="gte", label="Events at or after this time."
    )

    class Meta:
        model = Event
        fields = ("connection", "category", "since")


class EventViewSet(viewsets.ReadOnlyModelViewSet):
    """State changes of the connections the caller may see, newest first."""

    serializer_class = s.EventSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = NotificationPages
    lookup_value_regex = ID_PATTERN
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilter
    queryset = Event.objects.none()  # for the schema; get_queryset is the rule

    def get_queryset(self):
        return (
            visible_events(self.request.user)
            .select_related("connection", "user")
            .order_by("-created_at", "-pk")
        )

    # reasons as the caller may read them (connections.mentions)
    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return read_as(self.request.user, page) if page is not None else None

    def get_object(self):
        return read_as(self.request.user, [super().get_object()])[0]


class DeliveryFilter(django_filters.FilterSet):
    channel = IdFilter(field_name="channel_id")
    ok = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        coerce=lambda value: value == "true",
        label="Succeeded (true) or failed (false).",
    )

    class Meta:
        model = Delivery
        fields = ("channel", "ok")


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The delivery log: every attempt on the channels the caller may see, newest first
    (errors are kept scrubbed of the channel's secrets)."""

    serializer_class = s.DeliverySerializer
    permission_classes = [IsAuthenticated]
    pagination_class = NotificationPages
    lookup_value_regex = ID_PATTERN
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeliveryFilter

    def get_queryset(self):
        return (
            Delivery.objects.filter(channel__in=Channel.objects.restrict(self.request.user))
            .select_related("message")
            .order_by("-attempted_at", "-pk")
        )


routes = [
    ("notifications/channels", ChannelViewSet, "notification-channel"),
    ("notifications/rules", RuleViewSet, "notification-rule"),
    ("notifications/events", EventViewSet, "notification-event"),
    ("notifications/deliveries", DeliveryViewSet, "notification-delivery"),
]
