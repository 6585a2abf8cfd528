"""Credentials: secrets a connection authenticates with, encrypted at rest, never read back,
and bound to the endpoints they may be sent to."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models, transaction

from core import access
from core.text import validate_name
from credentials import crypto

_sent_changed: list = []


def on_sent_changed(hook) -> None:
    """``hook(credential)`` runs when a saved credential's secret or bounds changed (registered
    by the apps whose work used it, in their ``apps.py``)."""
    if hook not in _sent_changed:
        _sent_changed.append(hook)


class CredentialKind(models.TextChoices):
    BEARER_TOKEN = "bearer_token", "Bearer token"
    BASIC_AUTH = "basic_auth", "Basic auth"
    API_KEY = "api_key", "API key"
    KUBECONFIG = "kubeconfig", "Kubeconfig"


class CredentialQuerySet(access.RestrictedQuerySet):
    """``restrict(user, action)`` (``core.access``): view: their own, and those shared into an
    environment they own or belong to; use (attach to a connection): their own, and those shared
    where they are owner or editor (the endpoint bounds apply on top); change, delete, share:
    their own only. Superusers: all."""


class Credential(models.Model):
    """A secret a connection authenticates with, encrypted at rest; never read back to a user.

    ``endpoints`` are the origins (``scheme://host:port``) the secret may be sent to: set by the
    owner, and for a kubeconfig its clusters' servers. Every sender checks them
    (``credentials.bounds``); nothing sends a secret anywhere else.
    """

    Kind = CredentialKind

    # The keys each kind's secret holds; every one is required.
    SECRET_KEYS: dict[str, tuple[str, ...]] = {
        Kind.BEARER_TOKEN: ("token",),
        Kind.BASIC_AUTH: ("username", "password"),
        Kind.API_KEY: ("key",),
        Kind.KUBECONFIG: ("kubeconfig",),
    }

    name = models.CharField(max_length=200, validators=[validate_name])
    kind = models.CharField(max_length=32, choices=Kind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credentials"
    )
    secret_ciphertext = models.TextField(editable=False)
    endpoints = models.JSONField(
        default=list,
        blank=True,
        help_text="Origins (scheme://host:port) this secret may be sent to; for a kubeconfig, "
        "its clusters' servers.",
    )
    allow_insecure_tls = models.BooleanField(
        "Allow unverified TLS",
        default=False,
        help_text="Accept a kubeconfig cluster with insecure-skip-tls-verify: its server's "
        "identity is not checked, so anyone on the path could read the secret.",
    )
    # Derived from the stored kubeconfig: one of its clusters skips TLS verification.
    tls_unverified = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        db_table = "connections_credential"  # moved from the connections app; the table stays
        ordering = ("name", "pk")
        constraints = [
            models.UniqueConstraint(fields=("owner", "name"), name="unique_credential_per_owner")
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded = self._what_is_sent()

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Credential {self.pk} {self.name!r} ({self.kind})>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saved with another secret or other bounds: what was sent with the old one is out of
        date, and whoever registered for it (``on_sent_changed``) is told, in this save's
        transaction (connections drop their results in flight and are probed again)."""
        changed = self.pk is not None and self._what_is_sent() != self._loaded
        with transaction.atomic():
            super().save(*args, **kwargs)
            if changed:
                for hook in _sent_changed:
                    hook(self)
        self._loaded = self._what_is_sent()

    def set_secret(self, values: dict[str, str]) -> None:
        """Validate, normalise and encrypt; raises ValidationError naming what is wrong.

        For a kubeconfig, the endpoints become its clusters' servers."""
        from credentials.secrets import validate_secret

        checked = validate_secret(self.kind, values, allow_insecure_tls=self.allow_insecure_tls)
        if checked.servers is not None:
            from django.core.exceptions import ValidationError

            from credentials.bounds import origin_of

            try:
                origins = [origin_of(server) for server in checked.servers]
            except ValueError as exc:
                raise ValidationError(
                    f"A cluster's server URL: {exc}.", code="kubeconfig_server_url"
                ) from None
            self.endpoints = list(dict.fromkeys(origins))
        self.tls_unverified = checked.tls_unverified
        cleaned = checked.secret
        self.secret_ciphertext = crypto.encrypt(json.dumps(cleaned).encode())

    def get_secret(self) -> dict[str, str]:
        """The decrypted secret, for a sender that checked the bounds; never for a page or log."""
        return json.loads(crypto.decrypt(self.secret_ciphertext))

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)

    def is_owned_by(self, user: Any) -> bool:
        return access.may(user, self, access.CHANGE)

    def _what_is_sent(self) -> tuple:
        # __dict__: never load a deferred field just to remember it
        return tuple(
            json.dumps(self.__dict__.get(name), default=str)
            for name in ("secret_ciphertext", "endpoints", "allow_insecure_tls")
        )
