"""Per-user API tokens."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from core.text import validate_name


class ApiToken(models.Model):
    """A per-user API token: shown once when created, stored as a SHA-256 hash, revocable."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, validators=[validate_name])
    prefix = models.CharField(max_length=12, editable=False)  # shown, to tell tokens apart
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        db_table = "connections_apitoken"  # made by the connections app, which had it first

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(key: str) -> str:
        import hashlib

        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user: Any, name: str) -> tuple[ApiToken, str]:
        """A new token and its key; the key exists only in this return value. ValidationError
        when the name is not one (a name is one line: core.text)."""
        import secrets

        validate_name(name)
        key = "mpc_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=key[:10], key_hash=cls.hash(key))
        return token, key


class Invitation(models.Model):
    """A user invited by e-mail, who sets their own password through a one-time link.

    No token is stored: the link's token is an HMAC of this row's id and ``issued_at`` (Django's
    token machinery, ``accounts/invitations.py``), so issuing again replaces every earlier link,
    ``accepted_at`` makes a link work once, and ``INVITE_MAX_AGE`` ends it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitation"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    issued_at = models.DateTimeField()  # the newest link's time: a newer one replaces it
    accepted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invitation of user {self.user_id}"
