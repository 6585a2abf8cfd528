"""API shapes for notifications. A channel's destination is write-only (accepted, never
returned: ``destination_hint`` is what is shown); a webhook's signing secret appears once, in
the answer that created (or rotated) it. ``WebhookPayloadSerializer`` documents the JSON body a
webhook receives (``messages.webhook_body``).

Types are checked here; what a destination or a rule may be is decided by ``channels`` alone."""

from __future__ import annotations

from rest_framework import serializers

from connections.choices import Status, Trigger
from connections.kinds import kind_choices
from connections.models import Connection
from core.api import MAX_LIST, FlatErrors, StrictCharField, VisibleId
from core.api import ids_of as _ids
from environments.models import Environment

from .choices import Category, ChannelKind, MessageKind
from .messages import SCHEMA_VERSION
from .models import Channel, Delivery, Rule

# --- rules ------------------------------------------------------------------------------------


class RuleScopeSerializer(FlatErrors, serializers.Serializer):
    """What a rule hears: no environment, connection or kind means every connection the
    channel may see; no categories means the default changes (failures and recoveries)."""

    environments = _ids(
        Environment, lambda user: Environment.objects.restrict(user), required=False
    )
    connections = _ids(Connection, lambda user: Connection.objects.restrict(user), required=False)
    kinds = serializers.ListField(
        child=StrictCharField(max_length=100),
        required=False,
        max_length=MAX_LIST,
        help_text=f"Connection kinds ({', '.join(v for v, _ in kind_choices())}).",
    )
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=Category.choices),
        required=False,
        max_length=len(Category.values) * 4,
        help_text="The changes heard; empty or absent: the defaults "
        "(disconnected, not_found, auth, recovery).",
    )


class RuleSerializer(RuleScopeSerializer, serializers.ModelSerializer):
    channel = VisibleId(
        Channel,
        lambda user: Channel.objects.restrict(user, "change"),
        help_text="A channel the caller may manage.",
    )

    class Meta:
        model = Rule
        fields = ("id", "channel", "environments", "connections", "kinds", "categories")

    def to_representation(self, instance):
        return {
            "id": instance.pk,
            "channel": instance.channel_id,
            "environments": sorted(e.pk for e in instance.environments.all()),
            "connections": sorted(c.pk for c in instance.connections.all()),
            "kinds": list(instance.kinds),
            "categories": list(instance.categories),
        }


# --- channels ---------------------------------------------------------------------------------

_KNOBS = ("group_window", "group_threshold", "cooldown", "remind_every_hours", "rate_per_hour")


class ChannelSerializer(FlatErrors, serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    environment = VisibleId(
        Environment,
        lambda user: Environment.objects.restrict(user),
        allow_null=True,
        required=False,
        help_text="An environment's channel (its owner and editors manage it; it hears that "
        "environment only); absent or null: the caller's own.",
    )
    destination = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=20_100,
        trim_whitespace=False,
        help_text="webhook: an http(s) URL; email: addresses, comma-separated; apprise: Apprise "
        "URLs, space-separated. Stored encrypted and never returned (see destination_hint). "
        "On update, absent or blank keeps the current one.",
    )
    rule = RuleScopeSerializer(
        write_only=True,
        required=False,
        help_text="On create: the channel's first rule (default: every visible connection, "
        "the default changes).",
    )
    failing = serializers.BooleanField(read_only=True)

    class Meta:
        model = Channel
        fields = (
            "id",
            "name",
            "kind",
            "owner",
            "environment",
            "destination",
            "destination_hint",
            "enabled",
            *_KNOBS,
            "rule",
            "failing",
            "consecutive_failures",
            "failing_since",
            "last_delivery_at",
            "created_at",
        )
        read_only_fields = (
            "destination_hint",
            "consecutive_failures",
            "failing_since",
            "last_delivery_at",
            "created_at",
        )

    def validate(self, data):
        if self.instance is None:
            if not data.get("destination", "").strip():
                raise serializers.ValidationError({"destination": ["Give a destination."]})
        else:
            if "kind" in data and data["kind"] != self.instance.kind:
                raise serializers.ValidationError(
                    {"kind": ["A channel's kind cannot change: make another channel."]}
                )
            if "rule" in data:
                raise serializers.ValidationError(
                    {"rule": ["Change a channel's rules at /api/notifications/rules/."]}
                )
        return data


class ChannelCreatedSerializer(ChannelSerializer):
    signing_secret = serializers.CharField(
        read_only=True,
        help_text="A webhook's signing secret (X-Meshplay-Signature): shown in this answer "
        "only, never again (rotate it to get a new one). Empty for other kinds.",
    )

    class Meta(ChannelSerializer.Meta):
        fields = (*ChannelSerializer.Meta.fields, "signing_secret")


class SigningSecretSerializer(serializers.Serializer):
    signing_secret = serializers.CharField(
        read_only=True, help_text="The new signing secret: shown once. The old one stops now."
    )


class DeliveryResultSerializer(serializers.ModelSerializer):
    """The outcome of one attempt (a test's, or any in the delivery log)."""

    class Meta:
        model = Delivery
        fields = ("id", "attempted_at", "ok", "status_code", "latency_ms", "error")


class DeliverySerializer(serializers.ModelSerializer):
    message_kind = serializers.ChoiceField(
        source="message.kind", choices=MessageKind.choices, read_only=True
    )
    message_title = serializers.CharField(source="message.title", read_only=True)

    class Meta:
        model = Delivery
        fields = (
            "id",
            "channel",
            "message",
            "message_kind",
            "message_title",
            "attempt",
            "attempted_at",
            "ok",
            "status_code",
            "latency_ms",
            "error",
        )
        read_only_fields = fields


# --- events and the webhook's body --------------------------------------------------------------


class EventConnectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=kind_choices())


def _event_fields() -> dict:
    """An event as the webhook body and the events endpoint spell it ("from" and "to" are not
    attribute names Python allows, hence the class is built from a dict)."""
    return {
        "id": serializers.IntegerField(),
        "connection": EventConnectionSerializer(),
        "from": serializers.ChoiceField(
            choices=Status.choices,
            allow_blank=True,
            source="from_status",
            help_text="The state before; empty for a new connection.",
        ),
        "to": serializers.ChoiceField(choices=Status.choices, source="to_status"),
        "trigger": serializers.ChoiceField(choices=Trigger.choices),
        "category": serializers.ChoiceField(choices=Category.choices),
        "reason": serializers.CharField(allow_blank=True),
    }


WebhookEventSerializer = type(
    "WebhookEventSerializer",
    (serializers.Serializer,),
    {
        **_event_fields(),
        "at": serializers.DateTimeField(source="created_at"),
        "__doc__": "One state change in a webhook's body.",
        "__module__": __name__,
    },
)


EventSerializer = type(
    "EventSerializer",
    (serializers.Serializer,),
    {
        **_event_fields(),
        "user": serializers.CharField(
            source="user.get_username",
            default=None,
            allow_null=True,
            help_text="Who made the change (administrative changes); null for automatic ones.",
        ),
        "created_at": serializers.DateTimeField(),
        "__doc__": "A state change of a connection the caller may see.",
        "__module__": __name__,
    },
)


class WebhookChannelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class WebhookDependentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()


class WebhookPayloadSerializer(serializers.Serializer):
    """The JSON body POSTed to a webhook channel (``messages.webhook_body``).

    Headers: ``X-Meshplay-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body keyed
    with the channel's signing secret (compare it in constant time before parsing the body);
    ``X-Meshplay-Idempotency-Key``, equal to ``id``: a retried message keeps its key, so a
    receiver that has seen a key has seen the message. Answer 2xx to acknowledge; a 5xx or a
    timeout is retried with backoff, any other answer is a final failure."""

    schema = serializers.IntegerField(
        min_value=SCHEMA_VERSION,
        max_value=SCHEMA_VERSION,
        help_text=f"The version of this body's shape (now {SCHEMA_VERSION}).",
    )
    id = serializers.CharField(help_text="The message's idempotency key (also the header).")
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    title = serializers.CharField()
    text = serializers.CharField(help_text="The message as plain text, one line per change.")
    sent_at = serializers.DateTimeField()
    attempt = serializers.IntegerField(
        min_value=0, help_text="1 for the first attempt, then 2, 3, … on retries."
    )
    channel = WebhookChannelSerializer()
    events = WebhookEventSerializer(
        many=True, help_text="The changes reported (for a group: at most 1000 of them)."
    )
    total_events = serializers.IntegerField(
        min_value=0, help_text="How many changes the message reports (may exceed len(events))."
    )
    dependents = WebhookDependentSerializer(
        many=True,
        help_text="Connections that depend on the failing one and are down too (their own "
        "failures are not sent separately); at most 1000.",
    )
