"""Locations: the places connections are probed from, each with a Celery queue of its own
(``probes.<name>``) consumed by the workers started there with ``PROBE_LOCATION=<name>``.

With no location configured, probing is as it always was: one implicit location (the
``probes`` queue), one probe a round. See docs/locations.md and connections/probing/rounds.py.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import ExpressionWrapper
from django.db.models.functions import Now
from django.utils import timezone

LOCATION_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


def validate_location_name(value: str) -> None:
    """A location's name is part of a queue's name: 1–40 of a–z, 0–9 and ``-``, starting and
    ending with a letter or digit (``eu-west``, ``dc2``)."""
    if not LOCATION_NAME.fullmatch(value or ""):
        raise ValidationError(
            "A location's name has 1 to 40 of a–z, 0–9 and -, starting and ending with a "
            "letter or digit (e.g. eu-west).",
            code="location_name",
        )


class Quorum(models.TextChoices):
    MAJORITY = "", "A majority (the default)"
    ANY = "any", "Any one location"
    ALL = "all", "Every location that answered"


QUORUM_NUMBER_MAX = 20


class Location(models.Model):
    name = models.CharField(max_length=40, unique=True, validators=[validate_location_name])
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return queue_of(self.name)


def queue_of(name: str) -> str:
    return f"probes.{name}"


class LocationWorker(models.Model):
    """One worker process of a location, as its heartbeats report it (a row per node name)."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="workers")
    node = models.CharField(max_length=200)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    # probes done since the worker started (added to by each batch), and the rate the last
    # heartbeat measured from it
    probes = models.BigIntegerField(default=0)
    probes_per_minute = models.FloatField(default=0)
    # how late the last batch started its probes after their due time (seconds, the median)
    lag_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ("location", "node")
        constraints = [
            models.UniqueConstraint(fields=("location", "node"), name="unique_location_worker")
        ]

    def __str__(self) -> str:
        return f"{self.location_id} {self.node}"


def stale_before(now: datetime | None = None):
    """A location whose newest heartbeat is older than this is stale: no round is sent to it.
    By the database's clock (``Now()``), as the heartbeats are written: a location whose
    machine's clock is off is neither always stale nor never."""
    age = timedelta(seconds=settings.LOCATION_STALE_AFTER)
    if now is not None:
        return now - age
    return ExpressionWrapper(Now() - age, output_field=models.DateTimeField())


class ProbeRound(models.Model):
    """One round of a batch of connections sent to their locations: which location was sent
    which connections, how many locations each connection has, and when the round ends (the
    locations that have not answered by then are left out). Deleted when closed."""

    token = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField(db_index=True)
    # {"sent": {location id: [connection ids]}, "of": {connection id: its locations}}
    plan = models.JSONField(default=dict)

    def __str__(self) -> str:
        return str(self.token)
