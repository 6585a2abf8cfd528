"""Channels and their rules, the outbox of events, the messages sent and every attempt."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from connections.choices import Status, Trigger
from core import access
from core.text import validate_name
from credentials import crypto

from .choices import DEFAULT_CATEGORIES, Category, ChannelKind, MessageKind, MessageStatus


class Event(models.Model):
    """A state change as notifications see it: one per transition, written with it (the outbox),
    routed once (``routed_at``), and listed in the notification center. A partial outage's
    beginning or end (probed from several locations; no state change) is one too, without a
    transition."""

    transition = models.OneToOneField(
        "connections.ConnectionTransition",
        on_delete=models.CASCADE,
        related_name="event",
        null=True,
        blank=True,
    )
    connection = models.ForeignKey(
        "connections.Connection", on_delete=models.CASCADE, related_name="events"
    )
    from_status = models.CharField(max_length=16, blank=True, choices=Status.choices)
    to_status = models.CharField(max_length=16, choices=Status.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    category = models.CharField(max_length=16, choices=Category.choices)
    reason = models.TextField(blank=True)
    mentions = models.JSONField(default=list, blank=True)  # the transition's (connections.mentions)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    routed_at = models.DateTimeField(null=True, blank=True)
    # why no channel heard of it (maintenance, …); empty when it was routed as usual
    quiet = models.CharField(max_length=200, blank=True)
    quiet_mentions = models.JSONField(default=list, blank=True)
    # a failure kept quiet by a maintenance window: looked at again when the window ends, and
    # routed then (``after_window``) if the connection is still down
    deferred_until = models.DateTimeField(null=True, blank=True)
    after_window = models.BooleanField(default=False)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [
            models.Index(
                fields=("id",), condition=Q(routed_at__isnull=True), name="event_unrouted_idx"
            ),
            models.Index(fields=("connection", "-created_at"), name="event_conn_time_idx"),
            models.Index(fields=("-created_at",), name="event_time_idx"),
            models.Index(
                fields=("deferred_until",),
                condition=Q(deferred_until__isnull=False),
                name="event_deferred_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}: {self.from_status or '(new)'} → {self.to_status}"


class ChannelQuerySet(access.RestrictedQuerySet):
    """``restrict(user, action)`` (``core.access``): a user's own channels of no environment, and
    those of the environments they may see (``view``) or edit (``change``). Staff: all."""


class Channel(models.Model):
    """Where messages go. Its destination (URL, Apprise URLs, address) and the webhook's signing
    secret are encrypted at rest and never shown back; ``destination_hint`` is what pages show."""

    name = models.CharField(max_length=200, validators=[validate_name])
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_channels"
    )
    # an environment's channel: its owner and editors manage it; it hears that environment only
    environment = models.ForeignKey(
        "environments.Environment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_channels",
    )
    config_encrypted = models.TextField(editable=False)
    destination_hint = models.CharField(max_length=300, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    # no noise
    group_window = models.PositiveIntegerField(
        default=10,
        validators=[MaxValueValidator(3600)],
        help_text="Seconds a change waits for others to be sent with it (at most 3600).",
    )
    group_threshold = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="More changes than this in one window are sent as one message.",
    )
    cooldown = models.PositiveIntegerField(
        default=300,
        validators=[MaxValueValidator(7 * 86400)],
        help_text="Seconds after a failure message before the same connection's next (at most "
        "a week).",
    )
    remind_every_hours = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(24 * 30)],
        help_text="Remind every N hours while still down (0: never; at most 720).",
    )
    rate_per_hour = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Messages per hour at most, 1 to 3600 (a token bucket; the rest is grouped).",
    )
    tokens = models.FloatField(default=-1.0)  # -1: a full bucket
    tokens_at = models.DateTimeField(null=True, blank=True)
    # health of the channel itself
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ("name", "pk")

    def __str__(self) -> str:
        return self.name

    @property
    def config(self) -> dict[str, Any]:
        if not self.config_encrypted:
            return {}
        return json.loads(crypto.decrypt(self.config_encrypted))

    def set_config(self, config: dict[str, Any]) -> None:
        self.config_encrypted = crypto.encrypt(json.dumps(config).encode())

    @property
    def failing(self) -> bool:
        return self.failing_since is not None


class Rule(models.Model):
    """What a channel hears: changes of these categories, for connections in these
    environments (now and later), these connections or of these kinds; no scope at all means
    every connection the channel may see. Never more than the channel's owner (or its
    environment) may see: routing applies the visibility rule."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="rules")
    environments = models.ManyToManyField("environments.Environment", blank=True, related_name="+")
    connections = models.ManyToManyField("connections.Connection", blank=True, related_name="+")
    kinds = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"rule {self.pk} of {self.channel}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.categories:
            self.categories = list(DEFAULT_CATEGORIES)
        super().save(*args, **kwargs)


class AlertState(models.Model):
    """Per channel and connection: is a failure reported and not yet resolved (a recovery is
    sent only then), when the last failure message went out (cool-down), and a failure held
    back by the cool-down, reported when it ends if the connection is still down."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(
        "connections.Connection", on_delete=models.CASCADE, related_name="+"
    )
    open = models.BooleanField(default=False)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    held = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    remind_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("channel", "connection"), name="unique_alert_state")
        ]
        indexes = [
            models.Index(
                fields=("remind_at",), condition=Q(remind_at__isnull=False), name="alert_remind_idx"
            ),
            models.Index(
                fields=("last_failure_at",), condition=Q(held__isnull=False), name="alert_held_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}/{self.connection_id}: {'open' if self.open else 'closed'}"


class Message(models.Model):
    """One message to one channel: an event's, a group's, a reminder or a test. ``key`` is its
    idempotency key (sent as ``X-Meshplay-Idempotency-Key`` and in the body): a receiver that
    sees a key twice has seen one message."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="messages")
    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    events = models.ManyToManyField(Event, blank=True, related_name="messages")
    connection = models.ForeignKey(
        "connections.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(max_length=300)
    body = models.TextField()
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    group = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at", "pk")
        indexes = [
            models.Index(
                fields=("channel", "created_at"),
                condition=Q(status__in=["queued", "sending"]),
                name="message_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.channel_id}: {self.title}"


class Delivery(models.Model):
    """One attempt at sending a message: the delivery log (errors scrubbed of the secrets)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ("-attempted_at", "-pk")
        indexes = [models.Index(fields=("channel", "-attempted_at"), name="delivery_channel_idx")]

    def __str__(self) -> str:
        return f"{self.message_id} #{self.attempt}: {'ok' if self.ok else 'failed'}"


class Watch(models.Model):
    """A user's watch on a connection or an environment: its events count on their bell."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(
        "connections.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    environment = models.ForeignKey(
        "environments.Environment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )

    class Meta:
        verbose_name_plural = "watches"
        constraints = [
            models.UniqueConstraint(fields=("user", "connection"), name="unique_watch_connection"),
            models.UniqueConstraint(
                fields=("user", "environment"), name="unique_watch_environment"
            ),
            models.CheckConstraint(
                condition=Q(connection__isnull=False) ^ Q(environment__isnull=False),
                name="watch_one_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.connection_id or self.environment_id}"


class ReadMark(models.Model):
    """Where a user's notification center was read up to (events after it are unread)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    read_up_to = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user_id} read up to {self.read_up_to}"
