"""Maintenance windows: one-off or recurring, in a timezone, scoped to connections,
environments (their members now and later) and kinds. When a window is active is computed
from these fields (``maintenance.schedule``); no occurrence is ever stored."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as django_timezone

from connections.kinds import kind_choices
from core import access, times
from core.text import validate_name

from . import schedule

MAX_DURATION_MINUTES = 7 * 24 * 60


@functools.cache
def _known_zones() -> frozenset[str]:
    # the IANA names this host knows, without the host-dependent ones (localtime, Factory, …)
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "posixrules", "Factory"}


def validate_timezone(name: str) -> None:
    if not isinstance(name, str) or name not in _known_zones():
        raise ValidationError(
            f"'{str(name)[:60]}' is not an IANA timezone (e.g. Europe/Amsterdam)."
        )


class WindowQuerySet(access.RestrictedQuerySet):
    """``restrict(user, action)`` (``core.access``): their own windows of no environment, and the
    windows of the environments they may see (or, for ``change``, own or edit): an environment's
    window is the environment's, whoever made it (as channels are). Staff: all."""


class Window(models.Model):
    class Kind(models.TextChoices):
        ONE_OFF = schedule.ONE_OFF, "One-off"
        RECURRING = schedule.RECURRING, "Recurring"

    name = models.CharField(max_length=200, validators=[validate_name])
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="maintenance_windows"
    )
    environment = models.ForeignKey(
        "environments.Environment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="maintenance_windows",
        help_text="The environment this window belongs to (its owner and editors manage it).",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ONE_OFF)
    # one-off
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    # recurring
    weekdays = models.JSONField(
        default=list, blank=True, help_text="Days it starts on: 0 = Monday … 6 = Sunday."
    )
    start_time = models.TimeField(null=True, blank=True, help_text="Wall-clock time, HH:MM.")
    duration_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_MINUTES)],
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # scope: the union of these
    connections = models.ManyToManyField(
        "connections.Connection", related_name="maintenance_windows", blank=True
    )
    environments = models.ManyToManyField(
        "environments.Environment",
        related_name="scoped_maintenance_windows",
        blank=True,
        help_text="Their members, now and later.",
    )
    kinds = models.JSONField(
        default=list,
        blank=True,
        help_text="Connections of these kinds: within the window's environment if it has "
        "one, else the whole fleet (staff only).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=django_timezone.now, editable=False)
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="'End now': cuts short the occurrence it falls in."
    )
    # The end of the last occurrence whose connections were probed at once (apply_windows).
    probed_end_at = models.DateTimeField(default=django_timezone.now, editable=False)

    objects = WindowQuerySet.as_manager()

    class Meta:
        ordering = ("name", "pk")
        indexes = [models.Index(fields=("enabled",), name="window_enabled_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> ZoneInfo:
        """Its zone; UTC when this host can no longer load the stored name (``zone_lost``)."""
        return times.zone(self.timezone)

    @property
    def zone_lost(self) -> bool:
        return times.load_zone(self.timezone) is None

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.kind == self.Kind.ONE_OFF:
            bounds = {
                name: problem
                for name in ("starts_at", "ends_at")
                if (moment := getattr(self, name)) and (problem := times.time_problem(moment))
            }
            if not self.starts_at or not self.ends_at:
                errors["ends_at"] = "A one-off window needs a start and an end."
            elif bounds:
                errors.update(bounds)
            elif self.ends_at <= self.starts_at:
                errors["ends_at"] = "The end must come after the start."
        else:
            days = self.weekdays
            if (
                not isinstance(days, list)
                or not days
                or any(
                    not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in days
                )
            ):
                errors["weekdays"] = "List the weekdays it starts on, 0 (Monday) to 6 (Sunday)."
            if self.start_time is None:
                errors["start_time"] = "A recurring window needs a start time (HH:MM)."
            if not self.duration_minutes:
                errors["duration_minutes"] = "A recurring window needs a duration in minutes."
        known = {value for value, _ in kind_choices()}
        if not isinstance(self.kinds, list) or any(k not in known for k in self.kinds):
            errors["kinds"] = f"Kinds are a list of: {', '.join(sorted(known))}."
        if errors:
            raise ValidationError(errors)

    # the pure functions, bound
    def active_occurrence(self, t: datetime) -> tuple[datetime, datetime] | None:
        return schedule.active_occurrence(self, t)

    def next_occurrences(self, after: datetime, n: int = 5) -> list[tuple[datetime, datetime]]:
        return schedule.next_occurrences(self, after, n)
