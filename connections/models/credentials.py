"""Credentials: secrets a connection authenticates with, encrypted at rest, never read back."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from connections import crypto
from connections.choices import CredentialKind


def _shared_with(user: Any, *, editors_only: bool) -> Q:
    """Environments ``user`` owns or is a member of (as an editor, if asked)."""
    membership = Q(memberships__user=user)
    if editors_only:
        membership &= Q(memberships__role="editor")
    return Q(owner=user) | membership


class CredentialQuerySet(models.QuerySet):
    def restrict(self, user: Any, action: str = "view") -> CredentialQuerySet:
        """Own credentials, and (to view and attach) those shared through an environment."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        if action != "view":
            return self.filter(owner=user)
        from environments.models import Environment

        environments = Environment.objects.filter(_shared_with(user, editors_only=False))
        shared = Environment.credentials.through.objects.filter(
            environment__in=environments
        ).values("credential_id")
        return self.filter(Q(owner=user) | Q(pk__in=shared))


class Credential(models.Model):
    """A secret a connection authenticates with, encrypted at rest; never read back to a user."""

    Kind = CredentialKind

    # The keys each kind's secret holds; every one is required.
    SECRET_KEYS: dict[str, tuple[str, ...]] = {
        Kind.BEARER_TOKEN: ("token",),
        Kind.BASIC_AUTH: ("username", "password"),
        Kind.API_KEY: ("key",),
        Kind.KUBECONFIG: ("kubeconfig",),
    }

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credentials"
    )
    secret_ciphertext = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ("name", "pk")
        constraints = [
            models.UniqueConstraint(fields=("owner", "name"), name="unique_credential_per_owner")
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Credential {self.pk} {self.name!r} ({self.kind})>"

    def set_secret(self, values: dict[str, str]) -> None:
        """Validate and encrypt; raises ValidationError naming what is wrong."""
        from connections.secrets import validate_secret

        cleaned = validate_secret(self.kind, values)
        self.secret_ciphertext = crypto.encrypt(json.dumps(cleaned).encode())

    def get_secret(self) -> dict[str, str]:
        """The decrypted secret, for a probe or a client; never for a page or a log."""
        return json.loads(crypto.decrypt(self.secret_ciphertext))

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)
