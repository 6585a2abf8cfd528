"""Environments group connections and their credentials, and share them with members."""

from django.conf import settings
from django.db import models

from core import access
from core.text import validate_name


class EnvironmentQuerySet(access.RestrictedQuerySet):
    """``restrict(user, action)`` (``core.access``): staff: all; others: owned, or a member (an
    editor, for ``change``); ``own`` (members, deletion): the owner alone."""


class Environment(models.Model):
    name = models.CharField(max_length=200, validators=[validate_name])
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_environments"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="EnvironmentMembership",
        related_name="environments",
        blank=True,
    )
    connections = models.ManyToManyField(
        "connections.Connection", related_name="environments", blank=True
    )
    credentials = models.ManyToManyField(
        "credentials.Credential", related_name="environments", blank=True
    )
    # where its connections are probed from unless a connection chooses its own
    probe_locations = models.ManyToManyField(
        "connections.Location", related_name="environments", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EnvironmentQuerySet.as_manager()

    class Meta:
        ordering = ("name", "pk")
        constraints = [
            models.UniqueConstraint(fields=("owner", "name"), name="unique_environment_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class EnvironmentMembership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        EDITOR = "editor", "Editor"

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="environment_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("environment", "user"), name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.environment}"
